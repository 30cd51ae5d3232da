r"""Explorers for Part II (gradients through randomness) that compute in the browser.

:class:`EstimatorExplorer` shows histograms of single-sample estimates of
:math:`\tfrac{d}{d\mu}\mathbb E_{\mathcal N(\mu,\sigma^2)}[f(z)]` by the score-function and the
reparameterization estimators, for a few functions ``f`` with a known exact gradient, with sliders
for :math:`\mu`, :math:`\sigma`, the shape of ``f`` and a baseline. Its front end is
``static/estimator_explorer.js``; :func:`normals`, :func:`estimator_samples`, :func:`exact_gradient`
and :func:`optimal_baseline` repeat its arithmetic in numpy.

:class:`GumbelSoftmaxExplorer` draws seeded Gumbel-softmax samples
:math:`y = \mathrm{softmax}((\theta + G)/\tau)` on the 3-category simplex while the reader moves a
temperature slider and three logit sliders. Its front end (``static/gumbel_explorer.js``) does all
the arithmetic in JavaScript, from a seeded generator (mulberry32), so the page needs no Python
kernel. The functions here repeat that arithmetic in numpy, exactly, so tests (and readers) can
check what the browser draws:

* :func:`mulberry32_uniforms` -- the browser's uniforms for a seed;
* :func:`gumbel_from_uniform` -- :math:`G = -\log(-\log U)` with the same clamp;
* :func:`relaxed_samples` -- the points the widget draws.

Typical use (the explorer must be the value of the cell, or passed to ``display``)::

    from vae_core.estimator_widgets import GumbelSoftmaxExplorer
    GumbelSoftmaxExplorer(logits=(1.0, 0.0, -1.0), tau=0.5)
"""
from __future__ import annotations

import math
from typing import Sequence

import anywidget
import numpy as np
import traitlets

from .estimators import check_tau
from .widgets import esm_source

__all__ = ["GumbelSoftmaxExplorer", "mulberry32_uniforms", "gumbel_from_uniform", "relaxed_samples",
           "U_MIN", "U_MAX", "EstimatorExplorer", "normals", "estimator_samples", "exact_gradient",
           "optimal_baseline", "FUNCTIONS"]

_MASK = 0xFFFFFFFF
#: the clamp of the uniforms before the double logarithm (the same numbers as in the JS).
U_MIN = 1e-12
U_MAX = 1 - 1e-12


def _imul(a: int, b: int) -> int:
    """JavaScript's ``Math.imul`` on unsigned 32-bit representations: the low 32 bits of a*b."""
    return (a * b) & _MASK


def mulberry32_uniforms(seed: int, n: int) -> np.ndarray:
    """The ``n`` uniforms in [0, 1) that ``mulberry32(seed)`` yields in the browser, bit for bit."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}.")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}.")
    a = int(seed) & _MASK
    out = np.empty(int(n), dtype=np.float64)
    for i in range(int(n)):
        a = (a + 0x6D2B79F5) & _MASK
        t = a
        t = _imul(t ^ (t >> 15), t | 1)
        t = (t ^ ((t + _imul(t ^ (t >> 7), t | 61)) & _MASK)) & _MASK
        out[i] = ((t ^ (t >> 14)) & _MASK) / 4294967296.0
    return out


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


# --------------------------------------------------------------------------- estimator explorer

def normals(seed: int, n: int) -> np.ndarray:
    """The browser's ``n`` standard normals for ``seed``: Box-Muller on pairs of mulberry32 uniforms."""
    u = mulberry32_uniforms(seed, 2 * n).reshape(n, 2)
    u1 = np.maximum(u[:, 0], 1e-12)
    return np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u[:, 1])


def _phi(x):
    return np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


#: name -> (f(z, k), f'(z, k), exact d/dmu E[f] for z ~ N(mu, sigma^2)); the same as the JS.
FUNCTIONS = {
    "quadratic": (lambda z, k: (z - k) ** 2, lambda z, k: 2 * (z - k),
                  lambda mu, s, k: 2 * (mu - k)),
    "exp": (lambda z, k: np.exp(k * z), lambda z, k: k * np.exp(k * z),
            lambda mu, s, k: k * math.exp(k * mu + 0.5 * k * k * s * s)),
    "cos": (lambda z, k: np.cos(k * z), lambda z, k: -k * np.sin(k * z),
            lambda mu, s, k: -k * math.sin(k * mu) * math.exp(-0.5 * k * k * s * s)),
    "step": (lambda z, k: (z > k).astype(float), lambda z, k: np.zeros_like(z),
             lambda mu, s, k: float(_phi((mu - k) / s)) / s),
}


def _check_function(name: str):
    if name not in FUNCTIONS:
        raise ValueError(f"function must be one of {sorted(FUNCTIONS)}, got {name!r}.")
    return FUNCTIONS[name]


def exact_gradient(name: str, mu: float, sigma: float, k: float) -> float:
    r""":math:`\tfrac{d}{d\mu}\mathbb E_{\mathcal N(\mu,\sigma^2)}[f(z; k)]` in closed form."""
    return float(_check_function(name)[2](mu, sigma, k))


def estimator_samples(name: str, mu: float, sigma: float, k: float, baseline: float,
                      eps) -> tuple[np.ndarray, np.ndarray]:
    r"""Per-sample estimates ``(score_function, reparameterization)`` of the :math:`\mu`-gradient.

    With :math:`z = \mu + \sigma\varepsilon`: :math:`(f(z) - b)(z-\mu)/\sigma^2` and :math:`f'(z)`
    (0 for the step, as autograd would say).
    """
    f, df, _ = _check_function(name)
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}.")
    z = mu + sigma * np.asarray(eps, dtype=np.float64)
    return (f(z, k) - baseline) * (z - mu) / sigma ** 2, df(z, k)


def optimal_baseline(name: str, mu: float, sigma: float, k: float, eps) -> float:
    r"""The variance-minimising constant baseline :math:`b^\star = \mathbb E[f s^2]/\mathbb E[s^2]`, from ``eps``."""
    f = _check_function(name)[0]
    eps = np.asarray(eps, dtype=np.float64)
    s = eps / sigma
    return float((f(mu + sigma * eps, k) * s * s).sum() / (s * s).sum())


class EstimatorExplorer(anywidget.AnyWidget):
    r"""Score function versus reparameterization for :math:`\tfrac{d}{d\mu}\mathbb E_{\mathcal N(\mu,\sigma^2)}[f(z)]`, in the browser.

    Args:
        function: ``"quadratic"`` :math:`(z-k)^2`, ``"exp"`` :math:`e^{kz}`, ``"cos"`` :math:`\cos(kz)` or
            ``"step"`` :math:`\mathbf 1[z > k]`.
        k, mu, sigma: the shape of ``f`` and the Gaussian (``sigma > 0``).
        baseline: the constant subtracted from ``f`` in the score-function estimate.
        n_samples: samples per histogram (at most 20000). seed: the noise's seed.

    :meth:`samples` returns the per-sample estimates the browser draws.
    """

    _esm = esm_source("estimator_explorer.js")

    function = traitlets.Unicode("quadratic").tag(sync=True)
    k = traitlets.Float(1.0).tag(sync=True)
    mu = traitlets.Float(0.0).tag(sync=True)
    sigma = traitlets.Float(1.0).tag(sync=True)
    baseline = traitlets.Float(0.0).tag(sync=True)
    seed = traitlets.Int(0).tag(sync=True)
    n_samples = traitlets.Int(2000).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    def __init__(self, function: str = "quadratic", k: float = 1.0, mu: float = 0.0, sigma: float = 1.0,
                 baseline: float = 0.0, n_samples: int = 2000, seed: int = 0,
                 title: str = "Score function versus reparameterization", **kwargs):
        _check_function(function)
        values = {"k": k, "mu": mu, "sigma": sigma, "baseline": baseline}
        for name, v in values.items():
            try:
                values[name] = float(v)
            except (TypeError, ValueError):
                raise TypeError(f"{name} must be a number, got {v!r}.") from None
            if not math.isfinite(values[name]):
                raise ValueError(f"{name} must be finite, got {v!r}.")
        if not values["sigma"] > 0:
            raise ValueError(f"sigma must be > 0, got {sigma!r}.")
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or not 2 <= n_samples <= 20000:
            raise ValueError(f"n_samples must be an int between 2 and 20000, got {n_samples!r}.")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 32:
            raise ValueError(f"seed must be an int in [0, 2**32), got {seed!r}.")
        super().__init__(function=function, n_samples=n_samples, seed=seed, title=str(title), **values,
                         **kwargs)

    def samples(self) -> tuple[np.ndarray, np.ndarray]:
        """The per-sample ``(score_function, reparameterization)`` estimates the browser draws now."""
        return estimator_samples(self.function, self.mu, self.sigma, self.k, self.baseline,
                                 normals(self.seed, self.n_samples))

    def __repr__(self) -> str:
        return (f"EstimatorExplorer(function={self.function!r}, k={self.k:g}, mu={self.mu:g}, "
                f"sigma={self.sigma:g}, baseline={self.baseline:g}, n_samples={self.n_samples})")
