r"""Exact models for chapter 14: which prior a fixed encoder and decoder want, and total correlation.

**Prior swap under a fixed linear-Gaussian encoder and decoder.** With the encoder
:math:`q(z|x) = \mathcal N(Ax + c, \operatorname{diag} e^{\ell})` and the decoder
:math:`p(x|z) = \mathcal N(Wz + b, \sigma^2 I)` held fixed, the ELBO of a point under a prior
:math:`p(z)` is :math:`\mathbb E_q\log p(x|z) - \mathrm{KL}(q(z|x)\,\|\,p(z))`; only the KL depends on
the prior, and ELBO surgery (Hoffman & Johnson, 2016) splits its average over the :math:`N` training
points as

.. math:: \frac1N\sum_n \mathrm{KL}(q(z|x_n)\,\|\,p) = I_q(n; z) + \mathrm{KL}(q(z)\,\|\,p),
          \qquad q(z) = \frac1N\sum_n q(z|x_n).

Three priors are compared (:func:`prior_swap`):

* :math:`\mathcal N(0, I)` (closed form);
* the **exact training-set aggregate posterior** :math:`q(z)`, a mixture of the :math:`N` training
  posteriors: it maximises the average training ELBO, and its gain over :math:`\mathcal N(0, I)` is
  exactly :math:`\mathrm{KL}(q(z)\,\|\,\mathcal N(0, I))` (Monte Carlo, with closed-form bounds from
  :func:`kl_to_mixture_bounds`); on *new* points it can be worse than :math:`\mathcal N(0, I)`: it overfits;
* the **fitted Gaussian** :math:`G`, moment-matched to :math:`q(z)`: a smooth, normalised prior,
  whose training gain is exactly :math:`\mathrm{KL}(G\,\|\,\mathcal N(0, I))` (the cross-entropy of a
  Gaussian only sees two moments) and which generalises. For Gaussian data it is the
  aggregate posterior of the data distribution itself, the large-:math:`N` limit of :math:`q(z)`.

On the training set the order is exact: :math:`\mathrm{KL}(q\|\mathcal N) = \mathrm{KL}(q\|G) +
\mathrm{KL}(G\|\mathcal N) \ge \mathrm{KL}(G\|\mathcal N) \ge 0`, so aggregate ≥ fitted ≥ standard normal.

**Total correlation of a Gaussian.** For :math:`z\sim\mathcal N(m, \Sigma)`,
:math:`\mathrm{TC} = \mathrm{KL}(q(z)\,\|\,\prod_j q(z_j)) = \tfrac12(\sum_j\log\Sigma_{jj} - \log\det\Sigma)`
(:func:`gaussian_total_correlation`; :math:`-\tfrac12\log(1-\rho^2)` in two dimensions), checked by Monte
Carlo (:func:`gaussian_total_correlation_mc`) and estimated the FactorVAE way, by a classifier against
dimension-wise permuted samples (:func:`permutation_tc_estimate`).

Everything here computes in float64.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ._validate import check_positive_float, check_positive_int, check_tensor
from .distributions import LOG_2PI, gaussian_log_prob, kl_mvn, kl_normal_standard
from .linear_theory import diagonal_gap

__all__ = [
    "gaussian_total_correlation", "gaussian_total_correlation_mc", "permutation_tc_estimate",
    "gaussian_mutual_information", "mixture_log_prob", "kl_to_gaussian", "kl_to_mixture_mc",
    "kl_to_mixture_bounds", "fitted_gaussian", "LinearPriorSwap", "linear_prior_swap_toy", "encode",
    "reconstruction", "PriorSwap", "prior_swap",
]

DTYPE = torch.float64


def _f64(name: str, value, min_dim: int = 1) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value, dtype=DTYPE)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{name} must be a tensor or a nested sequence of numbers, "
                            f"got {type(value).__name__}.") from None
    check_tensor(name, value, min_dim=min_dim, floating=False)
    value = value.to(DTYPE)
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} must be finite.")
    return value


def _cov(name: str, cov) -> torch.Tensor:
    C = _f64(name, cov, min_dim=2)
    if C.dim() != 2 or C.shape[0] != C.shape[1]:
        raise ValueError(f"{name} must be a square (d, d) matrix, got shape {tuple(C.shape)}.")
    if not torch.allclose(C, C.T, atol=1e-10):
        raise ValueError(f"{name} must be symmetric.")
    if torch.linalg.eigvalsh(C).min() <= 0:
        raise ValueError(f"{name} must be positive definite.")
    return C


# ==================================================================================== total correlation


def gaussian_total_correlation(cov) -> float:
    r""":math:`\mathrm{TC} = \tfrac12\big(\sum_j\log\Sigma_{jj} - \log\det\Sigma\big) \ge 0` nats for
    :math:`\mathcal N(m, \Sigma)` (the mean does not matter). Zero iff :math:`\Sigma` is diagonal;
    :math:`-\tfrac12\log(1-\rho^2)` for two unit-variance coordinates with correlation :math:`\rho`.
    The formula is :func:`vae_core.linear_theory.diagonal_gap` applied to the covariance."""
    return diagonal_gap(_cov("cov", cov))


def gaussian_total_correlation_mc(cov, n_samples: int = 100_000,
                                  generator: torch.Generator | None = None) -> tuple[float, float]:
    r"""Monte-Carlo :math:`\mathbb E_{q}[\log q(z) - \sum_j\log q(z_j)]` for :math:`q = \mathcal N(0, \Sigma)`,
    with exact densities; returns ``(estimate, standard error)``."""
    C = _cov("cov", cov)
    n = check_positive_int("n_samples", n_samples)
    L = torch.linalg.cholesky(C)
    z = torch.randn(n, len(C), generator=generator, dtype=DTYPE) @ L.T
    joint = torch.distributions.MultivariateNormal(torch.zeros(len(C), dtype=DTYPE), scale_tril=L).log_prob(z)
    var = torch.diagonal(C)
    marg = gaussian_log_prob(z, torch.zeros_like(z), var.log().expand_as(z))
    d = joint - marg
    return d.mean().item(), (d.std() / math.sqrt(n)).item()


def permutation_tc_estimate(cov, steps: int = 600, batch_size: int = 512, hidden=(64, 64), lr: float = 3e-3,
                            n_eval: int = 20_000, seed: int = 0) -> float:
    r"""FactorVAE's estimate of the TC of :math:`\mathcal N(0, \Sigma)`: train a
    :class:`~vae_core.nets.Discriminator` for ``steps`` Adam steps on batches of :math:`q` (label 1)
    against the same batches with every dimension permuted across the batch (label 0,
    :func:`~vae_core.models.factor_vae.permute_dims`), then average its logit over ``n_eval`` fresh
    samples of :math:`q`. An estimate: biased (the classifier is not optimal) and noisy; it can be
    negative although the TC cannot."""
    from .models.factor_vae import permute_dims
    from .nets import Discriminator

    C = _cov("cov", cov).float()
    check_positive_int("steps", steps)
    check_positive_int("batch_size", batch_size)
    check_positive_int("n_eval", n_eval)
    lr = check_positive_float("lr", lr)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    L = torch.linalg.cholesky(C)
    disc = Discriminator(len(C), hidden)
    from .train import make_optimizer   # the fused Adam
    opt = make_optimizer(disc.parameters(), lr=lr, betas=(0.5, 0.9))
    for _ in range(steps):
        z = torch.randn(batch_size, len(C), generator=g) @ L.T
        loss = disc.ratio_loss(z, permute_dims(z, generator=g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return disc(torch.randn(n_eval, len(C), generator=g) @ L.T).mean().item()


def gaussian_mutual_information(A, data_cov, post_logvar) -> float:
    r""":math:`I(x; z)` for :math:`x \sim \mathcal N(\cdot, C)` and :math:`q(z|x) = \mathcal N(Ax + c, \operatorname{diag}e^{\ell})`:
    :math:`\tfrac12\log\det(ACA^\top + S) - \tfrac12\log\det S`, with :math:`S = \operatorname{diag}e^{\ell}`."""
    A = _f64("A", A, min_dim=2)
    C = _cov("data_cov", data_cov)
    lv = _f64("post_logvar", post_logvar)
    if A.dim() != 2 or A.shape[1] != len(C) or lv.shape != (A.shape[0],):
        raise ValueError(f"A must be (d, D) with D = {len(C)} and post_logvar (d,), got {tuple(A.shape)} "
                         f"and {tuple(lv.shape)}.")
    S = torch.diag(lv.exp())
    return (0.5 * (torch.logdet(A @ C @ A.T + S) - lv.sum())).item()


# ==================================================================================== mixtures of Gaussians


def mixture_log_prob(z: torch.Tensor, comp_mu: torch.Tensor, comp_logvar: torch.Tensor,
                     chunk: int = 2048) -> torch.Tensor:
    r""":math:`\log\frac1N\sum_n\mathcal N(z; \mu_n, \operatorname{diag}e^{\ell_n})`, the log density of an
    equal-weight mixture of diagonal Gaussians (e.g. an aggregate posterior), for ``z`` of shape
    ``(..., d)``; the components ``(N, d)``. Computed in chunks of ``chunk`` points with ``logsumexp``."""
    check_tensor("z", z)
    check_tensor("comp_mu", comp_mu, min_dim=2)
    check_tensor("comp_logvar", comp_logvar, min_dim=2)
    if comp_mu.shape != comp_logvar.shape or comp_mu.dim() != 2 or z.shape[-1] != comp_mu.shape[1]:
        raise ValueError(f"comp_mu and comp_logvar must both be (N, d) with d = z.shape[-1] = {z.shape[-1]}; "
                         f"got {tuple(comp_mu.shape)} and {tuple(comp_logvar.shape)}.")
    check_positive_int("chunk", chunk)
    flat = z.reshape(-1, z.shape[-1])
    prec = torch.exp(-comp_logvar)                                               # (N, d)
    const = -0.5 * (LOG_2PI * comp_mu.shape[1] + comp_logvar.sum(-1))            # (N,)
    out = []
    for i in range(0, len(flat), chunk):
        zc = flat[i:i + chunk]
        # sum_j (z_j - mu_nj)^2 / v_nj, expanded so the table is (chunk, N) without a d axis
        quad = (zc ** 2) @ prec.T - 2 * zc @ (comp_mu * prec).T + (comp_mu ** 2 * prec).sum(-1)
        out.append(torch.logsumexp(const - 0.5 * quad, dim=-1))
    return (torch.cat(out) - math.log(len(comp_mu))).reshape(z.shape[:-1])


def kl_to_gaussian(mu: torch.Tensor, logvar: torch.Tensor, mean_p: torch.Tensor, cov_p: torch.Tensor) -> torch.Tensor:
    r""":math:`\mathrm{KL}(\mathcal N(\mu, \operatorname{diag}e^{\ell})\,\|\,\mathcal N(m_p, \Sigma_p))` per row, closed form."""
    check_tensor("mu", mu, min_dim=2)
    check_tensor("logvar", logvar, min_dim=2)
    cov_q = torch.diag_embed(logvar.exp())
    return kl_mvn(mu, cov_q, mean_p.expand_as(mu), cov_p.expand(*mu.shape, mu.shape[-1]))


def kl_to_mixture_mc(mu: torch.Tensor, logvar: torch.Tensor, comp_mu: torch.Tensor, comp_logvar: torch.Tensor,
                     n_samples: int = 256, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Monte-Carlo :math:`\mathrm{KL}(q_i\,\|\,\text{mixture})` for each row :math:`q_i = \mathcal N(\mu_i, e^{\ell_i})`,
    with ``n_samples`` draws per row and exact densities: ``(estimate (B,), standard error (B,))``."""
    n = check_positive_int("n_samples", n_samples)
    check_tensor("mu", mu, min_dim=2)
    eps = torch.randn((n, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)
    z = mu + torch.exp(0.5 * logvar) * eps                                       # (K, B, d)
    d = gaussian_log_prob(z, mu.expand_as(z), logvar.expand_as(z)) - mixture_log_prob(z, comp_mu, comp_logvar)
    return d.mean(0), d.std(0) / math.sqrt(n)


def kl_to_mixture_bounds(mu: torch.Tensor, logvar: torch.Tensor, comp_mu: torch.Tensor,
                         comp_logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Closed-form bounds ``(lower, upper)`` on :math:`\mathrm{KL}(q_i\,\|\,\frac1N\sum_n p_n)` for each row.

    Upper (Jensen, :math:`\log\sum` is convex): :math:`-\log\frac1N\sum_n e^{-\mathrm{KL}(q_i\|p_n)}`.
    Lower (Jensen, :math:`\log` is concave): :math:`-H(q_i) - \log\frac1N\sum_n\int q_i p_n`, with
    :math:`\int q_i p_n = \mathcal N(\mu_i; \mu_n, S_i + S_n)`.
    """
    check_tensor("mu", mu, min_dim=2)
    kl_pair = (0.5 * (comp_logvar[None] - logvar[:, None] + (logvar[:, None] - comp_logvar[None]).exp()
                      + (mu[:, None] - comp_mu[None]) ** 2 / comp_logvar[None].exp() - 1)).sum(-1)  # (B, N)
    log_n = math.log(len(comp_mu))
    upper = -(torch.logsumexp(-kl_pair, dim=1) - log_n)
    overlap = gaussian_log_prob(mu[:, None].expand(-1, len(comp_mu), -1), comp_mu[None].expand(len(mu), -1, -1),
                                torch.logaddexp(logvar[:, None], comp_logvar[None]))     # log int q_i p_n
    entropy = 0.5 * (mu.shape[1] * (LOG_2PI + 1) + logvar.sum(-1))
    lower = -entropy - (torch.logsumexp(overlap, dim=1) - log_n)
    return lower, upper


def fitted_gaussian(mu: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The Gaussian with the mean and covariance of the mixture :math:`\frac1N\sum_n\mathcal N(\mu_n, e^{\ell_n})`:
    mean :math:`\bar\mu`, covariance :math:`\frac1N\sum_n(\mu_n-\bar\mu)(\mu_n-\bar\mu)^\top + \frac1N\sum_n\operatorname{diag}e^{\ell_n}`."""
    check_tensor("mu", mu, min_dim=2)
    check_tensor("logvar", logvar, min_dim=2)
    m = mu.mean(0)
    c = mu - m
    return m, c.T @ c / len(mu) + torch.diag(logvar.exp().mean(0))


# ==================================================================================== the prior-swap toy


class LinearPriorSwap(NamedTuple):
    """A fixed linear-Gaussian encoder ``(A, c, logvar)`` and decoder ``(W, b, sigma)``, with training and
    test points drawn from the same data distribution ``N(0, data_cov)``."""
    A: torch.Tensor
    c: torch.Tensor
    logvar: torch.Tensor
    W: torch.Tensor
    b: torch.Tensor
    sigma: float
    data_cov: torch.Tensor
    x_train: torch.Tensor
    x_test: torch.Tensor


def linear_prior_swap_toy(n_train: int = 100, n_test: int = 2000, data_dim: int = 10, scales=(2.0, 0.5),
                          noise: float = 0.2, seed: int = 0) -> LinearPriorSwap:
    r"""Data :math:`x = U\operatorname{diag}(\text{scales})\,u + \text{noise}\cdot\varepsilon` (``U`` with orthonormal
    columns, :math:`u\sim\mathcal N(0, I)`); decoder :math:`p(x|z) = \mathcal N(Uz, \text{noise}^2 I)` and the encoder
    its exact posterior *under* :math:`\mathcal N(0, I)`, :math:`q(z|x) = \mathcal N(U^\top x/(1+\text{noise}^2),
    \tfrac{\text{noise}^2}{1+\text{noise}^2} I)`. The codes' spread follows ``scales``, not 1, so the aggregate
    posterior is not :math:`\mathcal N(0, I)` and a better prior has something to win; posterior sd
    :math:`\approx` ``noise``, so a small ``noise`` and few training points make the exact aggregate spiky."""
    check_positive_int("n_train", n_train)
    check_positive_int("n_test", n_test)
    check_positive_int("data_dim", data_dim)
    s = _f64("scales", scales)
    if s.dim() != 1 or (s <= 0).any() or len(s) > data_dim:
        raise ValueError(f"scales must be a 1-D sequence of at most data_dim positive numbers, got {scales!r}.")
    noise = check_positive_float("noise", noise)
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(data_dim, len(s), generator=g, dtype=DTYPE))
    data_cov = U @ torch.diag(s ** 2) @ U.T + noise ** 2 * torch.eye(data_dim, dtype=DTYPE)

    def draw(n):
        return (torch.randn(n, len(s), generator=g, dtype=DTYPE) * s) @ U.T + noise * torch.randn(
            n, data_dim, generator=g, dtype=DTYPE)

    shrink = 1.0 / (1.0 + noise ** 2)
    return LinearPriorSwap(A=shrink * U.T, c=torch.zeros(len(s), dtype=DTYPE),
                           logvar=torch.full((len(s),), math.log(noise ** 2 * shrink), dtype=DTYPE),
                           W=U, b=torch.zeros(data_dim, dtype=DTYPE), sigma=noise, data_cov=data_cov,
                           x_train=draw(n_train), x_test=draw(n_test))


def _toy(toy) -> LinearPriorSwap:
    if not isinstance(toy, LinearPriorSwap):
        raise TypeError(f"toy must be a LinearPriorSwap (from linear_prior_swap_toy), got {type(toy).__name__}.")
    return toy


def encode(toy: LinearPriorSwap, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mu, logvar)`` of the fixed encoder at points ``x`` ``(B, D)``."""
    toy = _toy(toy)
    x = _f64("x", x, min_dim=2)
    if x.shape[-1] != toy.A.shape[1]:
        raise ValueError(f"x must have {toy.A.shape[1]} columns, got shape {tuple(x.shape)}.")
    mu = x @ toy.A.T + toy.c
    return mu, toy.logvar.expand_as(mu)


def reconstruction(toy: LinearPriorSwap, x: torch.Tensor) -> torch.Tensor:
    r""":math:`\mathbb E_{q(z|x)}\log\mathcal N(x; Wz + b, \sigma^2 I)` per point, closed form."""
    mu, logvar = encode(toy, x)
    x = _f64("x", x, min_dim=2)
    D, s2 = x.shape[1], toy.sigma ** 2
    resid = ((x - mu @ toy.W.T - toy.b) ** 2).sum(-1) + (toy.W ** 2 * logvar[:1].exp()).sum()
    return -0.5 * (D * (LOG_2PI + math.log(s2)) + resid / s2)


class PriorSwap(NamedTuple):
    """Mean ELBOs (nats) under each prior, ``elbo[split][prior]`` with splits ``train``/``test`` and priors
    ``standard``, ``aggregate`` (exact training-set mixture, Monte Carlo), ``fitted`` (moment-matched Gaussian);
    ``se[split]`` the Monte-Carlo standard error of the aggregate rows; the surgery terms on the training set
    (``avg_kl`` to N(0, I), ``mutual_information`` I(n; z) ≤ log N, ``marginal_kl`` = KL(q(z)||N(0, I)),
    ``kl_fitted`` = KL(G||N(0, I)) closed form); and ``bounds[split]`` = closed-form (lower, upper) bounds on the
    aggregate row's mean ELBO."""
    elbo: dict
    se: dict
    avg_kl: float
    mutual_information: float
    marginal_kl: float
    kl_fitted: float
    log_n: float
    bounds: dict


def prior_swap(toy: LinearPriorSwap, n_samples: int = 512, generator: torch.Generator | None = None) -> PriorSwap:
    """Swap the prior under the toy's fixed encoder and decoder, on its training and test points (see the module)."""
    toy = _toy(toy)
    mu_tr, lv_tr = encode(toy, toy.x_train)
    m_g, cov_g = fitted_gaussian(mu_tr, lv_tr)
    d = mu_tr.shape[1]
    elbo, se, bounds = {}, {}, {}
    for split, x in (("train", toy.x_train), ("test", toy.x_test)):
        mu, lv = encode(toy, x)
        rec = reconstruction(toy, x)
        kl_std = kl_normal_standard(mu, lv)
        kl_fit = kl_to_gaussian(mu, lv, m_g, cov_g)
        kl_agg, kl_se = kl_to_mixture_mc(mu, lv, mu_tr, lv_tr, n_samples, generator)
        lo, hi = kl_to_mixture_bounds(mu, lv, mu_tr, lv_tr)
        elbo[split] = {"standard": (rec - kl_std).mean().item(), "aggregate": (rec - kl_agg).mean().item(),
                       "fitted": (rec - kl_fit).mean().item()}
        se[split] = (kl_se.pow(2).sum().sqrt() / len(x)).item()
        bounds[split] = ((rec - hi).mean().item(), (rec - lo).mean().item())
        if split == "train":
            avg_kl = kl_std.mean().item()
            mi = kl_agg.mean().item()                     # mean KL(q(z|x_n) || q(z)) = I(n; z)
    kl_fitted = kl_mvn(m_g, cov_g, torch.zeros(d, dtype=DTYPE), torch.eye(d, dtype=DTYPE)).item()
    return PriorSwap(elbo, se, avg_kl, mi, avg_kl - mi, kl_fitted, math.log(len(toy.x_train)), bounds)
