r"""Small 2-D data sets with curved clusters (chapter 13).

A Gaussian mixture fitted directly to data whose clusters are curved has to cover each curve with
several ellipses, or one ellipse with several curves, so its clusters do not match the true ones.
A model that learns a map from a Gaussian-mixture latent space to the data (VaDE) can straighten the
curves first. :func:`pinwheel` draws the standard example of this, the "pinwheel" of Johnson et al.
(2016, structured VAEs): ``n_arms`` arms of a spiral, each a Gaussian blob stretched along the radius
and bent by an angle that grows exponentially with the distance from the centre.
:func:`lift` embeds such 2-D points in more dimensions by a fixed map with orthonormal columns, plus
a little isotropic noise, so that an encoder has something to compress.

Everything is NumPy/torch with an explicit seed: the same seed gives the same points.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .._validate import check_positive_int

__all__ = ["ToyData", "pinwheel", "lift"]


class ToyData(NamedTuple):
    """Points ``x`` ``(N, D)`` float32, labels ``y`` ``(N,)`` int64 (the arm of each point)."""
    x: torch.Tensor
    y: torch.Tensor


def _check_nonnegative(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
    return float(value)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be an int >= 0, got {seed!r}.")
    return int(seed)


def pinwheel(n_per_arm: int = 600, n_arms: int = 5, radial_std: float = 0.3, tangential_std: float = 0.05,
             rate: float = 0.25, scale: float = 1.0, seed: int = 0, shuffle: bool = True) -> ToyData:
    r"""Points on the arms of a pinwheel (Johnson et al., 2016), with the arm as the label.

    Arm :math:`k` starts as :math:`u \sim \mathcal N\big((1, 0), \operatorname{diag}(s_r^2, s_t^2)\big)`
    and is rotated by the angle :math:`2\pi k/K + \text{rate}\cdot e^{u_1}`, so it bends more the
    further out it reaches; the result is multiplied by ``scale``. With ``rate = 0`` the arms are
    straight Gaussian blobs, and a Gaussian mixture recovers them.

    Args:
        n_per_arm: points per arm (positive int).
        n_arms: number of arms :math:`K` (positive int).
        radial_std, tangential_std: :math:`s_r, s_t` (>= 0), the spread along and across an arm.
        rate: how fast an arm bends (>= 0).
        scale: a factor applied to every point (> 0).
        seed: seeds NumPy's ``default_rng``.
        shuffle: when True the rows are put in a random order (labels follow their points).

    Returns:
        :class:`ToyData` with ``x`` of shape ``(n_arms * n_per_arm, 2)``.
    """
    check_positive_int("n_per_arm", n_per_arm)
    check_positive_int("n_arms", n_arms)
    radial_std = _check_nonnegative("radial_std", radial_std)
    tangential_std = _check_nonnegative("tangential_std", tangential_std)
    rate = _check_nonnegative("rate", rate)
    if _check_nonnegative("scale", scale) == 0:
        raise ValueError("scale must be > 0, got 0.")
    rng = np.random.default_rng(_check_seed(seed))
    labels = np.repeat(np.arange(n_arms), n_per_arm)
    u = rng.standard_normal((len(labels), 2)) * np.array([radial_std, tangential_std])
    u[:, 0] += 1.0
    angles = 2 * np.pi * labels / n_arms + rate * np.exp(u[:, 0])
    c, s = np.cos(angles), np.sin(angles)
    points = np.stack([c * u[:, 0] - s * u[:, 1], s * u[:, 0] + c * u[:, 1]], axis=1) * scale
    if shuffle:
        order = rng.permutation(len(labels))
        points, labels = points[order], labels[order]
    return ToyData(torch.as_tensor(points, dtype=torch.float32), torch.as_tensor(labels, dtype=torch.int64))


def lift(points, dim: int = 10, noise: float = 0.05, seed: int = 0):
    r"""Embed ``points`` ``(N, d)`` in ``dim`` dimensions: :math:`x = A p + \text{noise}\cdot\varepsilon`.

    :math:`A` (``dim`` × ``d``) has orthonormal columns (drawn with ``seed``), so distances between the
    embedded points equal those between the original points, up to the noise
    :math:`\varepsilon \sim \mathcal N(0, I_{\text{dim}})`.

    Returns ``(x, A)``: float32 tensors of shapes ``(N, dim)`` and ``(dim, d)``.
    """
    p = torch.as_tensor(points)
    if p.ndim != 2 or not p.is_floating_point():
        raise ValueError(f"points must be a float array of shape (N, d), got {p.dtype} {tuple(p.shape)}.")
    check_positive_int("dim", dim)
    if dim < p.shape[1]:
        raise ValueError(f"dim must be at least the points' dimension {p.shape[1]}, got {dim}.")
    noise = _check_nonnegative("noise", noise)
    rng = np.random.default_rng(_check_seed(seed))
    a, _ = np.linalg.qr(rng.standard_normal((dim, p.shape[1])))
    A = torch.as_tensor(a, dtype=torch.float32)
    x = p.float() @ A.T + noise * torch.as_tensor(rng.standard_normal((p.shape[0], dim)), dtype=torch.float32)
    return x, A
