r"""Free bits (Kingma et al., 2016): a VAE whose first :math:`\lambda` nats per latent dimension are free.

A remedy for posterior collapse (chapter 8): the KL term of each latent dimension is not pushed below
:math:`\lambda` nats, so the encoder is not rewarded for switching a dimension off. The objective is
:func:`vae_core.objectives.free_bits_kl`; this model only wires it into the VAE.
"""
from __future__ import annotations

import torch

from .._validate import check_nonnegative_float
from ..distributions import kl_normal_standard_per_dim
from ..objectives import ELBOTerms, free_bits_kl
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
        self._force = None

    def penalty(self, t: dict) -> torch.Tensor:
        r""":math:`\sum_j\max(\lambda, \text{batch mean of }\mathrm{KL}_j)` per example in training mode
        (:func:`~vae_core.objectives.free_bits_kl`), the plain KL in eval mode."""
        if not (self.training if self._force is None else self._force):
            return t["kl"]
        z = None if t["kl_estimator"] == "analytic" else t["z"]
        return free_bits_kl(kl_normal_standard_per_dim(t["mu"], t["logvar"], z), self.free_bits)

    def elbo(self, x: torch.Tensor, n_samples: int = 1, beta: float = 1.0, kl: str = "analytic",
             generator: torch.Generator | None = None, free_bits: bool | None = None) -> ELBOTerms:
        """Per-example ``(objective, recon, kl)``: ``objective = recon - beta * penalty``, with free bits
        applied when ``free_bits=True`` (or ``None`` in training mode). ``recon - kl`` is always the ELBO."""
        self._force = free_bits
        try:
            return super().elbo(x, n_samples, beta, kl, generator)
        finally:
            self._force = None
