r"""Independent sources mixed linearly into a higher-dimensional space (chapter 14).

Disentanglement asks a model to find the axes of the factors that made the data. Whether any
method *can* find them depends on the factors' distribution, and :func:`mixed_sources` builds the
two cases side by side:

* **uniform** sources :math:`s \sim U[-\sqrt3, \sqrt3]^k` (mean 0, variance 1), rotated by
  :math:`R_\theta` and embedded in :math:`D` dimensions by a matrix :math:`A` with orthonormal
  columns, plus a little isotropic noise:

  .. math:: x = A R_\theta s + \text{noise}\cdot\varepsilon, \qquad \varepsilon\sim\mathcal N(0, I_D).

  The covariance of :math:`x` in the source plane is the identity, so PCA cannot find the axes;
  but a rotated square is *dependent* in its rotated coordinates (its total correlation is
  positive except at multiples of 90°), so a total-correlation penalty prefers the source axes;
  this is the identifiable case of independent component analysis.
* **gaussian** sources :math:`s\sim\mathcal N(0, I_k)`, the control: a standard Gaussian is
  invariant under rotation, every rotation of it is as independent as every other, and no method
  can find "the" axes (the non-identifiability of Locatello et al., 2019).

:func:`source_factors` bins the continuous sources into integer labels, as
:func:`vae_core.evaluate.mutual_information_gap` needs, and :func:`rotation_to_sources` reads off
the angle by which a model's codes are rotated away from the sources.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from .._validate import check_nonnegative_float, check_positive_int, check_tensor

__all__ = ["SOURCE_KINDS", "MixedSources", "mixed_sources", "source_factors", "rotation_to_sources"]

#: the source distributions :func:`mixed_sources` knows.
SOURCE_KINDS = ("uniform", "gaussian")


class MixedSources(NamedTuple):
    """``x`` ``(N, D)`` float32 observations, ``sources`` ``(N, k)`` float32, ``mixing`` ``(D, k)`` the
    matrix :math:`A R_\\theta` (so ``x = sources @ mixing.T + noise``), and the settings."""
    x: torch.Tensor
    sources: torch.Tensor
    mixing: torch.Tensor
    kind: str
    angle_deg: float
    noise: float


def _rotation(k: int, angle: float) -> np.ndarray:
    """A rotation by ``angle`` (radians) in every consecutive plane (0, 1), (2, 3), ... of R^k."""
    R = np.eye(k)
    c, s = math.cos(angle), math.sin(angle)
    for i in range(0, k - 1, 2):
        R[i:i + 2, i:i + 2] = [[c, -s], [s, c]]
    return R


def mixed_sources(n: int, kind: str = "uniform", n_sources: int = 2, data_dim: int = 10,
                  angle_deg: float = 45.0, noise: float = 0.05, seed: int = 0) -> MixedSources:
    r"""``n`` observations :math:`x = A R_\theta s + \text{noise}\,\varepsilon` of ``n_sources`` independent
    unit-variance sources of kind ``"uniform"`` or ``"gaussian"``, in ``data_dim`` dimensions.

    :math:`A` (``data_dim × n_sources``, orthonormal columns) is drawn from ``seed``; the rotation
    :math:`R_\theta` turns each consecutive pair of sources by ``angle_deg`` before the embedding, so
    the source axes are not the coordinate axes of any plane a model sees. The same ``seed`` gives
    the same :math:`A` for both kinds, and the same data.
    """
    check_positive_int("n", n)
    if kind not in SOURCE_KINDS:
        raise ValueError(f"kind must be one of {SOURCE_KINDS}, got {kind!r}.")
    check_positive_int("n_sources", n_sources)
    check_positive_int("data_dim", data_dim)
    if data_dim < n_sources:
        raise ValueError(f"data_dim must be at least n_sources = {n_sources} (the embedding needs "
                         f"orthonormal columns), got {data_dim}.")
    noise = check_nonnegative_float("noise", noise, "the standard deviation of the observation noise")
    try:
        angle = math.radians(float(angle_deg))
    except (TypeError, ValueError):
        raise TypeError(f"angle_deg must be a number of degrees, got {angle_deg!r}.") from None
    if not math.isfinite(angle):
        raise ValueError(f"angle_deg must be finite, got {angle_deg!r}.")
    rng = np.random.default_rng(seed)
    A, _ = np.linalg.qr(rng.standard_normal((data_dim, n_sources)))         # orthonormal columns
    mixing = A @ _rotation(n_sources, angle)
    if kind == "uniform":
        s = rng.uniform(-math.sqrt(3.0), math.sqrt(3.0), size=(n, n_sources))  # variance 1
    else:
        s = rng.standard_normal((n, n_sources))
    x = s @ mixing.T + noise * rng.standard_normal((n, data_dim))
    return MixedSources(torch.tensor(x, dtype=torch.float32), torch.tensor(s, dtype=torch.float32),
                        torch.tensor(mixing, dtype=torch.float32), kind, float(angle_deg), noise)


def source_factors(sources, n_bins: int = 10) -> np.ndarray:
    """Integer labels ``(N, k)``: each source column cut into ``n_bins`` bins of equal mass (by its
    quantiles), so every factor has entropy close to ``log n_bins`` whatever its distribution."""
    if isinstance(sources, torch.Tensor):
        sources = sources.detach().cpu().numpy()
    s = np.asarray(sources, dtype=np.float64)
    if s.ndim != 2 or len(s) < 2:
        raise ValueError(f"sources must have shape (N, k) with N >= 2, got {s.shape}.")
    if not np.isfinite(s).all():
        raise ValueError("sources has NaN or infinite entries.")
    n_bins = check_positive_int("n_bins", n_bins)
    if n_bins < 2 or n_bins > len(s):
        raise ValueError(f"n_bins must be between 2 and the number of rows ({len(s)}), got {n_bins}.")
    edges = np.quantile(s, np.linspace(0, 1, n_bins + 1)[1:-1], axis=0)      # (n_bins - 1, k)
    return np.stack([np.searchsorted(edges[:, j], s[:, j], side="right") for j in range(s.shape[1])], 1)


def rotation_to_sources(codes: torch.Tensor, sources: torch.Tensor) -> float:
    r"""How far (in degrees, 0 to 45) two-dimensional ``codes`` are rotated away from the ``sources`` axes.

    Fits the linear map from the standardised codes to the standardised sources by least squares,
    takes its nearest orthogonal matrix (the polar factor, from an SVD), reads its rotation angle, and
    reduces it modulo the symmetries of the axes (sign flips and swaps, i.e. multiples of 90°):
    0 means the code axes are the source axes, 45 the worst possible misalignment. A uniformly
    random rotation gives 22.5 on average.
    """
    check_tensor("codes", codes, min_dim=2)
    check_tensor("sources", sources, min_dim=2)
    if codes.dim() != 2 or sources.dim() != 2 or codes.shape[1] != 2 or sources.shape[1] != 2:
        raise ValueError(f"codes and sources must both have shape (N, 2), got {tuple(codes.shape)} "
                         f"and {tuple(sources.shape)}.")
    if len(codes) != len(sources) or len(codes) < 3:
        raise ValueError(f"codes and sources need the same number (>= 3) of rows, got {len(codes)} and {len(sources)}.")
    z = codes.detach().double()
    s = sources.detach().double()
    z = (z - z.mean(0)) / z.std(0).clamp_min(1e-12)
    s = (s - s.mean(0)) / s.std(0).clamp_min(1e-12)
    M = torch.linalg.lstsq(z, s).solution                                    # s ~ z @ M
    U, _, Vh = torch.linalg.svd(M)
    Q = U @ Vh                                                               # nearest orthogonal matrix
    angle = math.degrees(math.atan2(Q[0, 1].item(), Q[0, 0].item()))        # a reflection keeps |angle| mod 90
    a = angle % 90.0
    return float(min(a, 90.0 - a))
