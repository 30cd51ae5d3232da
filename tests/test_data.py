"""Tests of vae_core.data: loading, validation, binarization, downloads and mini-batches."""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import socket
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_core import data

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VAE_CORE_DATA") or REPO.parent / "shared" / "data")
MNIST_SUBSET = SHARED / "mnist"
MNIST_OFFICIAL = SHARED / "mnist-official"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")

needs_subset = pytest.mark.skipif(
    not (MNIST_SUBSET / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"the MNIST subset is not at {MNIST_SUBSET} (set VAE_CORE_DATA to the shared data root)")
needs_official = pytest.mark.skipif(
    not (MNIST_OFFICIAL / "t10k-images-idx3-ubyte.gz").is_file(),
    reason=f"the official MNIST t10k files are not at {MNIST_OFFICIAL}")
needs_debian_fashion = pytest.mark.skipif(
    not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")


# ---------------------------------------------------------------- helpers and fixtures

def write_idx(path: Path, array: np.ndarray, magic: int) -> Path:
    """Write ``array`` (uint8) as an IDX file with the given magic number; gzip if name ends .gz."""
    array = np.asarray(array, dtype=np.uint8)
    payload = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.tobytes()
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path


def write_mnist_like(folder: Path, split="train", n=6, n_labels=None, gz=True, shape=(28, 28)):
    """A tiny valid (Fashion-)MNIST split in ``folder``: images with known pixels, labels 0..n-1."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = "train" if split == "train" else "t10k"
    ext = ".gz" if gz else ""
    images = np.zeros((n, *shape), dtype=np.uint8)
    for k in range(n):
        images[k, k, 2 * k] = 255  # one bright pixel at row k, column 2k
    labels = np.arange(n if n_labels is None else n_labels) % 10
    write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images, data.files.IDX_IMAGES_MAGIC)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels, data.files.IDX_LABELS_MAGIC)
    return images, labels


def md5(path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens, so connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def files_under(folder: Path) -> list:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No local copies anywhere and no network: an empty VAE_CORE_DATA root, no system folders,
    a fresh user cache, and every mirror pointing at a closed port."""
    root, cache = tmp_path / "root", tmp_path / "cache"
    root.mkdir()
    monkeypatch.setenv("VAE_CORE_DATA", str(root))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("VAE_CORE_OFFLINE", raising=False)
    monkeypatch.setattr(data.files, "SYSTEM_DIRS", {})
    closed = closed_port_url()
    monkeypatch.setattr(data.files, "MIRRORS", {name: (closed,) for name in data.files.MIRRORS})
    return tmp_path


# ---------------------------------------------------------------- digits

def test_digits_shapes_range_and_labels():
    ds = data.load("digits")
    assert isinstance(ds, data.Dataset)
    assert ds.x.shape == (1437, 64) and ds.x.dtype == torch.float32
    assert len(ds) == 1437 and ds.input_dim == 64 and ds.image_shape == (8, 8)
    assert ds.x.min() == 0 and ds.x.max() == 1
    assert ds.y.dtype == torch.int64 and ds.y.shape == (1437,)
    assert set(ds.y.tolist()) == set(range(10))
    assert ds.name == "digits" and ds.split == "train" and ds.source == "scikit-learn"
    assert ds.epoch_data() is ds.x
    assert "n=1437" in repr(ds)


def test_digits_split_is_a_deterministic_partition():
    from sklearn.datasets import load_digits

    train, test = data.load("digits", "train"), data.load("digits", "test")
    assert len(train) + len(test) == 1797 and len(test) == 360
    full = load_digits()
    # Every (image, label) row of the data set is in exactly one split: compare as multisets.
    def rows(x, y):
        return sorted(tuple(r) + (int(c),) for r, c in zip((x * 16).round().int().tolist(), y))
    expected = sorted(tuple(r) + (int(c),) for r, c in zip(full.data.astype(int).tolist(), full.target))
    assert rows(torch.cat([train.x, test.x]), torch.cat([train.y, test.y]).tolist()) == expected
    again = data.load("digits", "test")
    assert torch.equal(again.x, test.x) and torch.equal(again.y, test.y)
    assert data.load("Digits").name == "digits"


# ---------------------------------------------------------------- MNIST from the shared folder

@needs_subset
def test_mnist_from_vae_core_data(monkeypatch):
    monkeypatch.setenv("VAE_CORE_DATA", str(SHARED))
    train, test = data.load("mnist", "train"), data.load("mnist", "test")
    assert train.x.shape == (8000, 784) and test.x.shape == (2000, 784)
    assert train.image_shape == (28, 28) and train.input_dim == 784
    for ds in (train, test):
        assert ds.x.dtype == torch.float32 and 0 <= ds.x.min() and ds.x.max() <= 1
        assert ds.x.max() == 1  # 255 / 255
        assert set(ds.y.tolist()) == set(range(10))
        assert Path(ds.source) == MNIST_SUBSET
    # The first training image has ink in its middle and blank corners.
    first = train.x[0].view(28, 28)
    assert first[:3, :3].sum() == 0 and first[8:20, 8:20].sum() > 5


@needs_subset
def test_mnist_from_data_dir_ignores_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VAE_CORE_DATA", str(tmp_path / "nothing-here"))
    ds = data.load("mnist", "test", data_dir=MNIST_SUBSET)
    assert ds.x.shape == (2000, 784) and Path(ds.source) == MNIST_SUBSET


@needs_subset
def test_uncompressed_idx_files_load_the_same(tmp_path):
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(MNIST_SUBSET / f"{name}.gz") as src:
            (tmp_path / name).write_bytes(src.read())
    raw = data.load("mnist", "test", data_dir=tmp_path)
    packed = data.load("mnist", "test", data_dir=MNIST_SUBSET)
    assert torch.equal(raw.x, packed.x) and torch.equal(raw.y, packed.y)


@needs_debian_fashion
def test_fashion_mnist_from_debian_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("VAE_CORE_DATA", str(tmp_path))  # nothing there: the Debian folder must be found
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    train = data.load("fashion-mnist", "train")
    test = data.load("fashion_mnist", "test")
    assert train.x.shape == (60000, 784) and test.x.shape == (10000, 784)
    assert Path(train.source) == DEBIAN_FASHION
    assert torch.equal(torch.bincount(train.y), torch.full((10,), 6000))
    assert torch.equal(torch.bincount(test.y), torch.full((10,), 1000))
    assert 0 <= train.x.min() and train.x.max() <= 1


def test_data_dir_takes_precedence_and_local_files_need_no_official_checksum(tmp_path, isolated):
    images, labels = write_mnist_like(tmp_path / "mine", "train", n=7)
    ds = data.load("mnist", data_dir=tmp_path / "mine")
    assert ds.x.shape == (7, 784)
    for k in range(7):
        img = ds.x[k].view(28, 28)
        assert img[k, 2 * k] == 1 and img.sum() == 1  # row-major, one pixel per image
    assert ds.y.tolist() == labels.tolist()


def test_vae_core_data_root_is_searched_before_the_cache(isolated):
    write_mnist_like(isolated / "root" / "mnist", "test", n=3)
    write_mnist_like(isolated / "cache" / "vae_core" / "mnist", "test", n=5)
    assert len(data.load("mnist", "test")) == 3
    assert data.find_local("mnist", "test") == isolated / "root" / "mnist"
    shutil.rmtree(isolated / "root" / "mnist")
    assert len(data.load("mnist", "test")) == 5  # now from the user cache


# ---------------------------------------------------------------- binarization

def test_static_binarization_is_binary_and_repeatable():
    a = data.load("digits", binarize="static")
    b = data.load("digits", binarize="static")
    assert set(a.x.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(a.x, b.x)
    assert a.epoch_data() is a.x and a.binarize == "static"
    grey = data.load("digits").x
    assert abs(a.x.mean().item() - grey.mean().item()) < 0.01
    assert not torch.equal(a.x, (grey > 0.5).float())  # a sample, not a threshold


def test_dynamic_binarization_resamples_each_epoch():
    ds = data.load("digits", binarize="dynamic")
    grey = data.load("digits").x
    assert torch.equal(ds.x, grey)  # grey levels are kept
    first, second = ds.epoch_data(), ds.epoch_data()
    for sample in (first, second):
        assert set(sample.unique().tolist()) <= {0.0, 1.0}
        assert abs(sample.mean().item() - grey.mean().item()) < 0.01
    assert not torch.equal(first, second)
    many = torch.stack([ds.epoch_data() for _ in range(50)]).mean(0)
    assert (many - grey).abs().mean() < 0.06
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(ds.epoch_data(g1), ds.epoch_data(g2))


def test_threshold_binarization_is_deterministic():
    ds = data.load("digits", binarize="threshold")
    assert torch.equal(ds.x, (data.load("digits").x > 0.5).float())
    assert torch.equal(ds.epoch_data(), ds.epoch_data())


# ---------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("kwargs, match", [
    (dict(name="cifar10"), r"unknown data set 'cifar10'.*digits, mnist, fashion-mnist, frey"),
    (dict(name=3), r"unknown data set 3"),
    (dict(name="digits", split="valid"), r"split must be 'train' or 'test', got 'valid'"),
    (dict(name="digits", binarize="stochastic"), r"binarize must be one of .*got 'stochastic'"),
    (dict(name="digits", binarize=True), r"binarize must be one of .*got True"),
])
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load(**kwargs)


def test_missing_data_dir(tmp_path):
    with pytest.raises(ValueError, match=r"data_dir=.*does not exist; expected a folder holding "
                                         r"train-images-idx3-ubyte.gz"):
        data.load("mnist", data_dir=tmp_path / "absent")


def test_data_dir_that_is_a_file(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(ValueError, match=r"is not a folder"):
        data.load("mnist", data_dir=tmp_path / "a-file")


def test_incomplete_data_dir_does_not_fall_through(tmp_path, isolated):
    write_mnist_like(isolated / "root" / "mnist", "train")  # a good copy elsewhere is not used
    write_mnist_like(tmp_path / "half", "train")
    (tmp_path / "half" / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ValueError, match=r"lacks train-labels-idx1-ubyte.gz .*for the train split"):
        data.load("mnist", data_dir=tmp_path / "half")


def test_unreadable_data_dir(tmp_path, monkeypatch):
    folder = tmp_path / "locked"
    write_mnist_like(folder)
    # Permissions do not stop root, so the permission check itself is made to say "no".
    monkeypatch.setattr(data.files.os, "access", lambda path, mode: Path(path) != folder)
    with pytest.raises(ValueError, match=r"data_dir=.*locked' is not readable"):
        data.load("mnist", data_dir=folder)


# ---------------------------------------------------------------- damaged local files

def test_wrong_magic_number(tmp_path):
    write_mnist_like(tmp_path)
    # A label file saved under the image name: magic 2049 where 2051 belongs.
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros(6), data.files.IDX_LABELS_MAGIC)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: expected IDX magic number "
                                         r"2051 \(images file\), found 2049"):
        data.load("mnist", data_dir=tmp_path)


def test_mismatched_image_and_label_counts(tmp_path):
    write_mnist_like(tmp_path, n=6, n_labels=5)
    with pytest.raises(ValueError, match=r"holds 6 images but .*holds 5 labels; expected equal"):
        data.load("mnist", data_dir=tmp_path)


def test_wrong_image_size(tmp_path):
    write_mnist_like(tmp_path, shape=(27, 28))
    with pytest.raises(ValueError, match=r"expected 28x28 images, found 27x28"):
        data.load("mnist", data_dir=tmp_path)


def test_truncated_raw_file(tmp_path):
    write_mnist_like(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: the header promises shape "
                                         r"\(6, 28, 28\), i.e. 4720 bytes, found 4620 bytes"):
        data.load("mnist", data_dir=tmp_path)


def test_trailing_bytes_after_the_data(tmp_path):
    write_mnist_like(tmp_path, gz=False)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\0" * 3)
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte: the header promises shape "
                                         r"\(6,\), i.e. 14 bytes, found 17 bytes"):
        data.load("mnist", data_dir=tmp_path)


def test_truncated_gzip(tmp_path):
    write_mnist_like(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: expected a complete gzip "
                                         r"file, found a truncated or corrupt one"):
        data.load("mnist", data_dir=tmp_path)


def test_corrupt_gzip(tmp_path):
    write_mnist_like(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[12:20] = b"\xff" * 8  # damage the deflate stream, keep the gzip header
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.gz: expected a complete gzip"):
        data.load("mnist", data_dir=tmp_path)


def test_gz_name_on_an_uncompressed_file(tmp_path):
    write_mnist_like(tmp_path, gz=False)
    os.rename(tmp_path / "train-images-idx3-ubyte", tmp_path / "train-images-idx3-ubyte.gz")
    with pytest.raises(ValueError, match=r"expected a gzip file .* remove the .gz ending"):
        data.load("mnist", data_dir=tmp_path)


def test_labels_out_of_range(tmp_path):
    write_mnist_like(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.full(6, 12), data.files.IDX_LABELS_MAGIC)
    with pytest.raises(ValueError, match=r"expected labels 0-9, found 12"):
        data.load("mnist", data_dir=tmp_path)


# ---------------------------------------------------------------- checksums and downloads

@needs_official
def test_verify_md5_on_the_official_file_and_a_damaged_copy(tmp_path):
    official = MNIST_OFFICIAL / "t10k-labels-idx1-ubyte.gz"
    expected = data.files.CHECKSUMS["mnist"]["t10k-labels-idx1-ubyte.gz"]
    assert data.files.verify_md5(official, expected) == expected
    damaged = tmp_path / official.name
    raw = bytearray(official.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    damaged.write_bytes(bytes(raw))
    with pytest.raises(data.ChecksumError, match=rf"checksum mismatch for .*: expected MD5 "
                                                 rf"{expected}, got {md5(damaged)}"):
        data.files.verify_md5(damaged, expected)
    assert issubclass(data.ChecksumError, ValueError)


def test_offline_download_fails_fast_with_instructions(isolated):
    start = time.monotonic()
    with pytest.raises(data.DataUnavailableError) as info:
        data.load("mnist")
    assert time.monotonic() - start < 10
    message = str(info.value)
    closed = data.files.MIRRORS["mnist"][0]
    for needed in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "VAE_CORE_DATA",
                   "data_dir=", str(data.cache_dir("mnist")), closed + "train-images-idx3-ubyte.gz",
                   "data.load('digits')"):
        assert needed in message
    assert info.value.name == "mnist" and info.value.split == "train"
    assert isinstance(info.value, FileNotFoundError)   # an OSError: `except OSError` catches it
    assert files_under(isolated / "cache") == []


def test_fashion_message_names_the_debian_package(isolated):
    with pytest.raises(data.DataUnavailableError, match=r"apt-get install dataset-fashion-mnist"):
        data.load("fashion-mnist", "test")


def test_no_download_when_forbidden(isolated, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the network must not be touched")
    monkeypatch.setattr(data.files.urllib.request, "urlopen", no_network)
    with pytest.raises(data.DataUnavailableError, match=r"download=False"):
        data.load("mnist", download=False)
    monkeypatch.setenv("VAE_CORE_OFFLINE", "1")
    with pytest.raises(data.DataUnavailableError, match=r"VAE_CORE_OFFLINE=1"):
        data.load("frey")
    assert files_under(isolated / "cache") == []


def _serve_from(folder: Path) -> str:
    """A file:// mirror base URL for ``folder``."""
    return folder.resolve().as_uri() + "/"


def test_download_from_a_mirror_is_verified_and_atomic(isolated, monkeypatch):
    mirror = isolated / "mirror"
    images, labels = write_mnist_like(mirror, "test", n=4)
    checksums = {f.name: md5(f) for f in mirror.iterdir()}
    monkeypatch.setattr(data.files, "CHECKSUMS", {**data.files.CHECKSUMS, "mnist": checksums})
    monkeypatch.setattr(data.files, "MIRRORS", {"mnist": (closed_port_url(), _serve_from(mirror))})

    renames = []
    real_replace = os.replace

    def spy_replace(src, dst):
        # At the moment of renaming: the final name is still free, the verified temporary file
        # sits in the same folder, and it already holds the full, correct content.
        assert not os.path.exists(dst)
        assert Path(src).parent == Path(dst).parent
        assert md5(src) == checksums[Path(dst).name]
        renames.append(Path(dst).name)
        real_replace(src, dst)
    monkeypatch.setattr(data.files.os, "replace", spy_replace)

    ds = data.load("mnist", "test")
    cache = data.cache_dir("mnist")
    assert Path(ds.source) == cache and len(ds) == 4 and ds.y.tolist() == labels.tolist()
    assert sorted(renames) == sorted(checksums)
    assert files_under(isolated / "cache") == sorted(cache / name for name in checksums)
    for name, digest in checksums.items():
        assert md5(cache / name) == digest
    # Once cached, no network is needed.
    monkeypatch.setattr(data.files, "MIRRORS", {"mnist": (closed_port_url(),)})
    assert torch.equal(data.load("mnist", "test").x, ds.x)


def test_download_with_wrong_checksum_leaves_nothing(isolated, monkeypatch):
    mirror = isolated / "mirror"
    write_mnist_like(mirror, "train")  # valid files, but not the official ones
    monkeypatch.setattr(data.files, "MIRRORS", {"mnist": (_serve_from(mirror),)})
    with pytest.raises(data.DataUnavailableError,
                       match=r"train-images-idx3-ubyte.gz: checksum mismatch: expected MD5 "
                             r"f68b3c2dcbeaaa9fbdd348bbdeb94873, got [0-9a-f]{32}"):
        data.load("mnist")
    assert files_under(isolated / "cache") == []


@needs_official
@needs_subset
def test_download_of_real_files_checks_official_checksums(isolated, monkeypatch):
    # The subset files under the official names must be refused ...
    monkeypatch.setattr(data.files, "MIRRORS", {"mnist": (_serve_from(MNIST_SUBSET),)})
    with pytest.raises(data.DataUnavailableError, match=r"checksum mismatch: expected MD5 "
                                                        r"9fb629c4189551a2d022fa330f9573f3"):
        data.load("mnist", "test")
    assert files_under(isolated / "cache") == []
    # ... and the official files accepted, after a mirror that does not answer.
    monkeypatch.setattr(data.files, "MIRRORS",
                        {"mnist": (closed_port_url(), _serve_from(MNIST_SUBSET),
                                   _serve_from(MNIST_OFFICIAL))})
    ds = data.load("mnist", "test")
    assert ds.x.shape == (10000, 784) and set(ds.y.tolist()) == set(range(10))
    assert [p.name for p in files_under(isolated / "cache")] == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_download_into_a_given_folder_fetches_only_missing_files(isolated, monkeypatch, tmp_path):
    mirror = isolated / "mirror"
    write_mnist_like(mirror, "train")
    checksums = {f.name: md5(f) for f in mirror.iterdir()}
    monkeypatch.setattr(data.files, "CHECKSUMS", {**data.files.CHECKSUMS, "mnist": checksums})
    monkeypatch.setattr(data.files, "MIRRORS", {"mnist": (_serve_from(mirror),)})
    target = tmp_path / "target"
    target.mkdir()
    shutil.copy(mirror / "train-labels-idx1-ubyte.gz", target)
    os.utime(target / "train-labels-idx1-ubyte.gz", (1, 1))
    assert data.download("mnist", "train", folder=target) == target
    assert (target / "train-images-idx3-ubyte.gz").is_file()
    assert os.stat(target / "train-labels-idx1-ubyte.gz").st_mtime == 1  # left untouched


# ---------------------------------------------------------------- Frey faces

def frey_matrix() -> np.ndarray:
    """ff of the real shape (560, 1965) with recognisable pixels in a few columns."""
    ff = np.zeros((560, 1965), dtype=np.uint8)
    ff[0:20, 0] = 255             # face 0: its whole top row (row 0 of 28 has 20 pixels)
    ff[np.arange(28) * 20, 1] = 128  # face 1: its left column
    ff[2 * 20 + 7, 2] = 51        # face 2: the pixel at row 2, column 7
    ff[27 * 20 + 19, 1800] = 255  # face 1800 (the first test face): bottom-right pixel
    return ff


def test_frey_orientation_from_a_generated_mat_file(isolated):
    from scipy.io import savemat

    folder = isolated / "root" / "frey"  # found through VAE_CORE_DATA, or given as data_dir
    folder.mkdir()
    savemat(folder / "frey_rawface.mat", {"ff": frey_matrix()})
    train = data.load("frey", data_dir=folder)
    test = data.load("frey", "test", data_dir=folder)
    assert train.x.shape == (1800, 560) and test.x.shape == (165, 560)
    assert train.y is None and train.image_shape == (28, 20) and train.input_dim == 560
    face0, face1, face2 = (train.x[k].view(28, 20) for k in range(3))
    assert torch.all(face0[0] == 1) and face0[1:].sum() == 0
    assert torch.allclose(face1[:, 0], torch.full((28,), 128 / 255)) and face1[:, 1:].sum() == 0
    assert face2[2, 7] == pytest.approx(0.2) and face2.sum() == pytest.approx(0.2)
    assert test.x[0].view(28, 20)[27, 19] == 1 and test.x[0].sum() == 1
    assert torch.equal(data.load("frey").x, train.x)


def test_frey_file_with_wrong_content(tmp_path):
    from scipy.io import savemat

    savemat(tmp_path / "frey_rawface.mat", {"ff": np.zeros((20, 28), dtype=np.uint8)})
    with pytest.raises(ValueError, match=r"expected ff of shape \(560, 1965\).*found \(20, 28\)"):
        data.load("frey", data_dir=tmp_path)
    savemat(tmp_path / "frey_rawface.mat", {"faces": np.zeros((560, 1965), dtype=np.uint8)})
    with pytest.raises(ValueError, match=r"expected a variable 'ff', found \['faces'\]"):
        data.load("frey", data_dir=tmp_path)
    (tmp_path / "frey_rawface.mat").write_bytes(b"<html>not found</html>")
    with pytest.raises(ValueError, match=r"expected a MATLAB .mat file"):
        data.load("frey", data_dir=tmp_path)


def test_frey_download_is_checked_by_structure(isolated, monkeypatch):
    from scipy.io import savemat

    bad, good = isolated / "bad", isolated / "good"
    bad.mkdir(), good.mkdir()
    (bad / "frey_rawface.mat").write_bytes(b"<html>moved</html>")  # what a dead link may serve
    savemat(good / "frey_rawface.mat", {"ff": frey_matrix()})
    monkeypatch.setattr(data.files, "MIRRORS", {"frey": (_serve_from(bad),)})
    with pytest.raises(data.DataUnavailableError, match=r"frey_rawface.mat: .*expected a MATLAB"):
        data.load("frey")
    assert files_under(isolated / "cache") == []
    monkeypatch.setattr(data.files, "MIRRORS", {"frey": (_serve_from(bad), _serve_from(good))})
    assert len(data.load("frey", "test")) == 165
    assert files_under(isolated / "cache") == [data.cache_dir("frey") / "frey_rawface.mat"]


# ---------------------------------------------------------------- mini-batches

def test_minibatches_cover_every_row_once():
    x = torch.arange(103, dtype=torch.float32).unsqueeze(1)
    batches = list(data.minibatches(x, 10, generator=torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [10] * 10 + [3]
    seen = torch.cat(batches)[:, 0]
    assert torch.equal(seen.sort().values, x[:, 0])
    assert not torch.equal(seen, x[:, 0])  # shuffled
    dropped = list(data.minibatches(x, 10, drop_last=True))
    assert [len(b) for b in dropped] == [10] * 10
    assert len(torch.cat(dropped).unique()) == 100


def test_minibatches_same_seed_same_order():
    x = torch.randn(50, 3)
    def order(seed):
        return torch.cat(list(data.minibatches(x, 7, generator=torch.Generator().manual_seed(seed))))
    assert torch.equal(order(1), order(1))
    assert not torch.equal(order(1), order(2))


def test_minibatches_keep_labels_aligned():
    x = torch.arange(40, dtype=torch.float32).unsqueeze(1).repeat(1, 4)
    y = torch.arange(40) * 3
    pairs = list(data.minibatches(x, 6, y=y, generator=torch.Generator().manual_seed(5)))
    assert all(isinstance(p, tuple) and len(p) == 2 for p in pairs)
    for xb, yb in pairs:
        assert torch.equal(xb[:, 0].long() * 3, yb)
    assert sorted(torch.cat([yb for _, yb in pairs]).tolist()) == y.tolist()


def test_minibatches_without_shuffle_are_views_in_order():
    x = torch.randn(10, 2)
    batches = list(data.minibatches(x, 4, shuffle=False))
    assert torch.equal(torch.cat(batches), x)
    assert all(b.untyped_storage().data_ptr() == x.untyped_storage().data_ptr() for b in batches)


@pytest.mark.parametrize("batch_size, error, match", [
    (0, ValueError, r"batch_size must be a positive int, got 0"),
    (-5, ValueError, r"batch_size must be a positive int, got -5"),
    (2.5, TypeError, r"batch_size must be a positive int, got 2.5"),
    ("10", TypeError, r"batch_size must be a positive int, got '10'"),
    (True, TypeError, r"batch_size must be a positive int, got True"),
])
def test_minibatches_reject_bad_batch_size_at_the_call(batch_size, error, match):
    with pytest.raises(error, match=match):
        data.minibatches(torch.zeros(4, 2), batch_size)  # raised before iterating


def test_minibatches_reject_misaligned_labels():
    with pytest.raises(ValueError, match=r"y must have one entry per row of x: expected 4, got 3"):
        data.minibatches(torch.zeros(4, 2), 2, y=torch.zeros(3))
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor"):
        data.minibatches([[0.0]], 1)


def test_dataset_epoch_data_feeds_minibatches():
    ds = data.load("digits", "test", binarize="dynamic")
    g = torch.Generator().manual_seed(0)
    batches = list(data.minibatches(ds.epoch_data(g), 64, generator=g, y=ds.y))
    assert sum(len(xb) for xb, _ in batches) == len(ds)
    assert all(xb.shape[1] == ds.input_dim for xb, _ in batches)
