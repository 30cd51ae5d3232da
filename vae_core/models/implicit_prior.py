r"""The VAE with an implicit optimal prior (Takahashi et al., 2019).

ELBO surgery (Hoffman & Johnson, 2016) shows that the prior maximising the average ELBO is the
aggregated posterior :math:`q(z) = \int p_{\rm data}(x)\, q(z|x)\,dx`. It has no closed form, but its
KL term does not need one:

.. math:: \mathrm{KL}(q(z|x)\,\|\,q(z)) = \mathrm{KL}(q(z|x)\,\|\,\mathcal N(0, I))
          - \mathbb E_{q(z|x)}\!\left[\log\frac{q(z)}{\mathcal N(z; 0, I)}\right],

(expand :math:`\log q(z|x) - \log q(z) = [\log q(z|x) - \log\mathcal N(z)] - [\log q(z) - \log\mathcal N(z)]`:
the second bracket enters with a *minus*). The first term is the usual closed form; the density
ratio in the second is estimated by a classifier :math:`T(z)` trained to tell aggregated-posterior
samples (label 1) from :math:`\mathcal N(0, I)` samples (label 0) in equal numbers, whose optimal
logit is :math:`\log q(z)/\mathcal N(z; 0, I)`: the prior :class:`vae_core.priors.ImplicitPrior`.
"""
from __future__ import annotations

import torch

from .._validate import check_positive_float
from ..distributions import gaussian_log_prob
from ..estimators import reparameterize
from ..priors import ImplicitPrior
from .base import Batch, Output, parameters_of
from .vae import VAE

__all__ = ["ImplicitPriorVAE"]


class ImplicitPriorVAE(VAE):
    r"""A VAE trained against the implicit optimal prior :math:`q(z)` through a density-ratio discriminator.

    Training objective per example (to maximise), with :math:`T` the discriminator's logit:

    .. math:: \mathbb E_{q(z|x)}[\log p(x|z)] - \beta\Big(\mathrm{KL}(q(z|x)\,\|\,\mathcal N(0,I))
              - \mathbb E_{q(z|x)}[T(z)]\Big).

    The encoder receives the gradient of :math:`T` through the reparameterized :math:`z`; the extra
    term from :math:`q(z)` itself depending on the encoder vanishes, because
    :math:`\mathbb E_{q(z)}[\nabla \log q(z)] = \nabla\!\int q = 0`. The discriminator is trained on
    **detached** latents (``discriminator_loss``, its own parameter group), so its loss never reaches
    the encoder or decoder.

    **Two priors.** ``implicit_prior`` is :math:`\mathcal N(z; 0, I)\,e^{T(z)}`
    (:class:`~vae_core.priors.ImplicitPrior`, the one the loss trains against). It is a probability
    density only when :math:`T` is exactly :math:`\log q(z)/\mathcal N(z)`; a trained classifier is
    not, and :math:`Z = \int \mathcal N(z)\,e^{T(z)}dz` (``implicit_prior.estimate_log_normaliser()``) can
    be above or below 1. For any :math:`T` with finite :math:`Z`, :math:`\mathcal N(z)e^{T(z)}/Z` is a proper
    prior, so a number that adds :math:`T` *and subtracts* :math:`\log Z` is a true bound of that
    normalised model, up to the Monte-Carlo error of :math:`\log\hat Z`; one that adds :math:`T` alone is
    off by :math:`\log Z`. :func:`vae_core.evaluate.elbo_with_prior` and
    :func:`~vae_core.evaluate.log_marginal_with_prior` evaluate the normalised prior.
    ``prior`` stays :math:`\mathcal N(0, I)`: the reported bound (``Output.elbo = recon - kl``),
    :meth:`log_weights` (so :func:`vae_core.evaluate.log_marginal`) and :meth:`sample` are those of
    the same encoder and decoder with the standard-normal prior, a true, normalised bound of a
    well-defined model, the honest number to compare with a plain VAE. :meth:`implicit_log_weights`
    gives the importance weights under the implicit prior, and
    ``model.decoder.mean(model.implicit_prior.sample(n))`` images from it.

    Args:
        input_dim, latent_dim, hidden_dims, likelihood, activation: as :class:`~vae_core.models.vae.VAE`.
        discriminator_hidden: hidden sizes of the discriminator MLP.
        discriminator_lr: its Adam learning rate (``None``: the one ``fit`` uses). Takahashi et al.'s
            setting trains the discriminator faster than the VAE.

    Terms (per example): ``recon``, ``kl`` (to :math:`\mathcal N(0, I)`, analytic or Monte-Carlo as
    ``kl_estimator``), ``log_ratio`` (:math:`\mathbb E_q T(z)`) and ``kl_implicit``
    (``kl - log_ratio``, the estimate of :math:`\mathrm{KL}(q(z|x)\|q(z))`; an estimate, so it can
    come out negative for single examples). Settings: the VAE's; ``beta`` weights ``kl_implicit``.
    """

    settings = VAE.settings     # beta, n_samples, kl_estimator: the loss uses all three

    def __init__(self, input_dim: int, latent_dim: int, hidden_dims=(400,), likelihood: str = "bernoulli",
                 activation: str = "tanh", discriminator_hidden=(256, 256), discriminator_lr: float | None = None):
        super().__init__(input_dim, latent_dim, hidden_dims, likelihood, activation)
        self.discriminator_lr = None if discriminator_lr is None else \
            check_positive_float("discriminator_lr", discriminator_lr)
        self.implicit_prior = ImplicitPrior(latent_dim, discriminator_hidden)      # N(0, I) e^T(z) ~ q(z)

    def parameter_groups(self) -> dict:
        """``model``: encoder and decoder; ``discriminator``: T (with its own learning rate if set)."""
        disc = {"params": list(self.implicit_prior.parameters())}
        if self.discriminator_lr is not None:
            disc["lr"] = self.discriminator_lr
        return {"model": parameters_of(self.encoder, self.decoder), "discriminator": disc}

    def loss(self, batch: Batch | torch.Tensor, generator: torch.Generator | None = None) -> Output:
        r"""``loss = -mean(recon - beta * kl_implicit)``; ``elbo = recon - kl``, the bound with N(0, I)."""
        t = self.terms(self.as_batch(batch).x, generator)
        log_ratio = self.implicit_prior.log_ratio(t["z"]).mean(0)                # E_q T(z), (B,)
        kl_implicit = t["kl"] - log_ratio                                        # KL(q(z|x) || q(z)), estimated
        return Output(loss=-(t["recon"] - self.beta * kl_implicit).mean(), elbo=t["recon"] - t["kl"],
                      terms={"recon": t["recon"], "kl": t["kl"], "log_ratio": log_ratio, "kl_implicit": kl_implicit},
                      discriminator_loss=self.implicit_prior.discriminator_loss(t["z"], generator))

    def implicit_log_weights(self, batch: Batch | torch.Tensor, n_samples: int,
                             generator: torch.Generator | None = None) -> torch.Tensor:
        r"""``(K, B)`` log-weights under the implicit prior, :math:`\log p(x|z_k) + \log\mathcal N(z_k; 0, I)
        + T(z_k) - \log q(z_k|x)`: :meth:`log_weights` plus :math:`T(z_k)`, an estimate that is only as
        normalised as :math:`T` is; subtract ``implicit_prior.estimate_log_normaliser()[0]`` for the
        normalised prior."""
        x = self.as_batch(batch).x
        mu, logvar = self.encoder(x)
        z = reparameterize(mu, logvar, n_samples, generator)
        return self.decoder.log_prob(x, z) + self.implicit_prior.log_prob(z) - gaussian_log_prob(z, mu, logvar)
