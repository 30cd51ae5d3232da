r"""Priors :math:`p(z)` as objects, each with ``log_prob(z)`` and ``sample(n, generator)``.

A model is an encoder, a decoder and one of these; swapping the prior is what chapters 13 and 14 do:

* :class:`StandardNormal` -- :math:`\mathcal N(0, I)`, the VAE's (chapter 6);
* :class:`GaussianMixture` -- :math:`\sum_c \pi_c\,\mathcal N(\mu_c, \operatorname{diag}\sigma_c^2)`
  with learned weights, means and variances, VaDE's (chapter 13);
* :class:`ImplicitPrior` -- :math:`\mathcal N(z; 0, I)\,e^{T(z)}` with :math:`T` a density-ratio
  discriminator, which approaches the aggregate posterior :math:`q(z)` (chapter 14);
* :class:`UniformCategorical` -- ``n_variables`` independent uniform categoricals over ``n_categories``
  (chapter 12), on one-hot codes ``(..., n_variables, n_categories)``.

``log_prob`` sums over the code's dimensions and keeps every leading (sample, batch) dimension. Priors
without parameters carry a non-persistent buffer, so that ``model.to(device)`` and ``model.double()``
move where their samples are drawn.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ._validate import check_positive_int
from .distributions import gaussian_log_prob, standard_normal_log_prob
from .nets import LOGVAR_BOUND, Discriminator, soft_clamp

__all__ = ["Prior", "StandardNormal", "GaussianMixture", "ImplicitPrior", "UniformCategorical"]


class Prior(nn.Module):
    """Base class: ``dim`` (the code size), ``log_prob(z)``, ``sample(n, generator)``."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = check_positive_int("dim", dim)
        self.register_buffer("_like", torch.zeros(()), persistent=False)   # device and dtype of samples

    def _randn(self, *shape, generator=None) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, device=self._like.device, dtype=self._like.dtype)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError


class StandardNormal(Prior):
    r""":math:`p(z) = \mathcal N(0, I_d)`."""

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return standard_normal_log_prob(z)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self._randn(check_positive_int("n", n), self.dim, generator=generator)


class GaussianMixture(Prior):
    r""":math:`p(z) = \sum_c \pi_c\,\mathcal N(z; \mu_c, \operatorname{diag}\sigma_c^2)`, all learned.

    The weights stay on the simplex as :math:`\pi = \mathrm{softmax}(\text{logits})`; the
    log-variances are soft-clamped to (-10, 10) like an encoder's. Responsibilities
    :math:`p(c|z)` are computed in log space (never by dividing densities).
    """

    def __init__(self, n_components: int, dim: int):
        super().__init__(dim)
        self.n_components = check_positive_int("n_components", n_components)
        self.logits = nn.Parameter(torch.zeros(n_components))
        self.means = nn.Parameter(torch.randn(n_components, dim))   # spread out before any fit to data
        self._logvars = nn.Parameter(torch.zeros(n_components, dim))

    @property
    def logvars(self) -> torch.Tensor:
        r""":math:`\log\sigma_c^2`, shape ``(K, d)``."""
        return soft_clamp(self._logvars)

    @property
    def log_weights(self) -> torch.Tensor:
        r""":math:`\log\pi`, shape ``(K,)``."""
        return torch.log_softmax(self.logits, dim=-1)

    def log_joint(self, z: torch.Tensor) -> torch.Tensor:
        r""":math:`\log\pi_c + \log\mathcal N(z; \mu_c, \sigma_c^2)` for every component: ``(..., K)``."""
        return self.log_weights + gaussian_log_prob(z.unsqueeze(-2), self.means, self.logvars)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(self.log_joint(z), dim=-1)

    def log_responsibilities(self, z: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(c|z)`, shape ``(..., K)``."""
        return torch.log_softmax(self.log_joint(z), dim=-1)

    def sample_with_components(self, n: int, component=None, generator: torch.Generator | None = None):
        """``(z, c)``: ``n`` codes and their components; ``component`` (an int or ``n`` ints) fixes them."""
        check_positive_int("n", n)
        if component is None:
            c = torch.multinomial(self.log_weights.exp(), n, replacement=True, generator=generator)
        else:
            c = torch.as_tensor(component, device=self.means.device)
            if c.is_floating_point() or c.dim() > 1:
                raise TypeError(f"component must be an int or a 1-D tensor of ints, got {component!r}.")
            c = c.long().expand(n) if c.dim() == 0 else c.long()
            if c.shape != (n,) or bool((c < 0).any()) or bool((c >= self.n_components).any()):
                raise ValueError(f"component must be an int or n={n} ints in [0, {self.n_components}), "
                                 f"got {component!r}.")
        eps = self._randn(n, self.dim, generator=generator)
        return self.means[c] + torch.exp(0.5 * self.logvars[c]) * eps, c

    def sample(self, n: int, generator: torch.Generator | None = None, component=None) -> torch.Tensor:
        return self.sample_with_components(n, component, generator)[0]

    @torch.no_grad()
    def set_parameters(self, weights, means, variances) -> None:
        """Copy a fitted mixture in (e.g. scikit-learn's ``weights_``, ``means_``, ``covariances_`` for
        diagonal covariances); the log-variances are stored through the inverse of the soft clamp."""
        like = self.means
        w, m, v = (torch.as_tensor(a, dtype=like.dtype, device=like.device) for a in (weights, means, variances))
        if w.shape != (self.n_components,) or m.shape != self.means.shape or v.shape != self.means.shape:
            raise ValueError(f"expected weights ({self.n_components},) and means, variances "
                             f"{tuple(self.means.shape)}; got {tuple(w.shape)}, {tuple(m.shape)}, {tuple(v.shape)}.")
        self.logits.copy_(w.clamp_min(1e-12).log())
        self.means.copy_(m)
        inside = (v.log() / LOGVAR_BOUND).clamp(-0.999, 0.999)
        self._logvars.copy_(LOGVAR_BOUND * torch.atanh(inside))


class ImplicitPrior(Prior):
    r""":math:`p(z) \propto \mathcal N(z; 0, I)\,e^{T(z)}`, with :math:`T` a :class:`~vae_core.nets.Discriminator`.

    Trained by :meth:`discriminator_loss` to tell codes of the aggregate posterior :math:`q(z)`
    (label 1) from :math:`\mathcal N(0, I)` draws (label 0), its optimal logit is
    :math:`T^* = \log q(z)/\mathcal N(z; 0, I)`, so the prior approaches :math:`q(z)`.

    **Unnormalised, and normalisable.** A trained :math:`T` is not the exact ratio, so
    :math:`Z = \int\mathcal N(z)e^{T(z)}dz` (:meth:`log_normaliser`, :meth:`estimate_log_normaliser`
    estimate its log) need not be 1; ``log_prob`` is the unnormalised :math:`\log\mathcal N(z; 0, I) + T(z)`.
    For *any* :math:`T` with finite :math:`Z`, :math:`\mathcal N(z)e^{T(z)}/Z` is a proper density, so
    ``log_prob(z) - log Z`` is the log density of a well-defined prior, and an ELBO or importance-sampled
    :math:`\log p(x)` computed with it is a true bound / estimate of that model, exact up to the
    Monte-Carlo error of :math:`\log\hat Z`. How well :math:`T` matches :math:`\log q/p` decides how
    *good* that prior is, not whether the number is valid.
    """

    def __init__(self, dim: int, hidden_dims: Sequence[int] | int = (256, 256)):
        super().__init__(dim)
        self.discriminator = Discriminator(dim, hidden_dims)

    def log_ratio(self, z: torch.Tensor) -> torch.Tensor:
        r""":math:`T(z) \approx \log q(z) - \log\mathcal N(z; 0, I)`, shape ``z.shape[:-1]``."""
        return self.discriminator(z)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return standard_normal_log_prob(z) + self.log_ratio(z)

    def discriminator_loss(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The classifier's loss on codes ``z`` of q (label 1) against as many N(0, I) draws (label 0);
        ``z`` is detached, so this trains only :math:`T`."""
        z = z.detach().reshape(-1, self.dim)
        return self.discriminator.ratio_loss(z, torch.randn(z.shape, generator=generator, device=z.device,
                                                            dtype=z.dtype))

    @torch.no_grad()
    def log_normaliser(self, n_samples: int = 10_000, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Monte-Carlo :math:`\log\mathbb E_{\mathcal N(0,I)}[e^{T(z)}]`: 0 for the exact ratio."""
        z = self._randn(check_positive_int("n_samples", n_samples), self.dim, generator=generator)
        return torch.logsumexp(self.log_ratio(z), dim=0) - math.log(n_samples)

    @torch.no_grad()
    def estimate_log_normaliser(self, n_samples: int = 20_000, generator: torch.Generator | None = None,
                                proposal: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[float, float]:
        r"""``(log Ẑ, standard error)``: :math:`\log Z = \log\int\mathcal N(z)e^{T(z)}dz` by importance sampling.

        With ``proposal=None`` the draws come from :math:`\mathcal N(0, I)` (as :meth:`log_normaliser`);
        with ``proposal=(mu, logvar)``, shapes ``(M, d)``, from the equal-weight mixture of those diagonal
        Gaussians (e.g. the encoder's posteriors of M training images), which puts the draws where the
        codes, and so the large values of :math:`e^{T}`, are: a much smaller variance when :math:`T` is
        large there. The standard error is the delta method's, :math:`\mathrm{sd}(w)/(\sqrt n\,\bar w)`;
        :math:`\log\hat Z` is biased low by about half its squared relative error (Jensen), so
        subtracting it makes a bound slightly optimistic, by about ``se**2 / 2``."""
        n = check_positive_int("n_samples", n_samples)
        if proposal is None:
            z = self._randn(n, self.dim, generator=generator)
            log_w = self.log_ratio(z)
        else:
            if not (isinstance(proposal, tuple) and len(proposal) == 2):
                raise TypeError("proposal must be None or a pair (mu, logvar) of (M, d) tensors.")
            mu, logvar = proposal
            if mu.dim() != 2 or mu.shape != logvar.shape or mu.shape[1] != self.dim:
                raise ValueError(f"proposal (mu, logvar) must both have shape (M, {self.dim}), got "
                                 f"{tuple(mu.shape)} and {tuple(logvar.shape)}.")
            from .prior_theory import mixture_log_prob
            idx = torch.randint(len(mu), (n,), generator=generator, device=mu.device)
            z = mu[idx] + torch.exp(0.5 * logvar[idx]) * self._randn(n, self.dim, generator=generator)
            log_w = standard_normal_log_prob(z) + self.log_ratio(z) - mixture_log_prob(z, mu, logvar)
        log_z = torch.logsumexp(log_w, 0) - math.log(n)
        w = torch.exp(log_w - log_w.max())
        se = (w.std() / (math.sqrt(n) * w.mean())).item() if n > 1 else float("inf")
        return log_z.item(), se

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, n_candidates: int = 32) -> torch.Tensor:
        r"""Sampling-importance-resampling: ``n_candidates`` draws of :math:`\mathcal N(0, I)` per code,
        one kept with probability :math:`\propto e^{T(z)}` (exact as ``n_candidates`` grows)."""
        check_positive_int("n", n)
        cand = self._randn(n, check_positive_int("n_candidates", n_candidates), self.dim, generator=generator)
        pick = torch.multinomial(torch.softmax(self.log_ratio(cand), dim=-1), 1, generator=generator).squeeze(-1)
        return cand[torch.arange(n, device=cand.device), pick]


class UniformCategorical(Prior):
    r"""``n_variables`` independent uniform categoricals over ``n_categories``: :math:`\log p = -N\log K`.

    Codes are one-hot (or relaxed) arrays ``(..., N, K)``; ``dim`` is ``N``.
    """

    def __init__(self, n_variables: int, n_categories: int):
        super().__init__(n_variables)
        self.n_categories = check_positive_int("n_categories", n_categories)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return torch.full(z.shape[:-2], -self.dim * math.log(self.n_categories), device=z.device, dtype=z.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        check_positive_int("n", n)
        idx = torch.randint(self.n_categories, (n, self.dim), generator=generator, device=self._like.device)
        return nn.functional.one_hot(idx, self.n_categories).to(self._like.dtype)
