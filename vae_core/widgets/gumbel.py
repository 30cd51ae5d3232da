r"""The Gumbel-softmax explorer (chapter 5), computed in the browser.

:class:`GumbelSoftmaxExplorer` draws seeded Gumbel-softmax samples
:math:`y = \mathrm{softmax}((\theta + G)/\tau)` on the 3-category simplex while the reader moves a
temperature slider and three logit sliders. Its front end (``static/gumbel_explorer.js``) does all
the arithmetic in JavaScript, from a seeded generator (mulberry32), so the page needs no Python
kernel. The functions here repeat that arithmetic in numpy, exactly, so tests (and readers) can
check what the browser draws:

* :func:`~vae_core.widgets.frontend.mulberry32_uniforms` -- the browser's uniforms for a seed;
* :func:`gumbel_from_uniform` -- :math:`G = -\log(-\log U)` with the same clamp;
* :func:`relaxed_samples` -- the points the widget draws.

Typical use (the explorer must be the value of the cell, or passed to ``display``)::

    from vae_core.widgets import GumbelSoftmaxExplorer
    GumbelSoftmaxExplorer(logits=(1.0, 0.0, -1.0), tau=0.5)
"""
from __future__ import annotations

import math
from typing import Sequence

import anywidget
import numpy as np
import traitlets

from ..gumbel import check_tau
from .frontend import esm_source, mulberry32_uniforms

__all__ = ["GumbelSoftmaxExplorer", "gumbel_from_uniform", "relaxed_samples", "U_MIN", "U_MAX"]

#: the clamp of the uniforms before the double logarithm (the same numbers as in the JS).
U_MIN = 1e-12
U_MAX = 1 - 1e-12


def gumbel_from_uniform(u) -> np.ndarray:
    r"""Standard Gumbel noise :math:`-\log(-\log U)` with ``U`` clamped to ``[U_MIN, U_MAX]``."""
    u = np.clip(np.asarray(u, dtype=np.float64), U_MIN, U_MAX)
    return -np.log(-np.log(u))


def relaxed_samples(logits: Sequence[float], tau: float, seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    r"""The widget's samples: ``(y, hard)`` with ``y`` of shape ``(n, K)`` and ``hard`` the argmax.

    The noise for sample ``i``, category ``k`` is ``gumbel_from_uniform(u[i*K + k])`` with
    ``u = mulberry32_uniforms(seed, n*K)``; then :math:`y_i = \mathrm{softmax}((\theta + G_i)/\tau)`
    (computed after subtracting the row maximum) and ``hard[i]`` is :math:`\arg\max_k(\theta_k + G_{ik})`.
    """
    t = check_tau(tau)
    theta = np.asarray(logits, dtype=np.float64)
    if theta.ndim != 1 or theta.size < 2 or not np.all(np.isfinite(theta)):
        raise ValueError(f"logits must be a finite 1-D sequence of at least 2 numbers, got {logits!r}.")
    K = theta.size
    g = gumbel_from_uniform(mulberry32_uniforms(seed, n * K)).reshape(n, K)
    x = (theta + g) / t
    e = np.exp(x - x.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    return y, np.argmax(theta + g, axis=1)


class GumbelSoftmaxExplorer(anywidget.AnyWidget):
    r"""Gumbel-softmax samples on the 3-category simplex, computed in the browser.

    Args:
        logits: three starting logits :math:`\theta` (a slider each).
        tau: the starting temperature :math:`\tau > 0` (a log-scale slider over ``tau_range``).
        n_points: how many samples to draw (at most 5000).
        seed: the seed of the noise; "new noise" adds one.
        logit_range: ``(low, high)`` of the logit sliders.
        tau_range: ``(low, high)`` of the temperature slider, both > 0.
        title: a heading.

    The browser shows the samples coloured by their argmax (the Gumbel-max sample), the point
    :math:`\pi = \mathrm{softmax}(\theta)`, the mean of the relaxed samples, and readouts of
    argmax frequencies. The state (``logits``, ``tau``, ``seed``) is synced: set it from Python to
    move the sliders. :meth:`samples` returns the same points as the browser draws.
    """

    _esm = esm_source("gumbel_explorer.js")

    logits = traitlets.List(traitlets.Float()).tag(sync=True)
    tau = traitlets.Float(0.5).tag(sync=True)
    seed = traitlets.Int(0).tag(sync=True)
    n_points = traitlets.Int(400).tag(sync=True)
    logit_range = traitlets.List(traitlets.Float()).tag(sync=True)
    tau_range = traitlets.List(traitlets.Float()).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    def __init__(self, logits: Sequence[float] = (1.0, 0.0, -1.0), tau: float = 0.5, n_points: int = 400,
                 seed: int = 0, logit_range: Sequence[float] = (-3.0, 3.0),
                 tau_range: Sequence[float] = (0.01, 10.0),
                 title: str = "Gumbel-softmax samples on the simplex", **kwargs):
        try:
            theta = [float(v) for v in logits]
        except TypeError:
            raise TypeError(f"logits must be a sequence of 3 numbers, got {logits!r}.") from None
        if len(theta) != 3 or not all(math.isfinite(v) for v in theta):
            raise ValueError(f"logits must be 3 finite numbers (the widget draws the 3-category simplex), "
                             f"got {logits!r}.")
        lo, hi = (float(v) for v in logit_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"logit_range must be (low, high) with low < high, got {tuple(logit_range)!r}.")
        tlo, thi = (check_tau(v) for v in tau_range)
        if not tlo < thi:
            raise ValueError(f"tau_range must be (low, high) with 0 < low < high, got {tuple(tau_range)!r}.")
        t = check_tau(tau)
        if not tlo <= t <= thi:
            raise ValueError(f"tau must lie in tau_range {tlo, thi}, got {tau!r}.")
        if isinstance(n_points, bool) or not isinstance(n_points, int) or not 1 <= n_points <= 5000:
            raise ValueError(f"n_points must be an int between 1 and 5000, got {n_points!r}.")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 32:
            raise ValueError(f"seed must be an int in [0, 2**32), got {seed!r}.")
        super().__init__(logits=theta, tau=t, seed=seed, n_points=n_points, logit_range=[lo, hi],
                         tau_range=[tlo, thi], title=str(title), **kwargs)

    def samples(self) -> tuple[np.ndarray, np.ndarray]:
        """The points the browser draws now: ``(y, hard)``, see :func:`relaxed_samples`."""
        return relaxed_samples(self.logits, self.tau, self.seed, self.n_points)

    def __repr__(self) -> str:
        return (f"GumbelSoftmaxExplorer(logits={self.logits}, tau={self.tau:g}, n_points={self.n_points}, "
                f"seed={self.seed})")
