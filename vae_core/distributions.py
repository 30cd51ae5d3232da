r"""Log-densities and KL divergences, one function per equation.

Every function returns **one value per example**: it sums over the last dimension (the
event dimension) and keeps all leading (batch / sample) dimensions. Gaussians are given by a
mean ``mu`` and a log-variance ``logvar`` (so :math:`\sigma = \exp(\tfrac12 \log\sigma^2)`),
Bernoullis by logits, never probabilities.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._validate import check_same_shape, check_tensor

LOG_2PI = math.log(2 * math.pi)

__all__ = [
    "gaussian_log_prob", "standard_normal_log_prob", "bernoulli_log_prob", "categorical_log_prob",
    "kl_normal_standard", "kl_normal_standard_per_dim", "kl_normal_normal", "kl_mvn", "kl_categorical",
    "kl_categorical_uniform", "sample_bernoulli",
]


def gaussian_log_prob(x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""Diagonal Gaussian log-density :math:`\sum_j \log \mathcal N(x_j; \mu_j, \sigma_j^2)`.

    .. math:: \log \mathcal N(x; \mu, \sigma^2) = -\tfrac12\left[\log 2\pi + \log\sigma^2
              + (x-\mu)^2/\sigma^2\right]
    """
    for n, t in (("x", x), ("mu", mu), ("logvar", logvar)):
        check_tensor(n, t)
    check_same_shape(x=x, mu=mu, logvar=logvar)
    return (-0.5 * (LOG_2PI + logvar + (x - mu) ** 2 * torch.exp(-logvar))).sum(-1)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    r"""Log-density of :math:`\mathcal N(0, I)`: :math:`-\tfrac12 \sum_j (z_j^2 + \log 2\pi)`."""
    check_tensor("z", z)
    return (-0.5 * (z ** 2 + LOG_2PI)).sum(-1)


def bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    r"""Bernoulli log-likelihood from logits, :math:`\sum_j x_j \log p_j + (1-x_j)\log(1-p_j)`.

    ``x`` may be binary or grey levels in [0, 1] (the continuous relaxation used with
    non-binarized MNIST). Computed as ``-binary_cross_entropy_with_logits``, which is stable for
    any logit.
    """
    check_tensor("x", x)
    check_tensor("logits", logits)
    check_same_shape(x=x, logits=logits)
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"a Bernoulli likelihood needs pixels in [0, 1], got values in "
            f"[{x.min().item():.3g}, {x.max().item():.3g}]; rescale the data (e.g. x / 255) "
            f"or use likelihood='gaussian' for real-valued data.")
    shape = torch.broadcast_shapes(x.shape, logits.shape)  # e.g. x (B, D) against logits (S, B, D)
    return -F.binary_cross_entropy_with_logits(logits.expand(shape), x.expand(shape),
                                               reduction="none").sum(-1)


def categorical_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    r"""Log-probability of one-hot (or relaxed) ``x`` under a categorical with ``logits``,
    :math:`\sum_k x_k \log\pi_k`, summed over the category dimension (last)."""
    check_tensor("x", x)
    check_tensor("logits", logits)
    check_same_shape(x=x, logits=logits)
    return (x * torch.log_softmax(logits, dim=-1)).sum(-1)


def _kl_standard_terms(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return 0.5 * (mu ** 2 + torch.exp(logvar) - logvar - 1)


def kl_normal_standard_per_dim(mu: torch.Tensor, logvar: torch.Tensor,
                               z: torch.Tensor | None = None) -> torch.Tensor:
    r""":math:`\mathrm{KL}(q(z_j)\,\|\,\mathcal N(0,1))` for each coordinate ``j`` (not summed), shape of ``mu``.

    With ``z=None`` the closed form :math:`\tfrac12(\mu_j^2 + \sigma_j^2 - \log\sigma_j^2 - 1)`.
    With samples ``z`` of shape ``(L, *mu.shape)`` drawn from ``q``, the Monte-Carlo estimate
    :math:`\frac1L\sum_l \log q(z^{(l)}_j) - \log p(z^{(l)}_j)
    = \frac1L\sum_l \tfrac12\big(z_j^{(l)2} - (z^{(l)}_j-\mu_j)^2/\sigma_j^2 - \log\sigma_j^2\big)`.
    Summing over the last dimension gives :func:`kl_normal_standard`.
    """
    check_tensor("mu", mu)
    check_tensor("logvar", logvar)
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}.")
    if z is None:
        return _kl_standard_terms(mu, logvar)
    check_tensor("z", z, min_dim=mu.dim() + 1)
    if z.shape[1:] != mu.shape:
        raise ValueError(f"z must have shape (L, {', '.join(map(str, mu.shape))}) (samples first), "
                         f"got {tuple(z.shape)}.")
    return (0.5 * (z ** 2 - (z - mu) ** 2 / logvar.exp() - logvar)).mean(0)


def kl_normal_standard(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""KL divergence :math:`\mathrm{KL}(\mathcal N(\mu, \operatorname{diag}\sigma^2)\,\|\,\mathcal N(0, I))`.

    .. math:: \tfrac12 \sum_j \left(\mu_j^2 + \sigma_j^2 - \log\sigma_j^2 - 1\right)
    """
    check_same_shape(mu=check_tensor("mu", mu), logvar=check_tensor("logvar", logvar))
    return _kl_standard_terms(mu, logvar).sum(-1)


def kl_normal_normal(mu_q: torch.Tensor, logvar_q: torch.Tensor,
                     mu_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    r"""KL divergence between diagonal Gaussians :math:`\mathrm{KL}(q\,\|\,p)`.

    .. math:: \tfrac12 \sum_j \left(\log\frac{\sigma_{p,j}^2}{\sigma_{q,j}^2}
              + \frac{\sigma_{q,j}^2 + (\mu_{q,j}-\mu_{p,j})^2}{\sigma_{p,j}^2} - 1\right)
    """
    for n, t in (("mu_q", mu_q), ("logvar_q", logvar_q), ("mu_p", mu_p), ("logvar_p", logvar_p)):
        check_tensor(n, t)
    check_same_shape(mu_q=mu_q, logvar_q=logvar_q, mu_p=mu_p, logvar_p=logvar_p)
    return 0.5 * (logvar_p - logvar_q + (torch.exp(logvar_q) + (mu_q - mu_p) ** 2) * torch.exp(-logvar_p)
                  - 1).sum(-1)


def kl_mvn(mu_q: torch.Tensor, cov_q: torch.Tensor, mu_p: torch.Tensor, cov_p: torch.Tensor) -> torch.Tensor:
    r"""KL divergence between full-covariance Gaussians :math:`\mathrm{KL}(\mathcal N(\mu_q,\Sigma_q)\,\|\,\mathcal N(\mu_p,\Sigma_p))`.

    .. math:: \tfrac12\left[\operatorname{tr}(\Sigma_p^{-1}\Sigma_q) + (\mu_p-\mu_q)^\top\Sigma_p^{-1}(\mu_p-\mu_q)
              - d + \log\frac{\det\Sigma_p}{\det\Sigma_q}\right]

    ``mu_*`` have shape ``(..., d)`` and ``cov_*`` shape ``(..., d, d)`` (symmetric positive
    definite). Computed with Cholesky factors, never explicit inverses.
    """
    for n, t in (("mu_q", mu_q), ("mu_p", mu_p)):
        check_tensor(n, t)
    for n, t in (("cov_q", cov_q), ("cov_p", cov_p)):
        check_tensor(n, t, min_dim=2)
        if t.shape[-1] != t.shape[-2]:
            raise ValueError(f"{n} must be square in its last two dimensions, got shape {tuple(t.shape)}.")
    d = mu_q.shape[-1]
    if mu_p.shape[-1] != d or cov_q.shape[-1] != d or cov_p.shape[-1] != d:
        raise ValueError(f"dimensions disagree: mu_q has d={d}, mu_p {mu_p.shape[-1]}, "
                         f"cov_q {cov_q.shape[-1]}, cov_p {cov_p.shape[-1]}.")
    try:
        L_p = torch.linalg.cholesky(cov_p)
        L_q = torch.linalg.cholesky(cov_q)
    except RuntimeError as err:  # torch raises LinAlgError (a RuntimeError)
        raise ValueError("cov_q and cov_p must be symmetric positive definite; "
                         f"the Cholesky factorisation failed: {err}") from None
    # tr(Σp^{-1} Σq) = ||L_p^{-1} L_q||_F^2
    M = torch.linalg.solve_triangular(L_p, L_q, upper=False)
    trace = (M ** 2).sum((-2, -1))
    diff = (mu_p - mu_q).unsqueeze(-1)
    y = torch.linalg.solve_triangular(L_p, diff, upper=False)
    maha = (y ** 2).sum((-2, -1))
    logdet_p = 2 * torch.log(torch.diagonal(L_p, dim1=-2, dim2=-1)).sum(-1)
    logdet_q = 2 * torch.log(torch.diagonal(L_q, dim1=-2, dim2=-1)).sum(-1)
    return 0.5 * (trace + maha - d + logdet_p - logdet_q)


def kl_categorical(logits_q: torch.Tensor, logits_p: torch.Tensor | None = None) -> torch.Tensor:
    r"""KL divergence between categoricals, :math:`\sum_k q_k(\log q_k - \log p_k)`.

    ``logits_p=None`` means the uniform prior over the last dimension.
    """
    check_tensor("logits_q", logits_q)
    log_q = torch.log_softmax(logits_q, dim=-1)
    if logits_p is None:
        log_p = torch.full_like(log_q, -math.log(log_q.shape[-1]))
    else:
        check_tensor("logits_p", logits_p)
        check_same_shape(logits_q=logits_q, logits_p=logits_p)
        log_p = torch.log_softmax(logits_p, dim=-1)
    return (log_q.exp() * (log_q - log_p)).sum(-1)


def kl_categorical_uniform(logits: torch.Tensor) -> torch.Tensor:
    r"""KL divergence from a categorical to the uniform distribution on its :math:`K` classes.

    With :math:`q = \mathrm{softmax}(\text{logits})` and :math:`p_k = 1/K`,

    .. math:: \mathrm{KL}(q\,\|\,p) = \sum_{k=1}^K q_k \log\frac{q_k}{1/K}
              = \log K + \sum_k q_k \log q_k = \log K - H(q),

    which lies in :math:`[0, \log K]`: zero for the uniform :math:`q`, :math:`\log K` for a one-hot
    :math:`q`. Only the last (category) dimension is summed: logits of shape ``(B, N, K)`` for
    :math:`N` categorical variables give ``(B, N)``, one KL per variable (sum over ``N`` for the
    KL of the whole code, whose prior is uniform on each variable independently).
    """
    check_tensor("logits", logits)
    K = logits.shape[-1]
    if K < 1:
        raise ValueError(f"logits must have at least one category in the last dimension, got shape "
                         f"{tuple(logits.shape)}.")
    log_q = torch.log_softmax(logits, dim=-1)
    neg_entropy = (log_q.exp() * log_q).sum(-1)          # sum_k q_k log q_k = -H(q)
    return (math.log(K) + neg_entropy).clamp(min=0.0)    # clamp: rounding only, never a real negative
def precision_weighted(mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor,
                       logvar2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The Gaussian proportional to the product of two diagonal Gaussians (the Ladder VAE's merge).

    :math:`\mathcal N(z; \mu_1, \sigma_1^2)\,\mathcal N(z; \mu_2, \sigma_2^2) \propto \mathcal N(z; \mu, \sigma^2)`
    with precisions (inverse variances) adding and the mean their weighted average:

    .. math:: \sigma^2 = \frac{1}{\sigma_1^{-2} + \sigma_2^{-2}}, \qquad
              \mu = \frac{\mu_1\sigma_1^{-2} + \mu_2\sigma_2^{-2}}{\sigma_1^{-2} + \sigma_2^{-2}}.

    So :math:`\sigma^2` is below both :math:`\sigma_1^2` and :math:`\sigma_2^2`, and :math:`\mu` lies
    between :math:`\mu_1` and :math:`\mu_2`, nearer the more precise one. Computed in log-space:
    :math:`\log\sigma^2 = -\operatorname{logaddexp}(-\log\sigma_1^2, -\log\sigma_2^2)` and the weight of
    :math:`\mu_1` is :math:`\sigma_1^{-2}/(\sigma_1^{-2}+\sigma_2^{-2}) = \operatorname{sigmoid}(\log\sigma_2^2 - \log\sigma_1^2)`,
    which never divides by a small number.

    Args:
        mu1, logvar1, mu2, logvar2: tensors of broadcastable shapes (element-wise, no sum).

    Returns:
        ``(mu, logvar)`` of the normalised product, of the broadcast shape.
    """
    for n, t in (("mu1", mu1), ("logvar1", logvar1), ("mu2", mu2), ("logvar2", logvar2)):
        check_tensor(n, t)
    check_same_shape(mu1=mu1, logvar1=logvar1, mu2=mu2, logvar2=logvar2)
    mu = torch.sigmoid(logvar2 - logvar1) * mu1 + torch.sigmoid(logvar1 - logvar2) * mu2
    logvar = -torch.logaddexp(-logvar1, -logvar2)
    return mu, logvar


__all__ += ["precision_weighted"]


def sample_bernoulli(p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""One Bernoulli sample per entry of ``p`` (probabilities in [0, 1]), in ``p``'s floating dtype:
    ``1`` where a uniform draw :math:`u \sim U[0, 1)` falls below ``p``, since :math:`P(u < p) = p`
    (so ``p = 0`` never fires and ``p = 1`` always does).

    The same distribution as ``torch.bernoulli(p)``, in about a third of its time on a CPU (one
    vectorised uniform draw and a comparison). Dynamic binarization and the Bernoulli decoder's
    ``sample`` use it.
    """
    if not p.dtype.is_floating_point:
        raise TypeError(f"p must be a floating tensor of probabilities, got {p.dtype}.")
    u = torch.rand(p.shape, generator=generator, dtype=p.dtype, device=p.device)
    return torch.lt(u, p, out=u)
