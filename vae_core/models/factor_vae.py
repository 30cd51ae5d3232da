r"""FactorVAE (Kim & Mnih, 2018): a VAE that penalises the total correlation of its aggregated posterior.

The total correlation of :math:`q(z) = \mathbb E_{p_{\rm data}(x)}\, q(z|x)` is

.. math:: \mathrm{TC}(z) = \mathrm{KL}\Big(q(z)\,\Big\|\,\prod_j q(z_j)\Big)
          = \mathbb E_{q(z)}\!\left[\log\frac{q(z)}{\prod_j q(z_j)}\right] \;\ge 0,

zero exactly when the latent dimensions are independent. Neither density is available, but samples
of both are: a batch of :math:`z \sim q(z|x)` is a sample of :math:`q(z)`, and shuffling each
dimension across the batch (:func:`permute_dims`) gives samples of :math:`\prod_j q(z_j)`. A
discriminator :math:`D` trained to tell them apart (label 1 for :math:`q(z)`) has optimal logit
:math:`\log q(z)/\prod_j q(z_j)`, so :math:`\mathrm{TC} \approx \mathbb E_{q(z)}[D(z)]`. The VAE
maximises :math:`\mathrm{ELBO} - \gamma\,\mathrm{TC}`.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .._validate import check_nonnegative_float, check_positive_float, check_tensor
from ..nets import Discriminator
from .base import Batch, Output, parameters_of
from .vae import VAE

__all__ = ["FactorVAE", "permute_dims"]


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Shuffle every latent dimension independently **across the batch** (Kim & Mnih, 2018).

    Given a batch ``z`` of shape ``(B, d)`` drawn from the aggregated posterior :math:`q(z)`, column
    ``j`` of the result is column ``j`` of ``z`` in an order of its own: a fresh random permutation
    :math:`\pi_j` of the ``B`` rows for each dimension,

    .. math:: \tilde z_{i j} = z_{\pi_j(i),\, j}.

    Each column keeps its values, so each marginal :math:`q(z_j)` is unchanged, but the rows are
    re-assembled from different examples, which breaks every dependence between dimensions: the
    rows of :math:`\tilde z` are (approximately, for a large batch) samples of
    :math:`\prod_j q(z_j)`. Shuffling *within* a row (across dimensions) would be wrong: it mixes
    different marginals and keeps nothing of either distribution.

    Args:
        z: a float tensor of shape ``(B, d)``, the batch in the first dimension. A batch of one row
            is returned as a copy (its only permutation is the identity).
        generator: a ``torch.Generator`` (on ``z``'s device) for reproducible permutations.

    Returns:
        a new tensor of the shape of ``z``. Gradients flow back to the entries of ``z`` that were moved.
    """
    check_tensor("z", z, min_dim=2)
    if z.dim() != 2:
        raise ValueError(f"z must have shape (batch, latent_dim), got {tuple(z.shape)}; permute_dims "
                         f"shuffles each latent dimension across the batch (dimension 0). Flatten any "
                         f"sample dimension into the batch first, e.g. z.reshape(-1, z.shape[-1]).")
    # an independent uniform key per entry, sorted down each column: one random permutation per column
    keys = torch.rand(z.shape, generator=generator, device=z.device)
    return torch.gather(z, 0, torch.argsort(keys, dim=0))


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
    model, which is a plain VAE; ``log_weights`` and ``sample`` are the VAE's. Settings: the VAE's.

    Args:
        input_dim, latent_dim, hidden_dims, likelihood, activation: as :class:`~vae_core.models.vae.VAE`.
        gamma: :math:`\gamma \ge 0`, the weight of the total-correlation penalty (``0``: a VAE whose
            discriminator only watches). Kim & Mnih sweep it over a range on dSprites (values of order 10-100 as
            reported second-hand; not checked against the paper here).
        discriminator_hidden: hidden sizes of the discriminator MLP.
        discriminator_lr: its Adam learning rate (``None``: the one ``fit`` uses).
        discriminator_betas: its Adam betas; ``(0.5, 0.9)`` as in common FactorVAE code.
    """

    settings = VAE.settings     # beta, n_samples, kl_estimator: the loss uses all three

    def __init__(self, input_dim: int, latent_dim: int, hidden_dims=(400,), likelihood: str = "bernoulli",
                 activation: str = "tanh", gamma: float = 10.0, discriminator_hidden=(256, 256),
                 discriminator_lr: float | None = None, discriminator_betas: Sequence[float] = (0.5, 0.9)):
        super().__init__(input_dim, latent_dim, hidden_dims, likelihood, activation)
        self.gamma = check_nonnegative_float("gamma", gamma, "the weight of the total-correlation penalty")
        self.discriminator_lr = None if discriminator_lr is None else \
            check_positive_float("discriminator_lr", discriminator_lr)
        self.discriminator_betas = _check_betas(discriminator_betas)
        self.discriminator = Discriminator(latent_dim, discriminator_hidden)   # D(z) ~ log q(z) / prod_j q(z_j)

    def parameter_groups(self) -> dict:
        """``model``: encoder and decoder; ``discriminator``: D with its own Adam settings."""
        disc = {"params": list(self.discriminator.parameters()), "betas": self.discriminator_betas}
        if self.discriminator_lr is not None:
            disc["lr"] = self.discriminator_lr
        return {"model": parameters_of(self.encoder, self.decoder), "discriminator": disc}

    def tc_discriminator_loss(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Cross-entropy of the discriminator: the latents ``z`` (label 1, samples of :math:`q(z)`)
        against ``permute_dims(z)`` (label 0, samples of :math:`\prod_j q(z_j)`). ``z`` of shape
        ``(..., B, d)`` is detached and flattened into one batch first."""
        z = z.detach().reshape(-1, self.latent_dim)
        return self.discriminator.ratio_loss(z, permute_dims(z, generator=generator))

    def loss(self, batch: Batch | torch.Tensor, generator: torch.Generator | None = None) -> Output:
        r"""``loss = -mean(recon - beta * kl - gamma * tc)``; ``elbo = recon - kl``, whatever ``gamma``."""
        t = self.terms(self.as_batch(batch).x, generator)
        tc = self.discriminator(t["z"]).mean(0)                                 # E_q D(z), (B,); z NOT detached
        return Output(loss=-(t["recon"] - self.beta * t["kl"] - self.gamma * tc).mean(), elbo=t["recon"] - t["kl"],
                      terms={"recon": t["recon"], "kl": t["kl"], "tc": tc},
                      discriminator_loss=self.tc_discriminator_loss(t["z"], generator))


def _check_betas(betas) -> tuple[float, float]:
    try:
        b = tuple(float(v) for v in betas)
    except (TypeError, ValueError):
        raise TypeError(f"discriminator_betas must be two numbers in [0, 1), e.g. (0.5, 0.9); got {betas!r}.") from None
    if len(b) != 2 or not all(0 <= v < 1 for v in b):
        raise ValueError(f"discriminator_betas must be two numbers in [0, 1), e.g. (0.5, 0.9); got {betas!r}.")
    return b
