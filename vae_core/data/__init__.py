"""The data sets of the book, held in memory as flat tensors in [0, 1].

    from vae_core import data
    train = data.load("mnist", "train", binarize="dynamic")
    for xb in data.minibatches(train.epoch_data(), 100):
        ...

Four data sets are known (``DATASETS``):

=================  =====================================  ========================================
name               what                                   where it comes from
=================  =====================================  ========================================
``digits``         1,797 8x8 digits, labels 0-9           bundled with scikit-learn (never fetched)
``mnist``          28x28 digits, labels 0-9               local IDX files, else a checked download
``fashion-mnist``  28x28 clothes, labels 0-9              same, also Debian's ``dataset-fashion-mnist``
``frey``           1,965 28x20 faces, no labels           ``frey_rawface.mat``, local or downloaded
=================  =====================================  ========================================

Where files are looked for, in this order (the first folder holding every file the split needs wins):

1. ``data_dir=`` when given: the folder that holds the files themselves. Nothing else is tried, and
   a missing, unreadable or incomplete folder is a ``ValueError``.
2. ``$VAE_CORE_DATA/<name>/``: ``VAE_CORE_DATA`` names a root with one sub-folder per data set.
3. System folders (``SYSTEM_DIRS``): Debian's ``/usr/share/datasets/fashion-mnist``.
4. The user cache ``$XDG_CACHE_HOME/vae_core/<name>`` (``~/.cache/vae_core/<name>`` by default).
5. A download into that cache, unless ``download=False`` or ``VAE_CORE_OFFLINE=1``: each mirror in
   ``MIRRORS`` is tried in turn with a short timeout, the file is checked (MD5 against
   ``CHECKSUMS``; for Frey, whose checksum we do not have, its structure) and only then renamed to
   its final name. When every mirror fails, ``DataUnavailableError`` says what was tried and how to
   supply the files by hand.

Local files are trusted but validated: IDX magic numbers (2051 images, 2049 labels), 28x28
images, as many labels as images, and a length that matches the header. Official checksums are
not required of local files, so a subset in the standard file names loads as well.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.client
import math
import os
import struct
import urllib.request
import zlib
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np
import torch

from vae_core._validate import check_positive_int, check_tensor
from .files import atomic_write

__all__ = [
    "DATASETS", "SPLITS", "BINARIZATIONS", "MIRRORS", "CHECKSUMS", "SYSTEM_DIRS",
    "Dataset", "DataUnavailableError", "ChecksumError",
    "load", "as_dataset", "EpochParts", "minibatches", "find_local", "download", "cache_dir", "dataset_files",
    "verify_md5", "read_idx",
]

DATASETS = ("digits", "mnist", "fashion-mnist", "frey")
SPLITS = ("train", "test")
BINARIZATIONS = (None, "static", "dynamic", "threshold")

# Static binarization draws one Bernoulli sample per pixel from a torch.Generator seeded with this
# value, so every run (and every reader) trains on the same binary images.
STATIC_BINARIZATION_SEED = 0
# digits: numpy.random.default_rng(DIGITS_SPLIT_SEED).permutation(1797); the last 20 % (rounded
# up: 360 images) of that order are the test split, the first 1,437 the training split.
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2
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


@dataclasses.dataclass(repr=False)
class Dataset:
    """One split of a data set, in memory.

    Attributes:
        x: float32 tensor ``(N, D)``: images flattened row by row, values in [0, 1] (grey
            levels; already 0/1 for ``binarize="static"`` or ``"threshold"``).
        y: int64 labels ``(N,)``, or ``None`` for a data set without labels (frey).
        image_shape: ``(H, W)`` with ``H * W == D``; ``x[i].view(image_shape)`` is image ``i``.
        name, split, binarize: as passed to ``load``.
        source: the folder the files came from, or ``"scikit-learn"``.
    """

    x: torch.Tensor
    y: Optional[torch.Tensor]
    image_shape: Optional[tuple]
    name: str
    split: str
    binarize: Optional[str] = None
    source: str = ""

    def __len__(self) -> int:
        return self.x.shape[0]

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
                f"image_shape={self.image_shape}, binarize={self.binarize!r}, "
                f"source={self.source!r})")

    @property
    def input_dim(self) -> int:
        """D, the number of pixels per image."""
        return self.x.shape[1]

    def epoch_data(self, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """The tensor to train on for one epoch.

        For ``binarize="dynamic"`` a fresh binary sample ``torch.bernoulli(x)`` on every call
        (drawn from ``generator`` when given); otherwise ``x`` itself, not a copy.
        """
        if self.binarize == "dynamic":
            return torch.bernoulli(self.x, generator=generator)
        return self.x

    def epoch(self, generator: Optional[torch.Generator] = None) -> tuple:
        """``(x, y)`` for one epoch: :meth:`epoch_data` and the labels (``None`` without labels)."""
        return self.epoch_data(generator), self.y

    def to(self, device) -> "Dataset":
        """A copy whose ``x`` and ``y`` live on ``device``."""
        y = None if self.y is None else self.y.to(device)
        return dataclasses.replace(self, x=self.x.to(device), y=y)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

def load(name: str, split: str = "train", data_dir=None, binarize: Optional[str] = None,
         download: bool = True) -> Dataset:
    """Load one split of a data set into memory.

    Args:
        name: one of ``DATASETS`` (case and ``_``/``-`` do not matter: ``"Fashion_MNIST"`` works).
        split: ``"train"`` or ``"test"``.
        data_dir: a folder holding this data set's files directly; when given it is the only place
            looked at.
        binarize: ``None`` (grey levels), ``"static"`` (one Bernoulli sample per pixel at load,
            from a generator seeded with ``STATIC_BINARIZATION_SEED``, identical across runs),
            ``"dynamic"`` (grey levels kept; ``epoch_data`` draws a fresh sample each epoch) or
            ``"threshold"`` (``x > 0.5``, deterministic).
        download: whether a missing data set may be fetched from the mirrors.

    Returns:
        a ``Dataset``.

    Raises:
        ValueError: unknown name, split or binarize; a ``data_dir`` that is missing, unreadable or
            incomplete; a local file that fails validation.
        DataUnavailableError: no local copy, and no download (not allowed, or every mirror failed).
    """
    name = _check_name(name)
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    if binarize not in BINARIZATIONS:
        raise ValueError(f"binarize must be one of {BINARIZATIONS}, got {binarize!r}.")

    if name == "digits":
        x, y, image_shape = _load_digits(split)
        source = "scikit-learn"
    else:
        folder = find_local(name, split, data_dir)
        if folder is None:
            if not download:
                raise DataUnavailableError(
                    _how_to_supply(name, split, ["no download attempted (download=False)"]),
                    name, split)
            folder = _download_missing(name, split, cache_dir(name))
        if name == "frey":
            x, y, image_shape = _load_frey(folder, split)
        else:
            x, y, image_shape = _load_idx_pair(folder, split)
        source = str(folder)

    if binarize == "static":
        generator = torch.Generator().manual_seed(STATIC_BINARIZATION_SEED)
        x = torch.bernoulli(x, generator=generator)
    elif binarize == "threshold":
        x = (x > 0.5).to(torch.float32)
    return Dataset(x=x, y=y, image_shape=image_shape, name=name, split=split,
                   binarize=binarize, source=source)


def _check_name(name) -> str:
    """Return the canonical data-set name, or raise ValueError listing the valid ones."""
    canonical = name.strip().lower().replace("_", "-") if isinstance(name, str) else None
    if canonical not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(DATASETS)}.")
    return canonical


def _load_digits(split: str):
    """scikit-learn's 8x8 digits: pixel counts 0..16 divided by 16, split by a fixed permutation."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    n = len(bunch.target)
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(n)
    n_test = math.ceil(DIGITS_TEST_FRACTION * n)
    rows = order[: n - n_test] if split == "train" else order[n - n_test:]
    x = torch.from_numpy(np.ascontiguousarray(bunch.data[rows] / 16.0, dtype=np.float32))
    y = torch.from_numpy(bunch.target[rows].astype(np.int64))
    return x, y, (8, 8)


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


# --------------------------------------------------------------------------------------------
# Reading and validating files
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Finding local copies
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Data for training: any data set or tensor, epochs cut in parts, mini-batches
# --------------------------------------------------------------------------------------------

def as_dataset(data, name: str = "data") -> "Dataset":
    """What ``fit`` and the evaluators accept as data, as a :class:`Dataset`.

    ``data`` may be a :class:`Dataset` (from :func:`load`; returned as it is), anything with an
    ``epoch(generator) -> (x, y)`` method (such as :class:`EpochParts`; returned as it is), a float
    tensor ``(N, D)`` (or ``(N, H, W)``, flattened), or a pair ``(x, y)`` of images and int labels.
    """
    if isinstance(data, Dataset) or (hasattr(data, "epoch") and hasattr(data, "x")):
        return data
    y = None
    if isinstance(data, (tuple, list)) and len(data) == 2:
        data, y = data
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"{name} must be a data set from vae_core.data.load(...), a float tensor of shape "
                        f"(N, D) or a pair (x, y), got {type(data).__name__}.")
    check_tensor(name, data, min_dim=2)
    x = data.reshape(len(data), -1)
    image_shape = tuple(data.shape[1:]) if data.dim() == 3 else None
    if y is not None:
        if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.is_floating_point():
            raise TypeError(f"the labels of {name} must be an int tensor of shape (N,), got "
                            f"{type(y).__name__} {tuple(getattr(y, 'shape', ()))}.")
        if len(y) != len(x):
            raise ValueError(f"{name} has {len(x)} images but {len(y)} labels; they must match.")
    return Dataset(x=x, y=y, image_shape=image_shape, name="tensor", split=name)


class EpochParts:
    """A training set seen by ``fit`` as ``parts`` short epochs per pass over the data.

    ``fit`` changes the KL weight and calls its callback once per epoch. On a large data set a
    short run is one or two passes, too coarse for a warm-up; ``fit(model, EpochParts(train, 6),
    epochs=6, beta=linear_warmup(3))`` makes one pass in six steps of the schedule. Each pass draws
    one permutation (and, for ``binarize="dynamic"``, one fresh binarization) and hands out its
    ``parts`` consecutive slices (sizes differ by at most one), one per call of :meth:`epoch_data`;
    every example is seen once per pass.

    Args:
        data: a data set from :func:`vae_core.data.load`, or a float tensor ``(N, D)``.
        parts: how many epochs one pass is cut into (1 gives ordinary epochs).
    """

    def __init__(self, data, parts: int):
        self._data = as_dataset(data, "data")
        self.x, self.y = self._data.x, self._data.y
        self.parts = check_positive_int("parts", parts)
        if parts > len(self.x):
            raise ValueError(f"parts must be at most the number of examples ({len(self.x)}), got {parts}.")
        self._pass: Optional[tuple] = None
        self._slices: list = []

    def __len__(self) -> int:
        """Examples per (short) epoch, rounded up."""
        return math.ceil(len(self.x) / self.parts)

    @property
    def input_dim(self) -> int:
        return self.x.shape[1]

    def epoch(self, generator: Optional[torch.Generator] = None) -> tuple:
        """``(x, y)`` of the next part of the current pass (a new pass starts when the last is used up)."""
        if not self._slices:
            self._pass = self._data.epoch(generator)
            self._slices = list(torch.randperm(len(self.x), generator=generator).tensor_split(self.parts))
        rows = self._slices.pop(0)
        x, y = self._pass
        return x[rows], None if y is None else y[rows]

    def epoch_data(self, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """The images of :meth:`epoch`."""
        return self.epoch(generator)[0]

    def __repr__(self) -> str:
        return f"EpochParts(n={len(self.x)}, parts={self.parts})"



def minibatches(x: torch.Tensor, batch_size: int, *, shuffle: bool = True,
                generator: Optional[torch.Generator] = None, drop_last: bool = False,
                y: Optional[torch.Tensor] = None) -> Iterator[Union[torch.Tensor, tuple]]:
    """Iterate over an in-memory tensor in mini-batches along its first dimension.

    With ``shuffle`` one ``torch.randperm(N, generator=generator)`` orders the epoch and each
    batch is ``x[perm[i:i + batch_size]]``; without it the batches are slices (views) of ``x``.
    Every row appears exactly once per call; the last batch is smaller unless ``drop_last``.

    Yields ``x`` batches, or ``(x_batch, y_batch)`` pairs when ``y`` is given.

    Raises (at the call, before the first batch):
        TypeError: ``x`` (or ``y``) is not a tensor, or ``batch_size`` is not an int.
        ValueError: ``batch_size`` <= 0, or ``y`` has a different length than ``x``.
    """
    if not isinstance(x, torch.Tensor) or x.dim() == 0:
        raise TypeError(f"x must be a torch.Tensor with a batch dimension, got {type(x).__name__}.")
    check_positive_int("batch_size", batch_size)
    if y is not None:
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"y must be a torch.Tensor or None, got {type(y).__name__}.")
        if len(y) != len(x):
            raise ValueError(f"y must have one entry per row of x: expected {len(x)}, got {len(y)}.")
    return _batches(x, batch_size, shuffle, generator, drop_last, y)


def _batches(x, batch_size, shuffle, generator, drop_last, y):
    n = x.shape[0]
    stop = n - n % batch_size if drop_last else n
    order = None
    if shuffle:
        device = generator.device if generator is not None else "cpu"
        order = torch.randperm(n, generator=generator, device=device).to(x.device)
    for start in range(0, stop, batch_size):
        if order is None:
            rows = slice(start, start + batch_size)
        else:
            rows = order[start:start + batch_size]
        yield x[rows] if y is None else (x[rows], y[rows])
