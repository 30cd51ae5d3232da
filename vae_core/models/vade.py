r"""Variational Deep Embedding, VaDE (Jiang et al., 2017): a VAE whose prior is a Gaussian mixture.

The generative story has a cluster ``c`` above the code ``z``:

.. math:: c \sim \mathrm{Cat}(\pi),\qquad z \mid c \sim \mathcal N(\mu_c, \operatorname{diag}\sigma_c^2),
          \qquad x \mid z \sim p_\theta(x \mid z),

so the prior of ``z`` is the mixture :math:`p(z) = \sum_c \pi_c\,\mathcal N(z; \mu_c, \sigma_c^2)`
(:class:`vae_core.priors.GaussianMixture`). Inference is :math:`q(z, c \mid x) = q_\phi(z \mid x)\,q(c \mid x)`
with :math:`q(c \mid x)` the responsibilities :math:`\gamma_c = p(c \mid z)` at a sample
:math:`z \sim q_\phi(z\mid x)`. The ELBO is then

.. math:: \mathcal L(x) = \mathbb E_{q(z|x)}[\log p_\theta(x|z)]
          - \sum_c \gamma_c\,\mathrm{KL}\big(q_\phi(z|x)\,\|\,\mathcal N(\mu_c, \sigma_c^2)\big)
          - \mathrm{KL}(\gamma\,\|\,\pi),

with the Gaussian KLs in closed form.

Training follows the paper: pretrain the encoder and decoder as a deterministic autoencoder, fit a
Gaussian mixture (scikit-learn's ``GaussianMixture``) to the codes, copy it into the prior
(:meth:`VaDE.init_mixture`), then maximise the ELBO: :func:`vae_core.train.pretrain_vade`, then
:func:`vae_core.fit`.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .._validate import check_positive_int
from ..distributions import kl_normal_normal
from ..estimators import reparameterize
from ..nets import LOGVAR_BOUND
from ..priors import GaussianMixture
from .base import Batch, Output
from .vae import VAE

__all__ = ["VaDE"]


class VaDE(VAE):
    r"""A VAE with a learned Gaussian-mixture prior that clusters its codes.

    Args:
        input_dim: number of pixels D.
        latent_dim: size d of the code (the paper: 10).
        n_clusters: number of mixture components K (the paper: 10 for MNIST).
        hidden_dims: hidden layers of the encoder (the decoder mirrors them); the paper's
            784-500-500-2000-10 network is the default.
        likelihood, activation: as :class:`~vae_core.models.vae.VAE` (the paper uses ReLU).

    The prior is ``self.prior``, a :class:`~vae_core.priors.GaussianMixture`; ``pi`` (K,),
    ``cluster_means`` (K, d) and ``cluster_logvars`` (K, d) read its parameters. Settings:
    ``beta`` (the weight of both KL terms) and ``n_samples``; the KLs are always in closed form.
    """

    settings = {"beta": 1.0, "n_samples": 1}

    def __init__(self, input_dim: int, latent_dim: int, n_clusters: int = 10,
                 hidden_dims: Sequence[int] | int = (500, 500, 2000), likelihood: str = "bernoulli",
                 activation: str = "relu"):
        check_positive_int("n_clusters", n_clusters)
        super().__init__(input_dim, latent_dim, hidden_dims, likelihood, activation)
        self.prior = GaussianMixture(n_clusters, latent_dim)                                 # p(z), p(c|z)

    @property
    def pi(self) -> torch.Tensor:
        r""":math:`\pi`, the mixture weights ``(K,)`` (on the simplex)."""
        return self.prior.log_weights.exp()

    @property
    def cluster_means(self) -> torch.Tensor:
        r""":math:`\mu_c`, shape ``(K, d)``."""
        return self.prior.means

    @property
    def cluster_logvars(self) -> torch.Tensor:
        r""":math:`\log\sigma_c^2`, shape ``(K, d)``, soft-clamped to ``(-10, 10)``."""
        return self.prior.logvars

    def responsibilities(self, z: torch.Tensor) -> torch.Tensor:
        r""":math:`\gamma_c = p(c \mid z)`, shape ``(..., K)``; each row sums to one."""
        return self.prior.log_responsibilities(z).exp()

    # -- the objective --------------------------------------------------------------------------
    def terms(self, x: torch.Tensor, generator: torch.Generator | None = None, n_samples: int | None = None,
              kl: str | None = None) -> dict:
        r"""Per-example ``recon``, ``kl_z`` (:math:`\sum_c\gamma_c\,\mathrm{KL}(q(z|x)\,\|\,\mathcal N(\mu_c,\sigma_c^2))`),
        ``kl_c`` (:math:`\mathrm{KL}(\gamma\,\|\,\pi)`), ``kl = kl_z + kl_c`` and ``gamma`` ``(B, K)``, the
        responsibilities averaged over the ``n_samples`` draws of ``z``. ``kl`` must be ``"analytic"``."""
        if kl not in (None, "analytic"):
            raise ValueError(f"VaDE computes its KL terms in closed form: kl must be 'analytic', got {kl!r}.")
        L = n_samples or self.n_samples
        mu, logvar = self.encoder(x)
        z = reparameterize(mu, logvar, L, generator)                                        # (L, B, d)
        recon = self.decoder.log_prob(x, z).mean(0)                                         # E_q log p(x|z)
        log_gamma = torch.logsumexp(self.prior.log_responsibilities(z), 0) - math.log(L)    # log q(c|x), (B, K)
        gamma = log_gamma.exp()
        kl_each = kl_normal_normal(mu.unsqueeze(-2), logvar.unsqueeze(-2), self.prior.means, self.prior.logvars)
        kl_z = (gamma * kl_each).sum(-1)                                                    # sum_c gamma_c KL_c
        kl_c = (gamma * (log_gamma - self.prior.log_weights)).sum(-1)                       # KL(gamma || pi)
        return {"recon": recon, "kl_z": kl_z, "kl_c": kl_c, "kl": kl_z + kl_c, "gamma": gamma}

    def loss(self, batch: Batch | torch.Tensor, generator: torch.Generator | None = None) -> Output:
        r"""``loss = -mean(recon - beta * (kl_z + kl_c))``; ``elbo = recon - kl_z - kl_c``."""
        t = self.terms(self.as_batch(batch).x, generator)
        return Output(loss=-(t["recon"] - self.beta * t["kl"]).mean(), elbo=t["recon"] - t["kl"],
                      terms={k: t[k] for k in ("recon", "kl", "kl_z", "kl_c")})

    # -- clustering -----------------------------------------------------------------------------
    @torch.no_grad()
    def encode_means(self, x: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
        """The encoder means of ``x``, ``batch_size`` rows at a time, in eval mode: the codes."""
        check_positive_int("batch_size", batch_size)
        was = self.training
        self.eval()
        try:
            return torch.cat([self.encoder(xb)[0] for xb in self.check_x(x).split(batch_size)])
        finally:
            self.train(was)

    @torch.no_grad()
    def cluster(self, x: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
        r"""The most responsible cluster :math:`\arg\max_c p(c \mid z = \mu_\phi(x))` of each row of ``x``,
        a ``LongTensor`` of shape ``(B,)``."""
        return self.responsibilities(self.encode_means(x, batch_size)).argmax(-1)

    @torch.no_grad()
    def init_mixture(self, codes, seed: int = 0, n_init: int = 1, max_iter: int = 200):
        """Fit scikit-learn's ``GaussianMixture`` (diagonal covariances, K components) to ``codes``
        ``(N, latent_dim)`` and copy its weights, means and variances into the prior.

        Returns the fitted ``GaussianMixture`` (its ``predict`` is the "GMM on codes" baseline).
        """
        from sklearn.mixture import GaussianMixture as SklearnMixture

        check_positive_int("n_init", n_init)
        check_positive_int("max_iter", max_iter)
        codes = np.asarray(codes.detach().cpu() if isinstance(codes, torch.Tensor) else codes, dtype=np.float64)
        if codes.ndim != 2 or codes.shape[1] != self.latent_dim:
            raise ValueError(f"codes must have shape (N, {self.latent_dim}), got {codes.shape}; "
                             f"use model.encode_means(x).")
        if not np.isfinite(codes).all():
            raise ValueError("codes contain NaN or infinite values; check the pretrained encoder.")
        gmm = SklearnMixture(self.prior.n_components, covariance_type="diag", random_state=seed, n_init=n_init,
                             max_iter=max_iter, reg_covar=1e-4).fit(codes)
        self.prior.set_parameters(gmm.weights_, gmm.means_, gmm.covariances_)
        return gmm

    @torch.no_grad()
    def reset_encoder_variance(self, variance: float) -> None:
        r"""Make the encoder's log-variance head output ``log(variance)`` for every input.

        The autoencoder never trains that head, so after pretraining it outputs whatever its random
        weights give (about 1), whatever the scale of the codes. When the clusters are narrower than
        that, :math:`\mathrm{KL}(q(z|x)\,\|\,\mathcal N(\mu_c, \sigma_c^2))` starts huge and the first
        VaDE steps blur the pretrained codes; starting the encoder's variance below the clusters' avoids it.
        """
        if isinstance(variance, bool) or not isinstance(variance, (int, float)) or \
                not (math.isfinite(variance) and variance > 0):
            raise ValueError(f"variance must be a finite number > 0, got {variance!r}.")
        last = self.encoder.net[-1]
        d = self.latent_dim
        target = max(-0.999, min(0.999, math.log(variance) / LOGVAR_BOUND))
        last.weight[d:].zero_()
        last.bias[d:] = LOGVAR_BOUND * math.atanh(target)     # the pre-image of the soft clamp

    # -- generation -----------------------------------------------------------------------------
    def sample_latent(self, n: int, generator: torch.Generator | None = None, cluster=None) -> torch.Tensor:
        """``n`` codes: ``c ~ Cat(pi)`` (or the given ``cluster``, an int or ``n`` ints), ``z ~ N(mu_c, sigma_c^2)``;
        ``sample(n, cluster=c)`` decodes them (the mean image by default)."""
        return self.prior.sample(n, generator, component=cluster)
