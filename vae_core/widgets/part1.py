r"""Explorers for Part I (inference) that compute in the browser.

* :class:`ELBOExplorer` — move a Gaussian :math:`q(z)=\mathcal N(m, s^2)` on the 1-D linear-Gaussian
  model :math:`z\sim\mathcal N(0,1)`, :math:`x|z\sim\mathcal N(wz+b,\sigma^2)` and watch
  :math:`\log p(x) = \mathrm{ELBO}(q) + \mathrm{KL}(q\,\|\,p(z|x))`: the gap closes exactly when
  :math:`q` is the posterior. Front end: ``static/elbo_explorer.js``.
* :class:`KLExplorer` — fit one Gaussian to a two-mode mixture and compare the forward
  :math:`\mathrm{KL}(p\,\|\,q)` (mass-covering) with the reverse :math:`\mathrm{KL}(q\,\|\,p)`
  (mode-seeking), with both optima marked. Front end: ``static/kl_explorer.js``.

All the maths runs in JavaScript (closed forms and small grids), so the explorers work on the static
website with no Python kernel. The Python methods :meth:`ELBOExplorer.readouts` and
:meth:`KLExplorer.readouts` compute the same numbers with :mod:`vae_core.exact`; the tests run the
JavaScript under ``node`` and compare.
"""
from __future__ import annotations

import math

import anywidget
import torch
import traitlets

from .. import exact
from .base import SettingError, validates
from .frontend import esm_source, static_text

__all__ = ["ELBOExplorer", "KLExplorer"]


def _positive(self, name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise SettingError(f"{name} must be a finite number > 0, got {value!r}.")
    return float(value)


def _range(self, name: str, value) -> list:
    if len(value) != 2 or not value[0] < value[1]:
        raise SettingError(f"{name} must be [low, high] with low < high, got {list(value)!r}.")
    return [float(v) for v in value]


def _positive_range(self, name: str, value) -> list:
    if len(value) != 2 or not 0 < value[0] < value[1]:
        raise SettingError(f"{name} must be [low, high] with 0 < low < high, got {list(value)!r}.")
    return [float(v) for v in value]


class ELBOExplorer(anywidget.AnyWidget):
    r"""ELBO, KL gap and :math:`\log p(x)` for a Gaussian :math:`q` on a 1-D linear-Gaussian model.

    Args (all synced traits, all can be moved by sliders except ``b`` and the ranges):
        x: the observed value.
        w, b, sigma: the model :math:`x|z\sim\mathcal N(wz+b,\sigma^2)`, :math:`z\sim\mathcal N(0,1)`.
        q_mean, q_std: the variational distribution :math:`q(z)=\mathcal N(m, s^2)`.
        z_range: the latent axis shown, and the range of the mean slider.
        std_range: the range of the (log-scale) std slider.
        title: heading shown above the explorer.
    """

    _esm = esm_source("elbo_explorer.js")
    _css = static_text("explorers.css")

    x = traitlets.Float(2.0).tag(sync=True)
    w = traitlets.Float(1.5).tag(sync=True)
    b = traitlets.Float(0.0).tag(sync=True)
    sigma = traitlets.Float(0.8).tag(sync=True)
    q_mean = traitlets.Float(-1.0).tag(sync=True)
    q_std = traitlets.Float(1.0).tag(sync=True)
    z_range = traitlets.List(traitlets.Float(), default_value=[-4.0, 4.0]).tag(sync=True)
    std_range = traitlets.List(traitlets.Float(), default_value=[0.05, 3.0]).tag(sync=True)
    title = traitlets.Unicode("ELBO explorer: log p(x) = ELBO + KL(q || p(z|x))").tag(sync=True)

    _check_positive = validates("sigma", "q_std")(_positive)
    _check_z_range = validates("z_range")(_range)
    _check_std_range = validates("std_range")(_positive_range)

    def model(self) -> exact.LinearGaussian:
        """The explorer's model as a :class:`vae_core.exact.LinearGaussian`."""
        return exact.LinearGaussian(self.w, [self.b], self.sigma)

    def readouts(self) -> dict:
        """The numbers the browser shows, computed in Python with :mod:`vae_core.exact` (float64)."""
        m = self.model()
        x = torch.tensor([self.x], dtype=exact.DTYPE)
        mu = torch.tensor([self.q_mean], dtype=exact.DTYPE)
        logvar = torch.tensor([2 * math.log(self.q_std)], dtype=exact.DTYPE)
        post_mean, post_cov = m.posterior(x)
        recon = m.expected_log_likelihood(x, mu, logvar).item()
        elbo = m.elbo(x, mu, logvar).item()
        return {
            "logEvidence": m.log_evidence(x).item(),
            "elbo": elbo,
            "recon": recon,
            "klPrior": recon - elbo,
            "gap": m.kl_to_posterior(x, mu, logvar).item(),
            "postMean": post_mean.item(),
            "postStd": post_cov.sqrt().item(),
        }

    def __repr__(self) -> str:
        return (f"ELBOExplorer(x={self.x:g}, w={self.w:g}, b={self.b:g}, sigma={self.sigma:g}, "
                f"q_mean={self.q_mean:g}, q_std={self.q_std:g})")


class KLExplorer(anywidget.AnyWidget):
    r"""Forward and reverse KL between a two-mode mixture and one Gaussian, over :math:`q`'s mean and std.

    The target is :math:`p = \pi\,\mathcal N(-d/2,\tau^2) + (1-\pi)\,\mathcal N(d/2,\tau^2)`.

    Args (synced traits):
        separation: the distance :math:`d` between the modes.
        weight: the weight :math:`\pi` of the left mode, in (0, 1).
        component_std: the common std :math:`\tau` of the modes.
        q_mean, q_std: the approximation :math:`q=\mathcal N(m, s^2)`.
        mean_range, std_range: the axes of the maps (and slider ranges).
        title: heading shown above the explorer.
    """

    _esm = esm_source("kl_explorer.js")
    _css = static_text("explorers.css")

    separation = traitlets.Float(4.0).tag(sync=True)
    weight = traitlets.Float(0.4).tag(sync=True)
    component_std = traitlets.Float(0.6).tag(sync=True)
    q_mean = traitlets.Float(0.5).tag(sync=True)
    q_std = traitlets.Float(1.0).tag(sync=True)
    mean_range = traitlets.List(traitlets.Float(), default_value=[-5.0, 5.0]).tag(sync=True)
    std_range = traitlets.List(traitlets.Float(), default_value=[0.1, 4.0]).tag(sync=True)
    title = traitlets.Unicode("Forward vs reverse KL: fitting one Gaussian to two modes").tag(sync=True)

    _check_positive = validates("component_std", "q_std")(_positive)

    @validates("separation")
    def _check_separation(self, name, v):
        if not (math.isfinite(v) and v >= 0):
            raise SettingError(f"separation must be a finite number >= 0, got {v!r}.")
        return v

    @validates("weight")
    def _check_weight(self, name, v):
        if not 0 < v < 1:
            raise SettingError(f"weight must lie strictly between 0 and 1, got {v!r}.")
        return v

    _check_mean_range = validates("mean_range")(_range)
    _check_std_range = validates("std_range")(_positive_range)

    def mixture(self) -> exact.GaussianMixture1D:
        """The target as a :class:`vae_core.exact.GaussianMixture1D`."""
        d, t = self.separation / 2, self.component_std
        return exact.GaussianMixture1D([self.weight, 1 - self.weight], [-d, d], [t, t])

    def readouts(self) -> dict:
        """KLs at the current q and the optima, computed in Python with :mod:`vae_core.exact`.

        ``reverseOptima`` lists the local minima of the reverse KL found by BFGS started at each
        mode and at the forward optimum, best first (duplicates merged)."""
        p = self.mixture()
        fwd = exact.fit_forward_kl(p)
        fits = []
        starts = [(mean, self.component_std) for mean in p.means.tolist()] + [(fwd.mean, fwd.std)]
        for mean, std in starts:
            f = exact.fit_reverse_kl(p, mean, std)
            if all(abs(f.mean - g.mean) + abs(f.std - g.std) > 1e-3 for g in fits):
                fits.append(f)
        fits.sort(key=lambda f: f.kl)
        return {
            "klForward": exact.kl_forward(p, self.q_mean, self.q_std).item(),
            "klReverse": exact.kl_reverse(p, self.q_mean, self.q_std).item(),
            "forwardOptimum": fwd._asdict(),
            "reverseOptima": [f._asdict() for f in fits],
        }

    def __repr__(self) -> str:
        return (f"KLExplorer(separation={self.separation:g}, weight={self.weight:g}, "
                f"component_std={self.component_std:g}, q_mean={self.q_mean:g}, q_std={self.q_std:g})")
