"""The data sets' files: names, mirrors, checksums, the IDX and Frey readers, finding local copies,
checked downloads, and atomic writes.

:mod:`vae_core.data` is what a chapter uses (``load``, ``Dataset``, ``minibatches``); this module is
where the files come from. Everything here is written so that nothing is lost or half-written:
a download is checked (MD5 against ``CHECKSUMS``, or Frey's structure) before it is renamed to its
final name, and every file the package writes goes through :func:`atomic_write`: the bytes go to a
temporary file beside the target, renamed over it (``os.replace``, atomic on one file system) only
when the writing block finished without an error.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import struct
import tempfile
import urllib.request
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import numpy as np
import torch

__all__ = ["DATASETS", "MIRRORS", "CHECKSUMS", "SYSTEM_DIRS", "DataUnavailableError", "ChecksumError", "atomic_write",
           "read_idx", "verify_md5", "dataset_files", "cache_dir", "find_local", "download"]

DATASETS = ("digits", "mnist", "fashion-mnist", "frey")


# frey has no official split: the first 1,800 faces are "train", the last 165 "test".
FREY_N_TRAIN = 1800


FREY_FILE = "frey_rawface.mat"


FREY_SHAPE = (28, 20)


FREY_N_IMAGES = 1965


IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (count, rows, columns)


IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (count)


IDX_SHAPE = (28, 28)


TITLES = {"digits": "scikit-learn digits", "mnist": "MNIST",
          "fashion-mnist": "Fashion-MNIST", "frey": "Frey faces"}


# Base URLs tried in order; a file's URL is base + file name. Tests replace these.
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ),
    "frey": (
        "https://cs.nyu.edu/~roweis/data/",
        "http://www.cs.nyu.edu/~roweis/data/",
    ),
}


# MD5 of each file as published. Frey's page publishes none, so a downloaded frey_rawface.mat is
# checked by structure instead (a MATLAB file whose variable ff is 560 x 1965).
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "frey": {},
}


# Folders that system packages install data into (searched after $VAE_CORE_DATA).
SYSTEM_DIRS = {"fashion-mnist": ("/usr/share/datasets/fashion-mnist",)}


DOWNLOAD_TIMEOUT = 5.0  # seconds allowed for connecting, and for each read, per mirror


class DataUnavailableError(FileNotFoundError):
    """A data set is in no local folder and could not be downloaded.

    A ``FileNotFoundError`` (so an ``OSError``): ``except OSError`` catches it.

    The message lists what was tried and how to supply the files by hand. ``name`` and ``split``
    say which data set was asked for, so a caller can fall back (for instance to ``digits``).
    """

    def __init__(self, message: str, name: str = "", split: str = ""):
        super().__init__(message)
        self.name = name
        self.split = split


class ChecksumError(ValueError):
    """A file's MD5 differs from the expected one."""


def _check_name(name) -> str:
    """Return the canonical data-set name, or raise ValueError listing the valid ones."""
    canonical = name.strip().lower().replace("_", "-") if isinstance(name, str) else None
    if canonical not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(DATASETS)}.")
    return canonical


def _load_idx_pair(folder: Path, split: str):
    """Read and cross-check the image and label IDX files of one split of (Fashion-)MNIST."""
    image_name, label_name = dataset_files("mnist", split)  # the same names for fashion-mnist
    image_path, label_path = _locate(folder, image_name), _locate(folder, label_name)
    images = read_idx(image_path, IDX_IMAGES_MAGIC)
    labels = read_idx(label_path, IDX_LABELS_MAGIC)
    if images.shape[1:] != IDX_SHAPE:
        raise ValueError(f"{image_path}: expected {IDX_SHAPE[0]}x{IDX_SHAPE[1]} images, found "
                         f"{images.shape[1]}x{images.shape[2]}. This is not an MNIST-format "
                         f"image file; replace it with the right one.")
    if len(images) != len(labels):
        raise ValueError(f"{image_path} holds {len(images)} images but {label_path} holds "
                         f"{len(labels)} labels; expected equal counts. The two files come from "
                         f"different sets or one is damaged: replace both with a matching pair.")
    if len(labels) and labels.max() > 9:
        raise ValueError(f"{label_path}: expected labels 0-9, found {int(labels.max())}; "
                         f"replace it with the right label file.")
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32))
    x /= 255.0
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y, IDX_SHAPE


def _load_frey(folder: Path, split: str):
    """Frey faces: image k is column k of ``ff`` read row by row as 28x20, scaled by 1/255."""
    ff = _read_frey(folder / FREY_FILE)
    columns = slice(0, FREY_N_TRAIN) if split == "train" else slice(FREY_N_TRAIN, None)
    x = torch.from_numpy(np.ascontiguousarray(ff[:, columns].T, dtype=np.float32))
    x /= 255.0
    return x, None, FREY_SHAPE


def read_idx(path, expected_magic: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzipped when its name ends in ``.gz``).

    Returns a read-only uint8 array of the shape the header gives, e.g. ``(N, 28, 28)``.

    Raises:
        ValueError: naming the file, when it is not valid gzip, its magic number is not
            ``expected_magic``, or its length differs from what its header promises.
    """
    path = Path(path)
    raw = _read_bytes(path)
    fix = "Re-download it, or delete it so that it is fetched again."
    if len(raw) < 4:
        raise ValueError(f"{path}: expected an IDX file, found only {len(raw)} bytes. {fix}")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        kind = {IDX_IMAGES_MAGIC: "images", IDX_LABELS_MAGIC: "labels"}.get(expected_magic, "IDX")
        raise ValueError(f"{path}: expected IDX magic number {expected_magic} ({kind} file), "
                         f"found {magic}. The file is damaged or is not an {kind} file "
                         f"(check that images and labels are not swapped). {fix}")
    n_dims = raw[3]
    header = 4 + 4 * n_dims
    if len(raw) < header:
        raise ValueError(f"{path}: the header needs {header} bytes, found {len(raw)}: the file is "
                         f"truncated. {fix}")
    dims = struct.unpack(f">{n_dims}I", raw[4:header])
    expected_len = header + math.prod(dims)
    if len(raw) != expected_len:
        raise ValueError(f"{path}: the header promises shape {dims}, i.e. {expected_len} bytes, "
                         f"found {len(raw)} bytes: the file is truncated or damaged. {fix}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _read_bytes(path: Path) -> bytes:
    """All bytes of ``path``, decompressed when the name ends in ``.gz``; ValueError if corrupt."""
    with open(path, "rb") as f:
        raw = f.read()
    if path.name.endswith(".gz"):
        if raw[:2] != b"\x1f\x8b":
            raise ValueError(f"{path}: expected a gzip file (its name ends in .gz), found other "
                             f"bytes. If it is already uncompressed, remove the .gz ending; "
                             f"otherwise re-download it, or delete it so it is fetched again.")
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"{path}: expected a complete gzip file, found a truncated or "
                             f"corrupt one ({err}). Re-download it, or delete it so that it is "
                             f"fetched again.") from None
    return raw


def _read_frey(path) -> np.ndarray:
    """The ``ff`` matrix (560 x 1965, values 0-255) of ``frey_rawface.mat``; ValueError if not."""
    from scipy.io import loadmat

    path = Path(path)
    fix = "Re-download it, or delete it so that it is fetched again."
    try:
        contents = loadmat(str(path))
    except Exception as err:  # scipy raises several types for a file that is not MATLAB
        raise ValueError(f"{path}: expected a MATLAB .mat file, it could not be read "
                         f"({type(err).__name__}: {err}). {fix}") from None
    if "ff" not in contents:
        found = sorted(k for k in contents if not k.startswith("__"))
        raise ValueError(f"{path}: expected a variable 'ff', found {found}. {fix}")
    ff = np.asarray(contents["ff"])
    expected = (FREY_SHAPE[0] * FREY_SHAPE[1], FREY_N_IMAGES)
    if ff.shape != expected:
        raise ValueError(f"{path}: expected ff of shape {expected} (one 28x20 face per column), "
                         f"found {ff.shape}. {fix}")
    if not np.issubdtype(ff.dtype, np.number) or ff.min() < 0 or ff.max() > 255:
        raise ValueError(f"{path}: expected grey levels 0-255 in ff, found dtype {ff.dtype}. {fix}")
    return ff


def verify_md5(path, expected: str) -> str:
    """Return the MD5 hex digest of the file at ``path`` if it equals ``expected``.

    Raises:
        ChecksumError (a ValueError): naming the file and both digests, when they differ.
    """
    actual = _md5_of(path)
    if actual != expected.lower():
        raise ChecksumError(f"checksum mismatch for {path}: expected MD5 {expected}, got {actual}. "
                            f"The file is damaged or is not the official release; delete it and "
                            f"download it again.")
    return actual


def _md5_of(path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_files(name: str, split: str) -> tuple:
    """The file names one split of a data set needs, as they are distributed."""
    name = _check_name(name)
    if name == "digits":
        return ()
    if name == "frey":
        return (FREY_FILE,)
    prefix = "train" if split == "train" else "t10k"
    return (f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz")


def _locate(folder: Path, filename: str) -> Optional[Path]:
    """``folder/filename``, else its uncompressed form (``.gz`` dropped), else None."""
    candidates = [folder / filename]
    if filename.endswith(".gz"):
        candidates.append(folder / filename[:-3])
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def cache_dir(name: str) -> Path:
    """The user-cache folder of a data set: ``$XDG_CACHE_HOME/vae_core/<name>``, where
    ``XDG_CACHE_HOME`` defaults to ``~/.cache``."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "vae_core" / _check_name(name)


def _search_folders(name: str) -> list:
    """The folders searched when no ``data_dir`` is given, in order, as (description, path)."""
    folders = []
    root = os.environ.get("VAE_CORE_DATA")
    if root:
        folders.append(("$VAE_CORE_DATA", Path(root) / name))
    for system_dir in SYSTEM_DIRS.get(name, ()):
        folders.append(("system package", Path(system_dir)))
    folders.append(("user cache", cache_dir(name)))
    return folders


def find_local(name: str, split: str = "train", data_dir=None) -> Optional[Path]:
    """The first folder holding every file that one split of a data set needs, or None.

    With ``data_dir`` only that folder is considered, and it must be usable.

    Raises:
        ValueError: ``data_dir`` is given but does not exist, is not a readable folder, or lacks
            some of the files.
    """
    name = _check_name(name)
    needed = dataset_files(name, split)
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            what = "does not exist" if not folder.exists() else "is not a folder"
            raise ValueError(f"data_dir={str(data_dir)!r} {what}; expected a folder holding "
                             f"{', '.join(needed)}.")
        if not os.access(folder, os.R_OK | os.X_OK):
            raise ValueError(f"data_dir={str(data_dir)!r} is not readable; expected a folder "
                             f"whose files can be read (check its permissions).")
        missing = [f for f in needed if _locate(folder, f) is None]
        if missing:
            present = sorted(p.name for p in folder.iterdir())[:10]
            raise ValueError(f"data_dir={str(data_dir)!r} lacks {', '.join(missing)} (gzipped, or "
                             f"uncompressed without .gz) for the {split} split of {name}; it "
                             f"holds {present}. Point data_dir at the folder with these files.")
        return folder
    for _, folder in _search_folders(name):
        if folder.is_dir() and all(_locate(folder, f) is not None for f in needed):
            return folder
    return None


def download(name: str, split: str = "train", folder=None) -> Path:
    """Fetch the files of one split that ``folder`` (default: ``cache_dir(name)``) lacks.

    Each file is tried from every mirror in ``MIRRORS[name]`` in turn, with ``DOWNLOAD_TIMEOUT``
    seconds to connect and per read. It is written to a temporary file beside its final name,
    checked (MD5 from ``CHECKSUMS``; Frey by structure), and renamed only when it passed, so a
    failed or interrupted download never leaves a file under the final name.

    Returns the folder. Raises DataUnavailableError when ``VAE_CORE_OFFLINE=1`` or when a file
    could not be fetched from any mirror; the message lists each attempt and how to supply the
    files by hand.
    """
    name = _check_name(name)
    return _download_missing(name, split, Path(folder) if folder is not None else cache_dir(name))


def _download_missing(name: str, split: str, folder: Path) -> Path:
    """The body of ``download``, for a canonical name and a folder."""
    if os.environ.get("VAE_CORE_OFFLINE") == "1":
        raise DataUnavailableError(
            _how_to_supply(name, split, ["no download attempted (VAE_CORE_OFFLINE=1)"]), name, split)
    for filename in dataset_files(name, split):
        if _locate(folder, filename) is None:
            _download_file(name, split, filename, folder)
    return folder


def _download_file(name: str, split: str, filename: str, folder: Path) -> Path:
    """Fetch one file into ``folder`` from the first mirror that delivers a valid copy."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataUnavailableError(
            _how_to_supply(name, split, [f"cannot create the cache folder {folder}: {err}"]),
            name, split) from None
    failures = []
    for base in MIRRORS[name]:
        url = base + filename
        try:
            _fetch_verified(url, folder / filename, CHECKSUMS[name].get(filename),
                            _read_frey if name == "frey" else None)
            return folder / filename
        except (OSError, ValueError, http.client.HTTPException) as err:
            failures.append(f"{url}: {err}")
    raise DataUnavailableError(_how_to_supply(name, split, failures), name, split)


def _fetch_verified(url: str, dest: Path, md5: Optional[str], check=None) -> None:
    """Stream ``url`` into a temporary file beside ``dest``; rename it to ``dest`` only after its
    MD5 equals ``md5`` (when given) and ``check(path)`` (when given) raised nothing."""
    digest = hashlib.md5(usedforsecurity=False)
    request = urllib.request.Request(url, headers={"User-Agent": "vae_core"})
    with atomic_write(dest, suffix=".part") as out, \
            urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response:
        for chunk in iter(lambda: response.read(1 << 20), b""):
            digest.update(chunk)
            out.write(chunk)
        if md5 is not None and digest.hexdigest() != md5:
            raise ChecksumError(f"checksum mismatch: expected MD5 {md5}, got "
                                f"{digest.hexdigest()}")
        if check is not None:
            out.flush()
            check(out.name)


def _how_to_supply(name: str, split: str, tried: list) -> str:
    """The message of DataUnavailableError: what was tried, then how to supply the files."""
    root = os.environ.get("VAE_CORE_DATA")
    lines = [f"The {TITLES[name]} data set ({split} split) is not on this computer and could not "
             f"be downloaded."]
    lines.append("Looked in: " + "; ".join(f"{where} {path}" for where, path in _search_folders(name)))
    lines.append("Tried:")
    lines += [f"  - {attempt}" for attempt in tried]
    lines.append("To supply the files yourself, put")
    lines += [f"    {f}" for f in dataset_files(name, split)]
    if name != "frey":
        lines.append("  (as distributed, gzipped; uncompressed copies without .gz also work)")
    lines += [
        "into one of these folders:",
        f"  - any folder, passed as data_dir=: data.load({name!r}, {split!r}, "
        f"data_dir='/path/to/folder')",
        f"  - $VAE_CORE_DATA/{name}/ : set the VAE_CORE_DATA variable to a root folder with one "
        f"sub-folder per data set (now {'set to ' + repr(root) if root else 'unset'})",
        f"  - {cache_dir(name)}/ (the user cache, where downloads go)",
    ]
    if name == "fashion-mnist":
        lines.append("On Debian or Ubuntu, `sudo apt-get install dataset-fashion-mnist` installs "
                     "them in /usr/share/datasets/fashion-mnist, which is searched automatically.")
    lines.append("They are published at: " + ", ".join(MIRRORS[name]))
    lines.append("The 'digits' data set ships with scikit-learn and needs no files: "
                 "data.load('digits').")
    return "\n".join(lines)


@contextmanager
def atomic_write(path, mode: str = "wb", suffix: str = ".tmp"):
    """``with atomic_write(path) as f: f.write(...)`` — ``f.name`` is the temporary file's path.

    The parent folder is created if needed. Raising inside the block (for instance because a
    checksum did not match) deletes the temporary file and leaves ``path`` as it was.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
