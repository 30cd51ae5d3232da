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

from ._validate import check_nonnegative_float, check_tensor
from .distributions import gaussian_log_prob, kl_normal_standard, standard_normal_log_prob

__all__ = ["ELBOTerms", "gaussian_elbo", "log_mean_exp", "iwae_bound", "free_bits_kl", "KL_MODES"]

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


def iwae_bound(log_w: torch.Tensor, dim: int = 0) -> torch.Tensor:
    r"""The importance-weighted bound of Burda et al. (2015) from ``k`` log-weights per example:

    .. math:: \hat{\mathcal L}_k(x) = \log \frac1k \sum_{i=1}^k w_i,
              \qquad \log w_i = \log p(x|z_i) + \log p(z_i) - \log q(z_i|x),\quad z_i \sim q(z|x),

    computed as ``logsumexp(log_w, dim) - log k`` (:func:`log_mean_exp`). Its expectation
    :math:`\mathcal L_k` is the ELBO for ``k = 1``, never decreases with ``k`` and stays below
    :math:`\log p(x)`.

    Args:
        log_w: log importance weights with the ``k`` samples along ``dim`` (e.g. ``(k, B)`` from a
            model's ``log_weights``). They must be built from *sampled* ``z`` (never with a
            closed-form KL: that is a different quantity for ``k > 1``).
        dim: the sample dimension (default 0).

    Returns:
        the per-example bound, ``log_w`` with ``dim`` removed.
    """
    check_tensor("log_w", log_w, min_dim=1)
    try:
        k = log_w.shape[dim]
    except IndexError:
        raise ValueError(f"dim={dim} is not a dimension of log_w (shape {tuple(log_w.shape)}); pass the "
                         f"dimension that holds the k samples.") from None
    if k == 0:
        raise ValueError(f"log_w has no samples along dim={dim} (shape {tuple(log_w.shape)}); need k >= 1.")
    return log_mean_exp(log_w, dim=dim)
