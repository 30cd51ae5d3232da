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

The file side (names, mirrors, checksums, IDX and Frey readers, finding and downloading) is in
:mod:`vae_core.data.files`; this module is what a chapter uses. Local files are trusted but validated: IDX magic numbers (2051 images, 2049 labels), 28x28
images, as many labels as images, and a length that matches the header. Official checksums are
not required of local files, so a subset in the standard file names loads as well.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Iterator, Optional, Union

import numpy as np
import torch

from vae_core._validate import check_positive_int, check_tensor
from vae_core.distributions import sample_bernoulli
from .files import (DATASETS, ChecksumError, DataUnavailableError, _check_name, _download_missing, _how_to_supply,
                    _load_frey, _load_idx_pair, cache_dir, download, find_local)

__all__ = [
    "DATASETS", "SPLITS", "BINARIZATIONS", "Dataset", "DataUnavailableError", "ChecksumError",
    "load", "as_dataset", "EpochParts", "minibatches", "find_local", "download", "cache_dir",
]

SPLITS = ("train", "test")
BINARIZATIONS = (None, "static", "dynamic", "threshold")

# Static binarization draws one Bernoulli sample per pixel from a torch.Generator seeded with this
# value, so every run (and every reader) trains on the same binary images.
STATIC_BINARIZATION_SEED = 0
# digits: numpy.random.default_rng(DIGITS_SPLIT_SEED).permutation(1797); the last 20 % (rounded
# up: 360 images) of that order are the test split, the first 1,437 the training split.
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2


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

        For ``binarize="dynamic"`` a fresh binary sample of ``x``
        (:func:`~vae_core.distributions.sample_bernoulli`, from ``generator`` when given) on every
        call; otherwise ``x`` itself, not a copy.
        """
        if self.binarize == "dynamic":
            return sample_bernoulli(self.x, generator)
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
