r"""Free bits (Kingma et al., 2016): a VAE whose first :math:`\lambda` nats per latent dimension are free.

A remedy for posterior collapse (chapter 8): the KL term of each latent dimension is not pushed below
:math:`\lambda` nats, so the encoder is not rewarded for switching a dimension off. The objective is
:func:`vae_core.objectives.free_bits_kl`; this model only wires it into the VAE.
"""
from __future__ import annotations

import torch

from .._checks import check_nonnegative_float, check_positive_float, check_positive_int
from ..distributions import kl_normal_standard_per_dim
from ..estimators import reparameterize
from ..objectives import KL_MODES, ELBOTerms, free_bits_kl
from .vae import VAE

__all__ = ["FreeBitsVAE"]


class FreeBitsVAE(VAE):
    r"""A :class:`~vae_core.models.vae.VAE` trained with the free-bits objective

    .. math:: \widetilde{\mathcal L} = \frac1B\sum_i \mathbb E_q[\log p(x_i|z)]
              - \beta \sum_j \max\big(\lambda, \tfrac1B\textstyle\sum_i \mathrm{KL}_{ij}\big)

    (see :func:`free_bits_kl`). Free bits is a training device: by default it is applied only in
    training mode, and in eval mode :meth:`elbo` returns the ordinary ELBO, so test ELBOs and
    ``log_marginal`` measure the same quantity as for a plain VAE.

    Args:
        free_bits: :math:`\lambda`, the floor in nats per latent dimension (``0`` gives a plain VAE).
        other arguments: as :class:`~vae_core.models.vae.VAE`.
    """

    def __init__(self, input_dim: int, latent_dim: int, hidden_dims=(400,), likelihood: str = "bernoulli",
                 activation: str = "tanh", free_bits: float = 0.5):
        super().__init__(input_dim, latent_dim, hidden_dims, likelihood, activation)
        self.free_bits = check_nonnegative_float("free_bits", free_bits, "nats per latent dimension")
        self.config["free_bits"] = self.free_bits

    def elbo(self, x: torch.Tensor, n_samples: int = 1, beta: float = 1.0, kl: str = "analytic",
             generator: torch.Generator | None = None, free_bits: bool | None = None) -> ELBOTerms:
        """Per-example ``(objective, recon, kl)``.

        ``objective = recon - beta * free_bits_kl`` when free bits applies (``free_bits=True``, or
        ``None`` in training mode), else the ELBO ``recon - beta * kl``. ``recon`` and ``kl`` are
        always the true terms, so ``recon - kl`` is the ELBO in both cases.
        """
        check_positive_int("n_samples", n_samples)
        if beta != 0:
            check_positive_float("beta", beta)
        if kl not in KL_MODES:
            raise ValueError(f"kl must be one of {KL_MODES}, got {kl!r}.")
        apply = self.training if free_bits is None else bool(free_bits)
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, n_samples, generator=generator)   # (L, B, d)
        recon = self.log_likelihood(x, z).mean(0)
        kl_dims = kl_normal_standard_per_dim(mu, logvar, None if kl == "analytic" else z)
        kl_true = kl_dims.sum(-1)
        penalty = free_bits_kl(kl_dims, self.free_bits) if apply else kl_true
        return ELBOTerms(recon - beta * penalty, recon, kl_true)
