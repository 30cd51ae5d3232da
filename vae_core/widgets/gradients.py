r"""The gradient-estimator explorer (chapter 4), computed in the browser.

:class:`EstimatorExplorer` shows histograms of single-sample estimates of
:math:`\tfrac{d}{d\mu}\mathbb E_{\mathcal N(\mu,\sigma^2)}[f(z)]` by the score-function and the
reparameterization estimators, for a few functions ``f`` with a known exact gradient, with sliders
for :math:`\mu`, :math:`\sigma`, the shape of ``f`` and a baseline. Its front end is
``static/estimator_explorer.js``; :func:`normals`, :func:`estimator_samples`, :func:`exact_gradient`
and :func:`optimal_baseline` repeat its arithmetic in numpy.
"""
from __future__ import annotations

import math

import anywidget
import numpy as np
import traitlets

from .frontend import esm_source, mulberry32_uniforms

__all__ = ["EstimatorExplorer", "normals", "estimator_samples", "exact_gradient", "optimal_baseline",
           "FUNCTIONS"]


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
