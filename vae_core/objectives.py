r"""Objectives. Each returns per-example values (higher is better); training minimises ``-mean``.

The ELBO of a latent-variable model with prior :math:`p(z)`, decoder :math:`p_\theta(x|z)` and
encoder :math:`q_\phi(z|x)`:

.. math:: \mathcal L(x) = \underbrace{\mathbb E_{q_\phi(z|x)}[\log p_\theta(x|z)]}_{\text{recon}}
          - \beta\,\underbrace{\mathrm{KL}(q_\phi(z|x)\,\|\,p(z))}_{\text{kl}}

The expectation is estimated with ``L`` reparameterized samples. The KL is either the closed form
(analytic, lower variance) or the Monte-Carlo average of :math:`\log q(z|x) - \log p(z)` over the
same samples (the paper's "generic" SGVB estimator, eq. 6).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ._checks import check_nonnegative_float, check_tensor
from .distributions import gaussian_log_prob, kl_normal_standard, standard_normal_log_prob

__all__ = ["ELBOTerms", "gaussian_elbo", "log_mean_exp", "free_bits_kl", "KL_MODES"]

KL_MODES = ("analytic", "mc")


class ELBOTerms(NamedTuple):
    """Per-example terms of the bound: ``elbo = recon - beta * kl``."""
    elbo: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor


def log_mean_exp(log_w: torch.Tensor, dim: int = 0) -> torch.Tensor:
    r"""Stable :math:`\log \frac1k\sum_i e^{w_i}` = ``logsumexp(log_w) - log k`` along ``dim``."""
    return torch.logsumexp(log_w, dim=dim) - math.log(log_w.shape[dim])


def gaussian_elbo(log_px_z: torch.Tensor, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                  beta: float = 1.0, kl: str = "analytic") -> ELBOTerms:
    r"""ELBO terms for a diagonal-Gaussian encoder and a standard-normal prior.

    Args:
        log_px_z: :math:`\log p_\theta(x|z^{(l)})`, shape ``(L, B)``.
        z: the samples :math:`z^{(l)}`, shape ``(L, B, d)``.
        mu, logvar: encoder outputs, shape ``(B, d)``.
        beta: weight of the KL term (1 gives the ELBO; see the β-VAE chapter).
        kl: ``"analytic"`` (closed form) or ``"mc"`` (Monte-Carlo over the same samples).
    """
    if kl not in KL_MODES:
        raise ValueError(f"kl must be one of {KL_MODES}, got {kl!r}.")
    recon = log_px_z.mean(0)
    if kl == "analytic":
        kl_term = kl_normal_standard(mu, logvar)
    else:
        kl_term = (gaussian_log_prob(z, mu, logvar) - standard_normal_log_prob(z)).mean(0)
    return ELBOTerms(recon - beta * kl_term, recon, kl_term)


def free_bits_kl(kl: torch.Tensor, free_bits: float) -> torch.Tensor:
    r"""The free-bits KL term (Kingma et al., 2016), one group per latent dimension.

    Given per-example, per-dimension KLs ``kl`` of shape ``(B, d)`` and :math:`\lambda` =
    ``free_bits`` (nats per dimension), let :math:`m_j = \frac1B\sum_i \mathrm{KL}_{ij}` be the
    batch average of dimension ``j``. Free bits replaces the KL term :math:`\sum_j m_j` by

    .. math:: \sum_j \max(\lambda, m_j),

    so a dimension whose average KL is below :math:`\lambda` is not pushed further towards the
    prior: its first :math:`\lambda` nats are free. Returned per example (shape ``(B,)``) as

    .. math:: \widetilde{\mathrm{KL}}_i = \sum_j \begin{cases}\mathrm{KL}_{ij} & m_j > \lambda\\
              \lambda & m_j \le \lambda\end{cases}

    whose batch mean is exactly :math:`\sum_j\max(\lambda, m_j)` and whose gradient flows only
    through the dimensions above the floor. With ``free_bits=0`` (and KL >= 0) it is ``kl.sum(-1)``.
    """
    check_tensor("kl", kl, min_dim=2)
    if kl.dim() != 2:
        raise ValueError(f"kl must have shape (B, d) (examples, latent dimensions), got {tuple(kl.shape)}.")
    lam = check_nonnegative_float("free_bits", free_bits, "nats per latent dimension")
    above = kl.mean(0) > lam                                     # (d,): which dimensions pay their KL
    return torch.where(above, kl, torch.full_like(kl, lam)).sum(-1)
