r"""Variational Deep Embedding, VaDE (Jiang et al., 2017): a VAE whose prior is a Gaussian mixture.

The generative story has a cluster ``c`` above the code ``z``:

.. math:: c \sim \mathrm{Cat}(\pi),\qquad z \mid c \sim \mathcal N(\mu_c, \operatorname{diag}\sigma_c^2),
          \qquad x \mid z \sim p_\theta(x \mid z),

so the prior of ``z`` is the mixture :math:`p(z) = \sum_c \pi_c\,\mathcal N(z; \mu_c, \sigma_c^2)`.
Inference is :math:`q(z, c \mid x) = q_\phi(z \mid x)\,q(c \mid x)` with :math:`q(c \mid x)` the
responsibilities :math:`\gamma_c = p(c \mid z)` at a sample :math:`z \sim q_\phi(z\mid x)`. The ELBO
is then

.. math:: \mathcal L(x) = \mathbb E_{q(z|x)}[\log p_\theta(x|z)]
          - \sum_c \gamma_c\,\mathrm{KL}\big(q_\phi(z|x)\,\|\,\mathcal N(\mu_c, \sigma_c^2)\big)
          - \mathrm{KL}(\gamma\,\|\,\pi),

with the Gaussian KLs in closed form. The mixture weights are kept on the simplex as
:math:`\pi = \mathrm{softmax}(\text{logits})`, and the responsibilities are computed in log space,
:math:`\log\gamma_c = \log\pi_c + \log\mathcal N(z; \mu_c, \sigma_c^2) - \operatorname{logsumexp}_{c'}[\cdots]`.

Training follows the paper: pretrain the encoder and decoder as a deterministic autoencoder, fit a
Gaussian mixture (scikit-learn's ``GaussianMixture``) to the codes, copy it into the prior, then
maximise the ELBO (:meth:`VaDE.pretrain`, then :func:`vae_core.fit`).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .._validate import check_positive_int, check_tensor
from ..distributions import gaussian_log_prob, kl_normal_normal
from ..estimators import reparameterize
from ..nets import LOGVAR_BOUND, soft_clamp
from ..objectives import ELBOTerms
from .base import Batch, Output
from .vae import VAE

__all__ = ["VaDE"]

STAGES = ("vade", "autoencoder")


class VaDE(VAE):
    r"""A VAE with a learned Gaussian-mixture prior that clusters its codes.

    Args:
        input_dim: number of pixels D.
        latent_dim: size d of the code (the paper: 10).
        n_clusters: number of mixture components K (the paper: 10 for MNIST).
        hidden_dims: hidden layers of the encoder (the decoder mirrors them); the paper's
            784-500-500-2000-10 network is the default.
        likelihood, activation: as :class:`~vae_core.models.vae.VAE` (the paper uses ReLU).

    Parameters of the prior: ``pi_logits`` (K,), ``cluster_means`` (K, d) and ``cluster_logvars``
    (K, d, soft-clamped to (-10, 10) like the encoder's). ``stage`` is ``"vade"`` (train the ELBO)
    or ``"autoencoder"`` (pretraining: the loss is the reconstruction at ``z = mu``).
    """

    def __init__(self, input_dim: int, latent_dim: int, n_clusters: int = 10,
                 hidden_dims: Sequence[int] | int = (500, 500, 2000), likelihood: str = "bernoulli",
                 activation: str = "relu"):
        check_positive_int("n_clusters", n_clusters)
        super().__init__(input_dim, latent_dim, hidden_dims, likelihood, activation)
        self.config = dict(input_dim=input_dim, latent_dim=latent_dim, n_clusters=n_clusters,
                           hidden_dims=self.config["hidden_dims"], likelihood=likelihood, activation=activation)
        self.n_clusters = n_clusters
        self.pi_logits = nn.Parameter(torch.zeros(n_clusters))
        # spread-out starting means so that clusters differ before any initialisation from data
        self.cluster_means = nn.Parameter(torch.randn(n_clusters, latent_dim))
        self._cluster_logvars = nn.Parameter(torch.zeros(n_clusters, latent_dim))
        self.stage = "vade"

    # -- the prior ------------------------------------------------------------------------------
    @property
    def cluster_logvars(self) -> torch.Tensor:
        r""":math:`\log\sigma_c^2`, shape ``(K, d)``, soft-clamped to ``(-10, 10)``."""
        return soft_clamp(self._cluster_logvars)

    @property
    def log_pi(self) -> torch.Tensor:
        r""":math:`\log\pi = \mathrm{log\_softmax}(\text{logits})`: the weights always lie on the simplex."""
        return torch.log_softmax(self.pi_logits, dim=-1)

    @property
    def pi(self) -> torch.Tensor:
        return self.log_pi.exp()

    def _check_z(self, z) -> torch.Tensor:
        check_tensor("z", z)
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"z must have last dimension latent_dim={self.latent_dim}, got shape {tuple(z.shape)}.")
        return z

    def log_joint_prior(self, z: torch.Tensor) -> torch.Tensor:
        r""":math:`\log\pi_c + \log\mathcal N(z; \mu_c, \sigma_c^2)` for every cluster: shape ``(..., K)``."""
        z = self._check_z(z).unsqueeze(-2)                                 # (..., 1, d)
        return self.log_pi + gaussian_log_prob(z, self.cluster_means, self.cluster_logvars)

    def prior_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        r"""The mixture prior :math:`\log p(z) = \operatorname{logsumexp}_c[\log\pi_c + \log\mathcal N(z;\mu_c,\sigma_c^2)]`."""
        return torch.logsumexp(self.log_joint_prior(z), dim=-1)

    def log_responsibilities(self, z: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(c \mid z)`, shape ``(..., K)``, by log-sum-exp (never by dividing densities)."""
        return torch.log_softmax(self.log_joint_prior(z), dim=-1)

    def responsibilities(self, z: torch.Tensor) -> torch.Tensor:
        r""":math:`\gamma_c = p(c \mid z)`, shape ``(..., K)``; each row sums to one."""
        return self.log_responsibilities(z).exp()

    # -- the objective --------------------------------------------------------------------------
    def elbo(self, x: torch.Tensor, n_samples: int = 1, beta: float = 1.0, kl: str = "analytic",
             generator: torch.Generator | None = None) -> ELBOTerms:
        r"""Per-example ``(elbo, recon, kl)`` of VaDE.

        ``kl`` is :math:`\sum_c\gamma_c\,\mathrm{KL}(q(z|x)\,\|\,\mathcal N(\mu_c,\sigma_c^2)) + \mathrm{KL}(\gamma\,\|\,\pi)`,
        with :math:`\gamma` the responsibilities averaged over the ``n_samples`` draws of ``z``
        (the Gaussian KLs are in closed form; ``kl`` must be ``"analytic"``). The parts are in
        :meth:`elbo_terms`.
        """
        t = self.elbo_terms(x, n_samples=n_samples, generator=generator, kl=kl)
        return ELBOTerms(t["recon"] - beta * t["kl"], t["recon"], t["kl"])

    def elbo_terms(self, x: torch.Tensor, n_samples: int = 1, generator: torch.Generator | None = None,
                   kl: str = "analytic") -> dict:
        """Per-example terms: ``recon``, ``kl_z`` (the Gaussian part), ``kl_c`` (KL(γ‖π)), ``kl`` (their
        sum) and ``gamma`` ``(B, K)``."""
        check_positive_int("n_samples", n_samples)
        if kl != "analytic":
            raise ValueError(f"VaDE computes its KL terms in closed form: kl must be 'analytic', got {kl!r}.")
        return self._terms(x, *self.encode(x), n_samples, generator)

    def _terms(self, x, mu, logvar, n_samples, generator) -> dict:
        z = reparameterize(mu, logvar, n_samples, generator=generator)           # (L, B, d)
        recon = self.log_likelihood(x, z).mean(0)
        log_gamma = torch.logsumexp(self.log_responsibilities(z), dim=0) - math.log(n_samples)   # (B, K)
        gamma = log_gamma.exp()
        kl_each = kl_normal_normal(mu.unsqueeze(-2), logvar.unsqueeze(-2),
                                   self.cluster_means, self.cluster_logvars)       # (B, K)
        kl_z = (gamma * kl_each).sum(-1)
        kl_c = (gamma * (log_gamma - self.log_pi)).sum(-1)
        return {"recon": recon, "kl_z": kl_z, "kl_c": kl_c, "kl": kl_z + kl_c, "gamma": gamma}

    def loss(self, batch: Batch | torch.Tensor, generator: torch.Generator | None = None) -> Output:
        r"""``stage="vade"``: ``loss = -mean(recon - beta * kl)``. ``stage="autoencoder"``: the loss is
        the reconstruction error at ``z = mu`` (pretraining); ``elbo`` is the VaDE bound in both."""
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}.")
        x = batch.x if isinstance(batch, Batch) else batch
        if self.stage == "autoencoder":   # one encoder pass; the bound is reported, not trained
            mu, logvar = self.encode(x)
            with torch.no_grad():
                t = self._terms(x, mu, logvar, self.n_samples, generator)
            terms = {k: t[k] for k in ("recon", "kl", "kl_z", "kl_c")}
            terms["ae_recon"] = self.log_likelihood(x, mu)
            return Output(loss=-terms["ae_recon"].mean(), elbo=t["recon"] - t["kl"], terms=terms)
        t = self.elbo_terms(x, n_samples=self.n_samples, generator=generator, kl=self.kl_estimator)
        elbo = t["recon"] - t["kl"]
        terms = {k: t[k] for k in ("recon", "kl", "kl_z", "kl_c")}
        return Output(loss=-(t["recon"] - self.beta * t["kl"]).mean(), elbo=elbo, terms=terms)

    # -- clustering -----------------------------------------------------------------------------
    @torch.no_grad()
    def encode_means(self, x: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
        """The encoder means of ``x``, ``batch_size`` rows at a time, in eval mode: the codes."""
        check_positive_int("batch_size", batch_size)
        was = self.training
        self.eval()
        try:
            return torch.cat([self.encode(xb)[0] for xb in self.check_x(x).split(batch_size)])
        finally:
            self.train(was)

    @torch.no_grad()
    def cluster(self, x: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
        r"""The most responsible cluster :math:`\arg\max_c p(c \mid z = \mu_\phi(x))` of each row of ``x``,
        a ``LongTensor`` of shape ``(B,)``."""
        return self.responsibilities(self.encode_means(x, batch_size)).argmax(-1)

    @torch.no_grad()
    def init_mixture(self, codes, seed: int = 0, n_init: int = 1, max_iter: int = 200):
        """Fit scikit-learn's ``GaussianMixture`` (diagonal covariances, ``n_clusters`` components) to
        ``codes`` ``(N, latent_dim)`` and copy its weights, means and variances into the prior.

        Returns the fitted ``GaussianMixture`` (its ``predict`` is the "GMM on codes" baseline).
        """
        from sklearn.mixture import GaussianMixture

        if isinstance(codes, torch.Tensor):
            codes = codes.detach().cpu().double().numpy()
        codes = np.asarray(codes, dtype=np.float64)
        if codes.ndim != 2 or codes.shape[1] != self.latent_dim:
            raise ValueError(f"codes must have shape (N, {self.latent_dim}), got {codes.shape}; "
                             f"use model.encode_means(x).")
        if len(codes) < self.n_clusters:
            raise ValueError(f"need at least n_clusters={self.n_clusters} codes to fit the mixture, got {len(codes)}.")
        if not np.isfinite(codes).all():
            raise ValueError("codes contain NaN or infinite values; check the pretrained encoder.")
        gmm = GaussianMixture(self.n_clusters, covariance_type="diag", random_state=seed, n_init=n_init,
                              max_iter=max_iter, reg_covar=1e-4).fit(codes)
        p = self.pi_logits
        self.pi_logits.copy_(torch.as_tensor(np.log(np.maximum(gmm.weights_, 1e-12)), dtype=p.dtype))
        self.cluster_means.copy_(torch.as_tensor(gmm.means_, dtype=p.dtype))
        logvar = torch.as_tensor(np.log(gmm.covariances_), dtype=p.dtype)
        # store the pre-image of the soft clamp, so that cluster_logvars equals the fitted log-variances
        inside = (logvar / LOGVAR_BOUND).clamp(-0.999, 0.999)
        self._cluster_logvars.copy_(LOGVAR_BOUND * torch.atanh(inside))
        return gmm

    def pretrain(self, train, epochs: int = 10, batch_size: int = 100, lr: float = 1e-3, seed: int = 0,
                 progress: bool = False, codes_from=None, encoder_variance: float | None = 0.01,
                 **fit_kwargs):
        """The paper's initialisation: train encoder and decoder as an autoencoder (``stage =
        "autoencoder"``, with :func:`vae_core.fit`), then :meth:`init_mixture` on the codes of
        ``codes_from`` (default: the training images). Last, the encoder's variance head, which the
        autoencoder does not train, is reset to ``encoder_variance`` times the mixture's mean variance
        (:meth:`reset_encoder_variance`; ``None`` leaves it as it is).

        Returns ``(history, gmm)``.
        """
        from ..data import as_dataset
        from ..train import fit

        data = as_dataset(train, "train")
        self.stage = "autoencoder"
        try:
            history = fit(self, data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                          progress=progress, **fit_kwargs)
        finally:
            self.stage = "vade"
        x = data.x if codes_from is None else codes_from
        gmm = self.init_mixture(self.encode_means(x.to(next(self.parameters()).device)).cpu(), seed=seed)
        if encoder_variance is not None:
            self.reset_encoder_variance(encoder_variance * self.cluster_logvars.detach().exp().mean().item())
        return history, gmm

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
    @torch.no_grad()
    def sample_latent(self, n: int, cluster=None, generator: torch.Generator | None = None):
        """``(z, c)``: ``n`` codes from the mixture prior and their clusters (``cluster`` fixes them)."""
        check_positive_int("n", n)
        p = self.pi_logits
        if cluster is None:
            c = torch.multinomial(self.pi, n, replacement=True, generator=generator)
        else:
            c = torch.as_tensor(cluster, device=p.device)
            if c.is_floating_point() or c.dim() > 1:
                raise TypeError(f"cluster must be an int or a 1-D tensor of ints, got {cluster!r}.")
            c = c.long().expand(n) if c.dim() == 0 else c.long()
            if c.shape != (n,) or bool((c < 0).any()) or bool((c >= self.n_clusters).any()):
                raise ValueError(f"cluster must be an int or n={n} ints in [0, {self.n_clusters}), got {cluster!r}.")
        eps = torch.randn(n, self.latent_dim, generator=generator, device=p.device, dtype=p.dtype)
        z = self.cluster_means[c] + torch.exp(0.5 * self.cluster_logvars[c]) * eps
        return z, c

    @torch.no_grad()
    def sample(self, n: int, y=None, generator: torch.Generator | None = None, mean: bool = True,
               cluster=None) -> torch.Tensor:
        """``n`` images: ``c ~ Cat(pi)`` (or the given ``cluster``), ``z ~ N(mu_c, sigma_c^2)``, decoded.

        ``y`` is accepted for the common interface and must be ``None``; the mean image by default.
        """
        check_positive_int("n", n)
        if isinstance(y, torch.Generator):
            raise TypeError("sample(n, y=None, generator=None): pass the generator by name, generator=...")
        if y is not None:
            raise ValueError("VaDE is not conditional: sample() takes no labels y; pick a cluster with cluster=...")
        z, _ = self.sample_latent(n, cluster, generator)
        m = self.decode_mean(z)
        if mean:
            return m
        if self.likelihood == "bernoulli":
            return torch.bernoulli(m, generator=generator)
        _, logvar = self.decode(z)
        return m + torch.exp(0.5 * logvar) * torch.randn(m.shape, generator=generator, device=m.device)
