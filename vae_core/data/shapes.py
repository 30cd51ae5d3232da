r"""A synthetic data set with known factors of variation (chapter 14).

Chapter 14 asks whether a model's latent dimensions line up with the factors that generated the
data. That needs data whose factors are known: :func:`shapes_grid` draws small binary pictures of a
shape (square, cross or ring) at one of three scales and 8 × 8 positions on a 16 × 16 canvas, every
combination once (3 · 3 · 8 · 8 = 576 images), in NumPy, with no download. The four factors are
independent and uniform over the grid, in the spirit of dSprites (Matthey et al., 2017) at a size a
laptop trains on in seconds. Their disentanglement score is
:func:`vae_core.evaluate.mutual_information_gap`.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .._validate import check_positive_int

__all__ = ["FACTOR_NAMES", "FACTOR_SIZES", "SHAPES", "SCALES", "FactorData", "render_shapes", "shapes_grid"]

#: the factors of :func:`shapes_grid`, in the column order of ``FactorData.factors``.
FACTOR_NAMES = ("shape", "scale", "x", "y")
SHAPES = ("square", "cross", "ring")
SCALES = (2, 3, 4)              # half-widths in pixels: the shape spans 2 * scale + 1 pixels
N_POSITIONS = 8
#: how many values each factor takes.
FACTOR_SIZES = (len(SHAPES), len(SCALES), N_POSITIONS, N_POSITIONS)


class FactorData(NamedTuple):
    """Images ``(N, size * size)`` float32 in {0, 1}, factor indices ``(N, 4)`` (int64), names and sizes."""
    images: torch.Tensor
    factors: torch.Tensor
    names: tuple
    sizes: tuple
    image_shape: tuple


def render_shapes(factors, size: int = 16) -> np.ndarray:
    """Draw the pictures of factor indices ``factors`` ``(N, 4)`` = (shape, scale, x, y) on ``size × size`` canvases.

    The shape is centred at pixel column ``max(SCALES) + x`` and row ``max(SCALES) + y``; a square is
    filled, a cross is two lines of width 1 through the centre, a ring is a square's one-pixel border.
    Returns a float32 array ``(N, size, size)`` of zeros and ones.
    """
    f = np.asarray(factors)
    if f.ndim != 2 or f.shape[1] != 4 or not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"factors must be an integer array of shape (N, 4) = (shape, scale, x, y), "
                         f"got {f.dtype} {f.shape}.")
    for k, (name, n) in enumerate(zip(FACTOR_NAMES, FACTOR_SIZES)):
        if f[:, k].min(initial=0) < 0 or f[:, k].max(initial=0) >= n:
            raise ValueError(f"factor {name!r} takes values 0..{n - 1}, got values in "
                             f"[{f[:, k].min()}, {f[:, k].max()}].")
    check_positive_int("size", size)
    margin = max(SCALES)
    if size < 2 * margin + N_POSITIONS:
        raise ValueError(f"size must be at least {2 * margin + N_POSITIONS} to fit every position, got {size}.")
    rows, cols = np.mgrid[0:size, 0:size]
    out = np.zeros((len(f), size, size), dtype=np.float32)
    for i, (shape, scale, x, y) in enumerate(f):
        s = SCALES[scale]
        dr, dc = np.abs(rows - (margin + y)), np.abs(cols - (margin + x))
        inside = (dr <= s) & (dc <= s)
        if SHAPES[shape] == "square":
            mask = inside
        elif SHAPES[shape] == "cross":
            mask = inside & ((dr == 0) | (dc == 0))
        else:
            mask = inside & ((dr == s) | (dc == s))
        out[i][mask] = 1.0
    return out


def shapes_grid(size: int = 16) -> FactorData:
    """Every combination of the four factors once: 576 images of ``size × size`` pixels."""
    grids = np.meshgrid(*[np.arange(n) for n in FACTOR_SIZES], indexing="ij")
    factors = np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)
    images = render_shapes(factors, size).reshape(len(factors), -1)
    return FactorData(torch.from_numpy(images), torch.from_numpy(factors), FACTOR_NAMES, FACTOR_SIZES, (size, size))
