r"""A synthetic data set with known factors of variation, and a disentanglement score.

Chapter 14 asks whether a model's latent dimensions line up with the factors that generated the
data. That needs data whose factors are known: :func:`shapes_grid` draws small binary pictures of a
shape (square, cross or ring) at one of three scales and 8 × 8 positions on a 16 × 16 canvas, every
combination once (3 · 3 · 8 · 8 = 576 images), in NumPy, with no download. The four factors are
independent and uniform over the grid, in the spirit of dSprites (Matthey et al., 2017) at a size a
laptop trains on in seconds.

:func:`mutual_information_gap` is the MIG of Chen et al. (2018): for each factor :math:`v_k`, the
mutual information :math:`I(z_j; v_k)` of every latent dimension with it (latents discretised into
bins), and the gap between the largest and the second largest, divided by the factor's entropy,

.. math:: \mathrm{MIG} = \frac1K\sum_k \frac{I(z_{j^{(k)}}; v_k) - \max_{j\ne j^{(k)}} I(z_j; v_k)}{H(v_k)},
          \qquad j^{(k)} = \arg\max_j I(z_j; v_k).

It is 1 when each factor is captured by one dimension alone and 0 when every factor is spread
evenly over two or more dimensions (or captured by none).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ._checks import check_positive_int

__all__ = ["FACTOR_NAMES", "FACTOR_SIZES", "FactorData", "render_shapes", "shapes_grid", "discrete_mutual_information",
           "mutual_information_gap"]

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


def _as_2d_numpy(name: str, value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (N, columns), got {arr.shape}.")
    return arr


def _bin(column: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bins between the column's minimum and maximum (a constant column is one bin)."""
    lo, hi = column.min(), column.max()
    if hi <= lo:
        return np.zeros(len(column), dtype=np.int64)
    return np.minimum(((column - lo) / (hi - lo) * n_bins).astype(np.int64), n_bins - 1)


def discrete_mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    r""":math:`I(a; b) = \sum_{a,b} p(a,b)\log\frac{p(a,b)}{p(a)p(b)}` in nats, from the empirical joint of two
    integer label arrays of the same length."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D label arrays of the same length, got {a.shape} and {b.shape}.")
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    joint = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(joint, (ai, bi), 1.0)
    joint /= joint.sum()
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())


def mutual_information_gap(codes, factors, n_bins: int = 20) -> tuple[float, np.ndarray, np.ndarray]:
    """The MIG of latent ``codes`` ``(N, d)`` (e.g. the encoder means) against integer ``factors`` ``(N, K)``.

    Each latent dimension is discretised into ``n_bins`` equal-width bins over its range (as in common
    disentanglement code; the score depends a little on ``n_bins``). Needs ``d >= 2``.

    Returns:
        ``(mig, gap_per_factor (K,), mutual_information (d, K))``, the gaps normalised by :math:`H(v_k)`.
    """
    z = _as_2d_numpy("codes", codes).astype(np.float64)
    v = _as_2d_numpy("factors", factors)
    if len(z) != len(v):
        raise ValueError(f"codes and factors must have the same number of rows, got {len(z)} and {len(v)}.")
    if z.shape[1] < 2:
        raise ValueError(f"the mutual information gap needs at least 2 latent dimensions, got {z.shape[1]}.")
    if not np.isfinite(z).all():
        raise ValueError("codes has NaN or infinite entries; encode finite inputs.")
    check_positive_int("n_bins", n_bins)
    binned = [_bin(z[:, j], n_bins) for j in range(z.shape[1])]
    mi = np.array([[discrete_mutual_information(bz, v[:, k]) for k in range(v.shape[1])] for bz in binned])
    entropy = np.array([discrete_mutual_information(v[:, k], v[:, k]) for k in range(v.shape[1])])
    if (entropy <= 0).any():
        raise ValueError("every factor must take at least two values in the data (a constant factor has zero entropy).")
    top = np.sort(mi, axis=0)[::-1]
    gaps = (top[0] - top[1]) / entropy
    return float(gaps.mean()), gaps, mi
