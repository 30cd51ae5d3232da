r"""FactorVAE (Kim & Mnih, 2018): a VAE that penalises the total correlation of its aggregated posterior.

The total correlation of :math:`q(z) = \mathbb E_{p_{\rm data}(x)}\, q(z|x)` is

.. math:: \mathrm{TC}(z) = \mathrm{KL}\Big(q(z)\,\Big\|\,\prod_j q(z_j)\Big)
          = \mathbb E_{q(z)}\!\left[\log\frac{q(z)}{\prod_j q(z_j)}\right] \;\ge 0,

zero exactly when the latent dimensions are independent. Neither density is available, but samples
of both are: a batch of :math:`z \sim q(z|x)` is a sample of :math:`q(z)`, and shuffling each
dimension across the batch (:func:`~vae_core.estimators.permute_dims`) gives samples of
:math:`\prod_j q(z_j)`. A discriminator :math:`D` trained to tell them apart (label 1 for
:math:`q(z)`) has optimal logit :math:`\log q(z)/\prod_j q(z_j)`, so
:math:`\mathrm{TC} \approx \mathbb E_{q(z)}[D(z)]`. The VAE maximises :math:`\mathrm{ELBO} - \gamma\,\mathrm{TC}`.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .._validate import check_hidden, check_nonnegative_float, check_positive_float, check_positive_int
from ..estimators import permute_dims, reparameterize
from ..nets import Discriminator
from ..objectives import KL_MODES, gaussian_elbo
from .base import Batch, Output, parameters_of
from .vae import VAE

__all__ = ["FactorVAE"]


class FactorVAE(VAE):
    r"""A VAE whose loss adds :math:`\gamma` times a discriminator's estimate of the total correlation.

    Per example (to maximise), with :math:`D` the discriminator's logit at the encoder's sample
    :math:`z \sim q(z|x)` (not detached: the encoder is pushed towards independent dimensions):

    .. math:: \mathbb E_q[\log p(x|z)] - \beta\,\mathrm{KL}(q(z|x)\,\|\,\mathcal N(0, I)) - \gamma\, D(z).

    The discriminator trains on **detached** latents: ``discriminator_loss`` is the cross-entropy of
    :math:`D` on the batch (label 1) against the batch with every dimension permuted across it
    (label 0), so it never sends a gradient to the encoder or decoder; and ``fit`` discards the
    discriminator's gradient from the VAE's loss. Both classes come from the same batch (Kim &
    Mnih draw a second batch for the permuted samples; with one batch per step this is the same
    estimator up to the correlation between the two halves).

    The TC estimate per example (``terms["tc"]``) can come out negative: it is a classifier's logit,
    not a KL divergence, and a discriminator that cannot (yet) tell the two samples apart gives
    logits scattered around 0.

    ``Output.elbo`` is the ELBO (``recon - kl``), the bound on :math:`\log p(x)` of the generative
    model, which is a plain VAE; ``log_weights`` and ``sample`` are the VAE's.

    Args:
        input_dim, latent_dim, hidden_dims, likelihood, activation: as :class:`~vae_core.models.vae.VAE`.
        gamma: :math:`\gamma \ge 0`, the weight of the total-correlation penalty (``0``: a VAE whose
            discriminator only watches). Kim & Mnih report results for values between about 6 and 40.
        discriminator_hidden: hidden sizes of the discriminator MLP.
        discriminator_lr: its Adam learning rate (``None``: the one ``fit`` uses).
        discriminator_betas: its Adam betas; ``(0.5, 0.9)`` as in common FactorVAE code.
    """

    def __init__(self, input_dim: int, latent_dim: int, hidden_dims=(400,), likelihood: str = "bernoulli",
                 activation: str = "tanh", gamma: float = 10.0, discriminator_hidden=(256, 256),
                 discriminator_lr: float | None = None, discriminator_betas: Sequence[float] = (0.5, 0.9)):
        super().__init__(input_dim, latent_dim, hidden_dims, likelihood, activation)
        self.gamma = check_nonnegative_float("gamma", gamma, "the weight of the total-correlation penalty")
        disc_hidden = list(check_hidden(discriminator_hidden))
        if discriminator_lr is not None:
            discriminator_lr = check_positive_float("discriminator_lr", discriminator_lr)
        betas = _check_betas(discriminator_betas)
        self.discriminator_lr, self.discriminator_betas = discriminator_lr, betas
        self.discriminator = Discriminator(latent_dim, disc_hidden)
        self.config.update(gamma=self.gamma, discriminator_hidden=disc_hidden, discriminator_lr=discriminator_lr,
                           discriminator_betas=list(betas))

    def parameter_groups(self) -> dict:
        """``model``: encoder and decoder; ``discriminator``: D with its own Adam settings."""
        disc = {"params": list(self.discriminator.parameters()), "betas": self.discriminator_betas}
        if self.discriminator_lr is not None:
            disc["lr"] = self.discriminator_lr
        return {"model": parameters_of(self.encoder, self.decoder), "discriminator": disc}

    def tc_logits(self, z: torch.Tensor) -> torch.Tensor:
        r"""The discriminator's logit :math:`D(z) \approx \log q(z) - \log\prod_j q(z_j)`, shape ``z.shape[:-1]``."""
        return self.discriminator(z)

    def tc_discriminator_loss(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Cross-entropy of the discriminator: the latents ``z`` (label 1, samples of :math:`q(z)`)
        against ``permute_dims(z)`` (label 0, samples of :math:`\prod_j q(z_j)`). ``z`` of shape
        ``(..., B, d)`` is detached and flattened into one batch first."""
        z = z.detach().reshape(-1, self.latent_dim)
        return self.discriminator.ratio_loss(z, permute_dims(z, generator=generator))

    def loss(self, batch: Batch | torch.Tensor, generator: torch.Generator | None = None) -> Output:
        x = batch.x if isinstance(batch, Batch) else batch
        check_positive_int("n_samples", self.n_samples)
        if self.kl_estimator not in KL_MODES:
            raise ValueError(f"kl_estimator must be one of {KL_MODES}, got {self.kl_estimator!r}.")
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, self.n_samples, generator=generator)       # (L, B, d)
        t = gaussian_elbo(self.log_likelihood(x, z), z, mu, logvar, kl=self.kl_estimator)
        tc = self.tc_logits(z).mean(0)                                              # (B,), z NOT detached
        objective = t.recon - self.beta * t.kl - self.gamma * tc
        return Output(loss=-objective.mean(), elbo=t.recon - t.kl,
                      terms={"recon": t.recon, "kl": t.kl, "tc": tc},
                      discriminator_loss=self.tc_discriminator_loss(z, generator))


def _check_betas(betas) -> tuple[float, float]:
    try:
        b = tuple(float(v) for v in betas)
    except (TypeError, ValueError):
        raise TypeError(f"discriminator_betas must be two numbers in [0, 1), e.g. (0.5, 0.9); got {betas!r}.") from None
    if len(b) != 2 or not all(0 <= v < 1 for v in b):
        raise ValueError(f"discriminator_betas must be two numbers in [0, 1), e.g. (0.5, 0.9); got {betas!r}.")
    return b
