r"""Evaluation: importance-sampled log-likelihood and latent-usage diagnostics.

The importance-sampling estimate of the evidence with the encoder as proposal,

.. math:: \log p(x) \approx \log \frac1K \sum_{k=1}^K
          \frac{p_\theta(x|z_k)\,p(z_k)}{q_\phi(z_k|x)}, \qquad z_k\sim q_\phi(z|x),

is a stochastic lower bound whose expectation increases with ``K`` towards :math:`\log p(x)`
(Burda et al., 2015); ``K = 1`` gives the Monte-Carlo ELBO.
"""
from __future__ import annotations

import torch

from ._checks import check_positive_int, check_tensor
from .distributions import gaussian_log_prob
from .estimators import reparameterize
from .objectives import log_mean_exp

__all__ = ["log_importance_weights", "log_marginal", "kl_per_dimension", "active_units"]


def log_importance_weights(model, x: torch.Tensor, n_samples: int,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    r"""``log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x)`` with ``z_k ~ q(z|x)``, shape ``(K, B)``.

    ``model`` needs ``encode``, ``log_likelihood(x, z)`` and ``prior_log_prob(z)``.
    """
    mu, logvar = model.encode(x)
    z = reparameterize(mu, logvar, n_samples, generator=generator)
    return model.log_likelihood(x, z) + model.prior_log_prob(z) - gaussian_log_prob(z, mu, logvar)


@torch.no_grad()
def log_marginal(model, x: torch.Tensor, n_samples: int = 1000, batch_size: int = 100,
                 chunk: int = 250, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Importance-sampled :math:`\log p(x)` per example (shape ``(B,)``), in nats.

    Examples are processed ``batch_size`` at a time and samples ``chunk`` at a time, so memory
    stays bounded for large ``n_samples``; the chunks are combined exactly with logsumexp.
    """
    check_tensor("x", x, min_dim=2)
    check_positive_int("n_samples", n_samples)
    check_positive_int("batch_size", batch_size)
    check_positive_int("chunk", chunk)
    was_training = model.training
    model.eval()
    try:
        out = []
        for xb in x.split(batch_size):
            parts = [torch.logsumexp(log_importance_weights(model, xb, min(chunk, n_samples - s), generator), 0)
                     for s in range(0, n_samples, chunk)]
            out.append(torch.logsumexp(torch.stack(parts), 0) - torch.log(torch.tensor(float(n_samples))))
        return torch.cat(out)
    finally:
        model.train(was_training)


@torch.no_grad()
def kl_per_dimension(model, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    r"""Average over ``x`` of :math:`\mathrm{KL}(q(z_j|x)\,\|\,p(z_j))` for each latent dimension ``j``.

    Sums to the mean KL term of the ELBO. A dimension with near-zero KL carries no information
    about ``x`` (it has collapsed onto the prior).
    """
    total = None
    for xb in x.split(batch_size):
        mu, logvar = model.encode(xb)
        kl = 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(0)  # per dimension, summed over the batch
        total = kl if total is None else total + kl
    return total / len(x)


@torch.no_grad()
def active_units(model, x: torch.Tensor, threshold: float = 0.01, batch_size: int = 500):
    r"""Active units (Burda et al., 2015): dimension ``j`` is active when
    :math:`\operatorname{Var}_x\big(\mathbb E_{q(z|x)}[z_j]\big) > \text{threshold}`.

    Returns ``(count, variances)``.
    """
    mus = torch.cat([model.encode(xb)[0] for xb in x.split(batch_size)])
    var = mus.var(0, unbiased=False)
    return int((var > threshold).sum()), var


