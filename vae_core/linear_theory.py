r"""Closed-form results on linear-Gaussian models for Part IV (chapters 9, 11 and 15).

Every Part IV chapter shows its paper's central effect twice: exactly on a small model, then on
images. This module is the exact half. Everything runs in float64, and every closed form here is
checked in ``tests/test_linear_theory.py`` against an *independent* computation (a numerical
optimisation of the objective written out term by term, or Monte Carlo), never against itself.
Part I's :class:`vae_core.exact.LinearGaussian` is reused wherever a one-layer model appears.

**Chapter 9 — the linear-Gaussian β-VAE is reverse water-filling.**
:func:`beta_vae_rates`, :func:`beta_vae_rate`, :func:`beta_vae_distortion`, :func:`beta_vae_rd_curve`,
:func:`switch_off_betas`, :func:`beta_for_rate`, :func:`capacity_switch_on`,
:func:`optimal_linear_beta_vae`, and the numerical side :func:`linear_beta_vae_terms`,
:func:`fit_linear_beta_vae`.

**Chapter 11 — (a) the importance-sampling gap law; (b) the SNR law of Rainforth et al. (2018).**
:func:`gaussian_weight_log_moment`, :func:`weight_variance_is_finite`, :func:`importance_chi2`,
:func:`iwae_gap_asymptotic`, :func:`iwae_log_weights`, :func:`iwae_gap_samples`;
:func:`rainforth_toy`, :func:`rainforth_gradients`, :func:`snr_over_k`.

**Chapter 15 — top-down against bottom-up inference in a two-layer linear-Gaussian hierarchy.**
:class:`TwoLayerLinearGaussian` (exact evidence, posterior, ELBO of any Gaussian q, the best ELBO of
each inference family in closed form, the Ladder VAE merge), :func:`diagonal_gap`,
:func:`fit_hierarchical_q`.

Conventions: rates and distortions are in nats; "distortion" is the expected negative
log-likelihood :math:`D = -\mathbb E\log p(x|z)` *including* its normalising constant, so that
the β-objective is :math:`D + \beta R` (to be minimised) and :math:`-D - R` is the ELBO.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch

from ._validate import check_nonnegative_float, check_positive_float, check_positive_int
from .distributions import LOG_2PI
from .exact import DTYPE, LinearGaussian

__all__ = [
    # chapter 9
    "beta_vae_rates", "beta_vae_rate", "beta_vae_distortion", "beta_vae_rd_curve", "switch_off_betas",
    "beta_for_rate", "capacity_switch_on", "LinearBetaVAE", "optimal_linear_beta_vae",
    "linear_beta_vae_terms", "BetaVAEFit", "fit_linear_beta_vae",
    # chapter 11
    "gaussian_weight_log_moment", "weight_variance_is_finite", "importance_chi2", "iwae_gap_asymptotic",
    "iwae_log_weights", "iwae_gap_samples", "RainforthToy", "rainforth_toy", "rainforth_gradients",
    "SNRCurve", "snr_over_k",
    # chapter 15
    "diagonal_gap", "TwoLayerLinearGaussian", "HierarchicalFit", "fit_hierarchical_q",
]


# ==================================================================================== input checks


def _matrix(name: str, value, square: bool = False) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=DTYPE) if not isinstance(value, torch.Tensor) else value.to(DTYPE)
    if t.dim() != 2:
        raise ValueError(f"{name} must be a matrix (2 dimensions), got shape {tuple(t.shape)}.")
    if square and t.shape[0] != t.shape[1]:
        raise ValueError(f"{name} must be square, got shape {tuple(t.shape)}.")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite.")
    return t


def _spd(name: str, value) -> torch.Tensor:
    """A symmetric positive definite matrix (checked by a Cholesky factorisation)."""
    t = _matrix(name, value, square=True)
    if not torch.allclose(t, t.T, rtol=1e-10, atol=1e-12):
        raise ValueError(f"{name} must be symmetric.")
    if torch.linalg.cholesky_ex(t).info.item() != 0:
        raise ValueError(f"{name} must be positive definite (its Cholesky factorisation failed).")
    return t


def _vector(name: str, value, n: int | None = None) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=DTYPE) if not isinstance(value, torch.Tensor) else value.to(DTYPE)
    if t.dim() != 1:
        raise ValueError(f"{name} must be a vector (1 dimension), got shape {tuple(t.shape)}.")
    if n is not None and t.shape[0] != n:
        raise ValueError(f"{name} must have {n} entries, got {t.shape[0]}.")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite.")
    return t


def _eigvals(eigvals) -> torch.Tensor:
    """Data variances per principal direction, sorted in decreasing order."""
    lam = _vector("eigvals", eigvals)
    if lam.numel() == 0 or (lam <= 0).any():
        raise ValueError(f"eigvals must be a non-empty vector of positive variances, got {lam.tolist()}.")
    return torch.sort(lam, descending=True).values


def _latent_dim(latent_dim, D: int) -> int:
    if latent_dim is None:
        return D
    check_positive_int("latent_dim", latent_dim)
    return min(latent_dim, D)


def _logdet(M: torch.Tensor) -> torch.Tensor:
    return 2 * torch.log(torch.diagonal(torch.linalg.cholesky(M))).sum()


def _minimize(loss_fn, params: list, steps: int) -> None:
    """Minimise ``loss_fn()`` over the float64 tensors ``params`` in place: scipy's L-BFGS-B with exact
    gradients from autograd (scipy rather than ``torch.optim``, whose first step costs seconds of imports)."""
    import numpy as np
    from scipy.optimize import minimize

    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]

    def assign(theta):
        chunks = torch.split(torch.from_numpy(theta), sizes)
        with torch.no_grad():
            for p, c, shape in zip(params, chunks, shapes):
                p.copy_(c.reshape(shape))

    def value_and_grad(theta):
        assign(theta)
        loss = loss_fn()
        grads = torch.autograd.grad(loss, params)
        return loss.item(), torch.cat([g.reshape(-1) for g in grads]).numpy().astype(np.float64)

    x0 = torch.cat([p.detach().reshape(-1) for p in params]).numpy().astype(np.float64)
    res = minimize(value_and_grad, x0, jac=True, method="L-BFGS-B",
                   options={"maxiter": steps, "maxcor": 20, "ftol": 1e-15, "gtol": 1e-9})
    assign(res.x)


# ==================================================================================== chapter 9: β-VAE
#
# Derivation (one principal direction; the others decouple, see beta_vae_rates). Data x ~ N(0, λ),
# decoder x|z ~ N(w z, σ²), prior z ~ N(0, 1), encoder q(z|x) = N(a x, s). Minimise D + βR with
#   D = ½log 2πσ² + [λ(1 − wa)² + w² s] / (2σ²),   R = ½[s + a²λ − 1 − log s].
# ∂/∂s = 0 gives s = τ/(τ + w²) with τ = βσ²; ∂/∂a = 0 gives a = w/(τ + w²), so 1 − wa = s.
# Substituting, (2/β)(D + βR) = λ/(τ + w²) + log(τ + w²) + const, minimised over v = τ + w² ≥ τ at
# v = λ if λ > τ (w² = λ − τ), else at w = 0 (the unit is off). Hence
#   R = ½ log(λ/τ)₊,   MSE = E(x − x̂)² = min(λ, τ),   D = ½log 2πσ² + min(λ, βσ²)/(2σ²),
# i.e. Shannon's reverse water-filling with water level βσ². On the active branch
# D = const + λe^{−2R}/(2σ²), so dD/dR = −λe^{−2R}/σ² = −τ/σ² = −β: the slope of the R–D curve
# is exactly −β, and direction i switches off at β = λ_i/σ².


def _check_beta(beta) -> float:
    return check_positive_float("beta", beta)


def beta_vae_rates(eigvals, sigma: float, beta: float, latent_dim: int | None = None) -> torch.Tensor:
    r"""The optimal rate of each principal direction of a linear-Gaussian β-VAE, in nats:

    .. math:: R_i(\beta) = \tfrac12\log\!\Big(\frac{\lambda_i}{\beta\sigma^2}\Big)_{\!+}
              \quad (i \le d), \qquad R_i = 0 \quad (i > d).

    Setting: data :math:`x\sim\mathcal N(0,\Sigma)` with eigenvalues :math:`\lambda_1\ge\dots\ge\lambda_D`,
    prior :math:`\mathcal N(0, I_d)`, linear decoder :math:`\mathcal N(Wz+b, \sigma^2 I)` with *fixed*
    :math:`\sigma^2`, Gaussian encoder :math:`\mathcal N(Ax+c, S)`; the objective is
    :math:`\min D + \beta R` (the β-ELBO, Higgins et al. 2017, with the sign flipped).

    Why it decouples: dividing the objective by β gives :math:`R + D/\beta`, and :math:`D/\beta` is the
    distortion of the same decoder with noise variance :math:`\tau = \beta\sigma^2`, up to a constant. So
    the β-VAE optimum is the ELBO optimum (β = 1) of a linear VAE with noise τ. There the best encoder
    is the exact posterior, the ELBO equals :math:`\log p(x) = \log\mathcal N(x; b, WW^\top + \tau I)`,
    and its maximiser is probabilistic PCA with fixed noise (Tipping & Bishop 1999):
    :math:`W = U_d\,\mathrm{diag}(\lambda_i - \tau)_+^{1/2}`. Its columns are orthogonal, the posterior
    is diagonal, so a diagonal encoder loses nothing (Lucas et al. 2019, "Don't blame the ELBO!").
    Per direction the calculation in the source comment above gives the formula. Each direction
    switches off at :math:`\beta = \lambda_i/\sigma^2` (see :func:`switch_off_betas`).

    Returns the ``(D,)`` rates in the order of decreasing :math:`\lambda_i`.
    """
    lam = _eigvals(eigvals)
    tau = check_positive_float("sigma", sigma) ** 2 * _check_beta(beta)
    d = _latent_dim(latent_dim, lam.numel())
    rates = 0.5 * torch.log(lam / tau).clamp_min(0.0)
    rates[d:] = 0.0
    return rates


def beta_vae_rate(eigvals, sigma: float, beta: float, latent_dim: int | None = None) -> float:
    r"""Total optimal rate :math:`R(\beta) = \sum_i \tfrac12\log(\lambda_i/\beta\sigma^2)_+` (nats)."""
    return beta_vae_rates(eigvals, sigma, beta, latent_dim).sum().item()


def beta_vae_distortion(eigvals, sigma: float, beta: float, latent_dim: int | None = None) -> float:
    r"""Optimal distortion :math:`D(\beta) = -\mathbb E\log p(x|z)` in nats:

    .. math:: D(\beta) = \tfrac D2\log(2\pi\sigma^2) + \frac{1}{2\sigma^2}\sum_i \min(\lambda_i, \beta\sigma^2)

    (for :math:`i > d` the term is :math:`\lambda_i`: no latent unit is left for that direction).
    The sum is the expected squared error, which is reverse water-filling at level
    :math:`\beta\sigma^2` (Cover & Thomas, Thm. 10.3.3). On each piece with a fixed set of active
    directions, :math:`dD/dR = -\beta` exactly.
    """
    lam = _eigvals(eigvals)
    s2 = check_positive_float("sigma", sigma) ** 2
    tau = s2 * _check_beta(beta)
    d = _latent_dim(latent_dim, lam.numel())
    mse = torch.minimum(lam, torch.tensor(tau, dtype=DTYPE))
    mse[d:] = lam[d:]
    return (0.5 * lam.numel() * math.log(2 * math.pi * s2) + mse.sum() / (2 * s2)).item()


def beta_vae_rd_curve(eigvals, sigma: float, betas: Sequence[float],
                      latent_dim: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The rate–distortion curve traced by β: ``(R(β), D(β))`` for each β in ``betas`` (nats).
    Its slope :math:`dD/dR` is :math:`-\beta` wherever at least one direction is active."""
    betas = [_check_beta(b) for b in betas]
    if not betas:
        raise ValueError("betas must contain at least one value.")
    R = torch.tensor([beta_vae_rate(eigvals, sigma, b, latent_dim) for b in betas], dtype=DTYPE)
    D = torch.tensor([beta_vae_distortion(eigvals, sigma, b, latent_dim) for b in betas], dtype=DTYPE)
    return R, D


def switch_off_betas(eigvals, sigma: float) -> torch.Tensor:
    r"""The β at which each direction stops carrying information, :math:`\beta_i = \lambda_i/\sigma^2`
    (decreasing; Lucas et al. 2019 derive the same threshold for posterior collapse in the linear VAE).
    For :math:`\beta \ge \beta_i` the optimal encoder ignores direction i and its decoder column is 0."""
    return _eigvals(eigvals) / check_positive_float("sigma", sigma) ** 2


def beta_for_rate(eigvals, sigma: float, capacity: float, latent_dim: int | None = None) -> float:
    r"""The β whose optimum has total rate ``capacity`` = C nats: invert :func:`beta_vae_rate`.

    This is the capacity objective of Burgess et al. (2018), :math:`\mathbb E\log p(x|z) - \gamma|R - C|`,
    in the limit where the penalty holds R = C: by Lagrange duality its optimum is the β-VAE optimum at
    the multiplier :math:`\beta(C)`, with :math:`\beta(C) = -dD/dR` at R = C. With m active directions
    :math:`C = \tfrac12\sum_{i\le m}\log\lambda_i - \tfrac m2\log\tau`, so
    :math:`\log\tau = (\sum_{i\le m}\log\lambda_i - 2C)/m` and :math:`\beta = \tau/\sigma^2`, where m is the
    number of directions with :math:`\lambda_i > \tau`. ``capacity = 0`` returns the smallest β with
    zero rate, :math:`\lambda_1/\sigma^2`.
    """
    lam = _eigvals(eigvals)
    s2 = check_positive_float("sigma", sigma) ** 2
    C = check_nonnegative_float("capacity", capacity, "a rate in nats")
    d = _latent_dim(latent_dim, lam.numel())
    if C == 0:
        return lam[0].item() / s2
    log_lam = torch.log(lam[:d])
    for m in range(1, d + 1):
        log_tau = (log_lam[:m].sum() - 2 * C) / m
        lower = log_lam[m].item() if m < d else -math.inf
        if log_tau.item() >= lower:
            return math.exp(log_tau.item()) / s2
    raise AssertionError("unreachable: the last piece has no lower limit")


def capacity_switch_on(eigvals, latent_dim: int | None = None) -> torch.Tensor:
    r"""The capacity :math:`C_i` at which direction i switches on as C grows from 0 (nats):

    .. math:: C_i = \sum_{j < i} \tfrac12\log(\lambda_j/\lambda_i),

    the total rate at water level :math:`\tau = \lambda_i`. :math:`C_1 = 0`, and the :math:`C_i` increase,
    so a capacity schedule switches the units on one at a time, in the order of the data variances.
    ``inf`` for directions beyond ``latent_dim``. The noise σ does not enter."""
    lam = _eigvals(eigvals)
    d = _latent_dim(latent_dim, lam.numel())
    out = torch.full_like(lam, math.inf)
    for i in range(d):
        out[i] = 0.5 * torch.log(lam[:i] / lam[i]).sum()
    return out


class LinearBetaVAE(NamedTuple):
    r"""A linear VAE: decoder :math:`\mathcal N(Wz+b, \sigma^2 I)` (``decoder``, a
    :class:`~vae_core.exact.LinearGaussian`) and encoder :math:`\mathcal N(Ax+c,\ \mathrm{diag}\,e^{\text{logvar}})`."""
    decoder: LinearGaussian
    A: torch.Tensor
    c: torch.Tensor
    logvar: torch.Tensor


def optimal_linear_beta_vae(data_cov, sigma: float, beta: float, latent_dim: int | None = None) -> LinearBetaVAE:
    r"""The optimum in parameter form for data :math:`\mathcal N(0, \Sigma)` (``data_cov``):
    :math:`W = U_d\,\mathrm{diag}(\lambda_i-\beta\sigma^2)_+^{1/2}`, :math:`b = 0`, and the encoder is the
    exact posterior of the *tempered* model :class:`~vae_core.exact.LinearGaussian` ``(W, σ√β)``
    (see :func:`beta_vae_rates` for why). A collapsed unit has a zero column, so its posterior is the prior."""
    Sigma = _spd("data_cov", data_cov)
    s = check_positive_float("sigma", sigma)
    beta = _check_beta(beta)
    D = Sigma.shape[0]
    d = _latent_dim(latent_dim, D)
    lam, U = torch.linalg.eigh(Sigma)
    lam, U = lam.flip(0)[:d], U.flip(1)[:, :d]
    W = U * torch.sqrt((lam - beta * s ** 2).clamp_min(0.0))
    tempered = LinearGaussian(W, None, s * math.sqrt(beta))
    cov = torch.linalg.inv(tempered.posterior_precision())        # diagonal: W has orthogonal columns
    A = cov @ W.T / (beta * s ** 2)
    return LinearBetaVAE(LinearGaussian(W, None, s), A, torch.zeros(d, dtype=DTYPE), torch.log(torch.diagonal(cov)))


def linear_beta_vae_terms(data_cov, W, b, A, c, logvar, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per-unit rates and the distortion of *any* linear VAE, as exact expectations over
    :math:`x\sim\mathcal N(0,\Sigma)` (no formula from the optimum is used; differentiable):

    .. math::
        R_j &= \tfrac12\big[s_j + (A\Sigma A^\top)_{jj} + c_j^2 - 1 - \log s_j\big]
               \quad(\mathbb E_x\mathrm{KL}(q(z_j|x)\,\|\,\mathcal N(0,1))), \\
        D &= \tfrac D2\log 2\pi\sigma^2 + \frac{1}{2\sigma^2}\Big[\operatorname{tr}\big((I-WA)\Sigma(I-WA)^\top\big)
             + \lVert Wc+b\rVert^2 + \textstyle\sum_j s_j\lVert W_{:,j}\rVert^2\Big],

    with :math:`s = e^{\text{logvar}}`. Returns ``(rates (d,), distortion)``.
    """
    Sigma = data_cov.to(DTYPE)
    s2 = check_positive_float("sigma", sigma) ** 2
    D = Sigma.shape[0]
    s = logvar.exp()
    rates = 0.5 * (s + torch.diagonal(A @ Sigma @ A.T) + c ** 2 - 1 - logvar)
    E = torch.eye(D, dtype=DTYPE) - W @ A
    sq = torch.trace(E @ Sigma @ E.T) + ((W @ c + b) ** 2).sum() + (s * (W ** 2).sum(0)).sum()
    return rates, 0.5 * D * math.log(2 * math.pi * s2) + sq / (2 * s2)


class BetaVAEFit(NamedTuple):
    """A numerically optimised linear β-VAE: ``rate`` (total), ``unit_rates`` (per latent unit,
    sorted decreasing), ``distortion`` (nats), the final ``objective`` D + βR, the ``grad_norm`` at the
    end, and the parameters ``model``."""
    rate: float
    unit_rates: torch.Tensor
    distortion: float
    objective: float
    grad_norm: float
    model: LinearBetaVAE


def fit_linear_beta_vae(data_cov, sigma: float, beta: float, latent_dim: int | None = None,
                        steps: int = 100, seed: int = 0, encoder: str = "profiled") -> BetaVAEFit:
    r"""Minimise :math:`D + \beta R` of :func:`linear_beta_vae_terms` numerically, by L-BFGS (scipy's L-BFGS-B,
    autograd gradients) in float64 from a seeded random start. Knows nothing of the closed form: this is the
    independent check of :func:`beta_vae_rates`.

    ``encoder="free"`` optimises all parameters :math:`(W, b, A, c, \log s)` jointly. ``"profiled"``
    (default, faster and better conditioned) optimises the decoder :math:`(W, b)` only and sets the encoder
    to its exact optimum *given* the decoder: dividing by β, the encoder terms are the ELBO of the decoder
    with noise :math:`\beta\sigma^2`, whose best diagonal Gaussian is Part I's
    :meth:`~vae_core.exact.LinearGaussian.optimal_diagonal_q` (posterior mean, variances :math:`1/\Lambda_{jj}`).
    Convergence is slow only right at a switch-off point :math:`\beta = \lambda_i/\sigma^2`, where the
    objective is quartic in the vanishing column.
    """
    Sigma = _spd("data_cov", data_cov)
    s = check_positive_float("sigma", sigma)
    beta = _check_beta(beta)
    check_positive_int("steps", steps)
    if encoder not in ("profiled", "free"):
        raise ValueError(f"encoder must be 'profiled' or 'free', got {encoder!r}.")
    D = Sigma.shape[0]
    d = _latent_dim(latent_dim, D)
    g = torch.Generator().manual_seed(seed)
    scale = Sigma.diagonal().mean().sqrt().item()
    W = (0.5 * scale * torch.randn(D, d, generator=g, dtype=DTYPE)).requires_grad_(True)
    b = torch.zeros(D, dtype=DTYPE, requires_grad=True)
    free = [(0.5 / scale * torch.randn(d, D, generator=g, dtype=DTYPE)).requires_grad_(True),
            torch.zeros(d, dtype=DTYPE, requires_grad=True),
            (-0.5 * torch.ones(d, dtype=DTYPE)).requires_grad_(True)]
    params = [W, b] + (free if encoder == "free" else [])

    def encoder_params():
        if encoder == "free":
            return free
        tempered = LinearGaussian(W, b, s * math.sqrt(beta))
        Lam = tempered.posterior_precision()
        A = torch.linalg.solve(Lam, W.T) / (beta * s ** 2)      # posterior mean = A (x − b)
        return A, -A @ b, -torch.log(torch.diagonal(Lam))

    def objective():
        rates, dist = linear_beta_vae_terms(Sigma, W, b, *encoder_params(), s)
        return dist + beta * rates.sum()

    _minimize(objective, params, steps)
    loss = objective()
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        A, c, logvar = (t.detach() for t in encoder_params())
        rates, dist = linear_beta_vae_terms(Sigma, W, b, A, c, logvar, s)
    return BetaVAEFit(rates.sum().item(), torch.sort(rates, descending=True).values, dist.item(), loss.item(),
                      torch.cat([gr.reshape(-1) for gr in grads]).norm().item(),
                      LinearBetaVAE(LinearGaussian(W.detach(), b.detach(), s), A, c, logvar))


# ==================================================================================== chapter 11 (a): the gap law


def gaussian_weight_log_moment(post_mean, post_cov, q_mean, q_cov, order: float = 2.0) -> float:
    r""":math:`\log\mathbb E_q[r^n]` for the normalised importance weight :math:`r = \pi(z)/q(z)` between two
    Gaussians :math:`\pi = \mathcal N(m, P)` (the posterior) and :math:`q = \mathcal N(\mu, Q)` (the proposal).
    Since :math:`w = p(x,z)/q(z) = p(x)\,r`, the moments of :math:`w` are :math:`p(x)^n\,\mathbb E_q[r^n]`.

    With :math:`a = nP^{-1}`, :math:`b = (1-n)Q^{-1}`, :math:`M = a + b` and :math:`\delta = m - \mu`,
    completing the square in :math:`\int\pi^n q^{1-n}` gives

    .. math:: \log\mathbb E_q[r^n] = -\tfrac n2\log|P| - \tfrac{1-n}2\log|Q| - \tfrac12\log|M|
              - \tfrac12\,\delta^\top a M^{-1} b\,\delta ,

    finite **iff** :math:`M = nP^{-1} - (n-1)Q^{-1} \succ 0`, i.e. :math:`Q \succ \frac{n-1}{n}P`; otherwise
    ``inf`` is returned. For n = 2 this is :math:`|Q|\,|P|^{-1/2}|2Q-P|^{-1/2}\exp(\delta^\top(2Q-P)^{-1}\delta)`.
    It is :math:`(n-1)` times the Rényi divergence :math:`D_n(\pi\|q)` (Rényi 1961; Li & Turner 2016).
    """
    m, mu = _vector("post_mean", post_mean), _vector("q_mean", q_mean)
    P, Q = _spd("post_cov", post_cov), _spd("q_cov", q_cov)
    d = m.numel()
    if mu.numel() != d or P.shape[0] != d or Q.shape[0] != d:
        raise ValueError(f"dimensions disagree: post_mean {d}, q_mean {mu.numel()}, post_cov {P.shape[0]}, "
                         f"q_cov {Q.shape[0]}.")
    n = float(order)
    if not math.isfinite(n):
        raise ValueError(f"order must be a finite number, got {order!r}.")
    a = n * torch.linalg.inv(P)
    b = (1 - n) * torch.linalg.inv(Q)
    M = a + b
    M = 0.5 * (M + M.T)
    if torch.linalg.cholesky_ex(M).info.item() != 0:
        return math.inf
    delta = m - mu
    quad = delta @ a @ torch.linalg.solve(M, b @ delta)
    return (-0.5 * n * _logdet(P) - 0.5 * (1 - n) * _logdet(Q) - 0.5 * _logdet(M) - 0.5 * quad).item()


def weight_variance_is_finite(post_cov, q_cov) -> bool:
    r"""Whether :math:`\mathrm{Var}_q[w] < \infty` for a Gaussian posterior (covariance P, precision Λ) and a
    Gaussian proposal (covariance Q): iff :math:`2Q - P \succ 0`, equivalently :math:`2\Lambda - Q^{-1}\succ 0`.
    The proposal must be wider than *half* the posterior in every direction. The ELBO-optimal diagonal
    q (precision :math:`\mathrm{diag}\,\Lambda`) fails this in 2-D as soon as the posterior correlation
    exceeds 1/2 in absolute value: :math:`\det(2\Lambda - \mathrm{diag}\Lambda) = \Lambda_{11}\Lambda_{22}
    - 4\Lambda_{12}^2 = \Lambda_{11}\Lambda_{22}(1 - 4\rho^2)`."""
    P, Q = _spd("post_cov", post_cov), _spd("q_cov", q_cov)
    if P.shape != Q.shape:
        raise ValueError(f"post_cov and q_cov must have the same shape, got {tuple(P.shape)} and {tuple(Q.shape)}.")
    M = 2 * Q - P
    return bool(torch.linalg.cholesky_ex(0.5 * (M + M.T)).info.item() == 0)


def importance_chi2(post_mean, post_cov, q_mean, q_cov) -> float:
    r""":math:`\chi^2(\pi\,\|\,q) = \mathbb E_q[r^2] - 1 = \mathrm{Var}_q[w]/p(x)^2` (``inf`` when the
    weight variance is infinite; see :func:`gaussian_weight_log_moment`)."""
    lm = gaussian_weight_log_moment(post_mean, post_cov, q_mean, q_cov, 2.0)
    return math.inf if math.isinf(lm) else math.expm1(lm)


def iwae_gap_asymptotic(post_mean, post_cov, q_mean, q_cov, k: int, order: int = 1) -> float:
    r"""The large-k gap :math:`\log p(x) - \mathcal L_k` of the IWAE bound (Burda et al. 2016) with
    proposal q.

    Delta method: :math:`\hat p_k = p(x)(1+\varepsilon)` with :math:`\varepsilon = \frac1k\sum_i y_i`,
    :math:`y = r - 1`, :math:`\mathbb E y = 0`, :math:`V = \mathbb E y^2 = \chi^2(\pi\|q)`, :math:`\mu_3 = \mathbb E y^3`.
    Expanding :math:`\mathbb E\log(1+\varepsilon) = -\tfrac12\mathbb E\varepsilon^2 + \tfrac13\mathbb E\varepsilon^3
    - \tfrac14\mathbb E\varepsilon^4 + \dots` with :math:`\mathbb E\varepsilon^2 = V/k`,
    :math:`\mathbb E\varepsilon^3 = \mu_3/k^2`, :math:`\mathbb E\varepsilon^4 = 3V^2/k^2 + O(k^{-3})`:

    .. math:: \log p(x) - \mathcal L_k = \frac{V}{2k} - \frac{1}{k^2}\Big(\frac{\mu_3}{3} - \frac{3V^2}{4}\Big)
              + O(k^{-3}), \qquad V = \frac{\mathrm{Var}_q[w]}{p(x)^2}.

    ``order=1`` returns the first term (Maddison et al. 2017, Prop. 1; Domke & Sheldon 2018;
    Rainforth et al. 2018); ``order=2`` adds the :math:`k^{-2}` term, which needs :math:`\mathbb E r^3 < \infty`
    (:math:`Q \succ \tfrac23 P`). The expansion needs the moments it uses to be finite: with infinite weight
    variance (:math:`2Q - P \not\succ 0`) the gap falls more slowly than 1/k and ``inf`` is returned.
    """
    check_positive_int("k", k)
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}.")
    V = importance_chi2(post_mean, post_cov, q_mean, q_cov)
    if math.isinf(V):
        return math.inf
    gap = V / (2 * k)
    if order == 2:
        lm3 = gaussian_weight_log_moment(post_mean, post_cov, q_mean, q_cov, 3.0)
        if math.isinf(lm3):
            return math.inf
        mu3 = math.exp(lm3) - 3 * (V + 1) + 2      # E(r−1)³ = E r³ − 3E r² + 3E r − 1, E r = 1
        gap -= (mu3 / 3 - 0.75 * V ** 2) / k ** 2
    return gap


def iwae_log_weights(model: LinearGaussian, x, q_mean, q_cov, k: int, n_repeats: int,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Log importance weights :math:`\log w = \log p(x, z) - \log q(z)` with :math:`z\sim q = \mathcal N(\mu, Q)`
    (full covariance) for one data point ``x`` of a :class:`~vae_core.exact.LinearGaussian`: shape
    ``(n_repeats, k)``. ``logsumexp(·, -1) − log k`` is one draw of the IWAE estimate :math:`\log\hat p_k`."""
    if not isinstance(model, LinearGaussian):
        raise TypeError(f"model must be a vae_core.exact.LinearGaussian, got {type(model).__name__}.")
    x = _vector("x", x, model.D)
    mu = _vector("q_mean", q_mean, model.d)
    Q = _spd("q_cov", q_cov)
    if Q.shape[0] != model.d:
        raise ValueError(f"q_cov must be ({model.d}, {model.d}), got {tuple(Q.shape)}.")
    check_positive_int("k", k)
    check_positive_int("n_repeats", n_repeats)
    L = torch.linalg.cholesky(Q)
    eps = torch.randn(n_repeats, k, model.d, generator=generator, dtype=DTYPE)
    z = mu + eps @ L.T
    log_q = -0.5 * (model.d * LOG_2PI + _logdet(Q) + (eps ** 2).sum(-1))
    return model.log_joint(x, z) - log_q


def iwae_gap_samples(model: LinearGaussian, x, q_mean, q_cov, k: int, n_repeats: int,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    r"""``n_repeats`` i.i.d. draws of :math:`\log p(x) - \log\hat p_k` (exact :math:`\log p(x)` from the model);
    their mean estimates the gap :math:`\log p(x) - \mathcal L_k` and their spread gives its standard error."""
    lw = iwae_log_weights(model, x, q_mean, q_cov, k, n_repeats, generator)
    log_px = model.log_evidence(_vector("x", x, model.D))
    return log_px - (torch.logsumexp(lw, -1) - math.log(k))


# ==================================================================================== chapter 11 (b): the SNR law


class RainforthToy(NamedTuple):
    r"""Rainforth et al.'s (2018, §4 / their Gaussian experiment) model: :math:`z\sim\mathcal N(\mu, I_D)`,
    :math:`x|z\sim\mathcal N(z, I_D)`, encoder :math:`q(z|x) = \mathcal N(Ax + b, \tfrac23 I_D)`.
    ``data`` (N, D) drawn with :math:`\mu_{\text{true}}\sim\mathcal N(0, I)`; the optimum is
    :math:`\mu^* = \bar x`, :math:`A^* = I/2`, :math:`b^* = \mu^*/2` (the exact posterior is
    :math:`\mathcal N((\mu + x)/2, \tfrac12 I)`, so the fixed variance 2/3 is deliberately a bit too wide);
    ``mu``, ``A``, ``b`` are the optimum plus :math:`\mathcal N(0, \text{perturbation}^2)` noise."""
    data: torch.Tensor
    mu: torch.Tensor
    A: torch.Tensor
    b: torch.Tensor
    q_var: float


def rainforth_toy(D: int = 20, n_points: int = 1024, perturbation: float = 0.01, seed: int = 0) -> RainforthToy:
    r"""Build the toy of :class:`RainforthToy` (D = 20, N = 1024 and perturbation 0.01 as in the paper's
    setting, as reproduced in Liévin et al.'s public code ``vlievin/ovis``, ``ovis/models/gaussian_toy.py``
    and ``asymptotic_variance.py``)."""
    check_positive_int("D", D)
    check_positive_int("n_points", n_points)
    perturbation = check_nonnegative_float("perturbation", perturbation, "a noise scale")
    g = torch.Generator().manual_seed(seed)
    mu_true = torch.randn(D, generator=g, dtype=DTYPE)
    z = mu_true + torch.randn(n_points, D, generator=g, dtype=DTYPE)
    data = z + torch.randn(n_points, D, generator=g, dtype=DTYPE)
    mu_star = data.mean(0)
    noise = lambda *shape: perturbation * torch.randn(*shape, generator=g, dtype=DTYPE)  # noqa: E731
    return RainforthToy(data, mu_star + noise(D), 0.5 * torch.eye(D, dtype=DTYPE) + noise(D, D),
                        0.5 * mu_star + noise(D), 2.0 / 3.0)


def rainforth_gradients(toy: RainforthToy, x, k: int, n_repeats: int, generator: torch.Generator | None = None,
                        chunk: int = 1 << 22) -> dict[str, torch.Tensor]:
    r"""``n_repeats`` independent draws of three single-datapoint gradient estimators of the IWAE bound
    :math:`\mathcal L_k(x)`, each of shape ``(n_repeats, D)``, in closed form (no autograd; the tests check
    them against autograd):

    * ``"iwae_decoder"`` :math:`= \sum_i \tilde w_i\,\nabla_\mu\log p(x,z_i) = \sum_i\tilde w_i(z_i - \mu)`
      (generative parameter θ = μ);
    * ``"iwae_encoder"``: the reparameterised gradient w.r.t. b,
      :math:`\sum_i \tilde w_i\,\frac{d}{db}\log w_i = \sum_i\tilde w_i\,(x + \mu - 2z_i)` (with
      :math:`z_i = Ax+b+\sqrt{2/3}\,\epsilon_i`, the total derivative of :math:`\log q(z_i)` is 0);
    * ``"dreg_encoder"``: DReG (Tucker et al. 2018/ICLR 2019),
      :math:`\sum_i \tilde w_i^2\,\frac{\partial\log w_i}{\partial z_i}\frac{\partial z_i}{\partial b}
      = \sum_i\tilde w_i^2\big(x+\mu-2z_i + (z_i - Ax - b)/\tfrac23\big)`, unbiased for the same gradient.

    :math:`\tilde w` are the normalised weights. The gradient w.r.t. :math:`A_{jl}` is the b-gradient
    times :math:`x_l`, so for one data point it has the same SNR as :math:`b_j`.
    """
    if not isinstance(toy, RainforthToy):
        raise TypeError(f"toy must be a RainforthToy (see rainforth_toy), got {type(toy).__name__}.")
    D = toy.mu.numel()
    x = _vector("x", x, D)
    check_positive_int("k", k)
    check_positive_int("n_repeats", n_repeats)
    s2 = toy.q_var
    m = toy.A @ x + toy.b
    out = {key: [] for key in ("iwae_decoder", "iwae_encoder", "dreg_encoder")}
    step = max(1, chunk // (k * D))
    for start in range(0, n_repeats, step):
        r = min(step, n_repeats - start)
        eps = torch.randn(r, k, D, generator=generator, dtype=DTYPE)
        z = m + math.sqrt(s2) * eps
        log_w = -0.5 * ((z - toy.mu) ** 2).sum(-1) - 0.5 * ((x - z) ** 2).sum(-1) + 0.5 * (eps ** 2).sum(-1)
        wt = torch.softmax(log_w, -1).unsqueeze(-1)                    # (r, k, 1); constants cancel
        dlogp_dz = x + toy.mu - 2 * z
        out["iwae_decoder"].append((wt * (z - toy.mu)).sum(1))
        out["iwae_encoder"].append((wt * dlogp_dz).sum(1))
        out["dreg_encoder"].append((wt ** 2 * (dlogp_dz + math.sqrt(s2) * eps / s2)).sum(1))
    return {key: torch.cat(v) for key, v in out.items()}


class SNRCurve(NamedTuple):
    r"""SNR against k for each estimator: ``snr[name]`` has one value per k (the mean over the D
    coordinates of :math:`|\mathbb E g_j|/\mathrm{sd}(g_j)`), ``slope[name]`` is the least-squares slope of
    log SNR on log k, and ``slope_se[name]`` its standard error over ``n_groups`` independent groups of
    repeats."""
    ks: list
    snr: dict
    slope: dict
    slope_se: dict


def _slope(ks, y) -> float:
    lx = torch.log(torch.tensor(ks, dtype=DTYPE))
    ly = torch.log(y)
    lx = lx - lx.mean()
    return ((lx * (ly - ly.mean())).sum() / (lx ** 2).sum()).item()


def snr_over_k(toy: RainforthToy, ks: Sequence[int] = (30, 100, 300), n_repeats: int = 400,
               n_groups: int = 4, point: int = 0, seed: int = 0, encoder_mean: str = "dreg") -> SNRCurve:
    r"""The SNR law of Rainforth et al. (2018, Thm. 1): for the IWAE bound with k samples,
    :math:`\mathrm{SNR}_\theta = O(\sqrt k)` for the generative network and
    :math:`\mathrm{SNR}_\phi = O(1/\sqrt k)` for the inference network, because
    :math:`\nabla_\phi\mathcal L_k = O(1/k)` (the limit :math:`\log p(x)` does not depend on φ) while the
    estimator's standard deviation is :math:`O(1/\sqrt k)`. DReG keeps the :math:`O(1/k)` mean but has
    standard deviation :math:`O(k^{-3/2})`, so its SNR grows like :math:`\sqrt k` (Tucker et al. 2018).

    Measured on data point ``point`` of ``toy`` with ``n_repeats`` draws per group, ``n_groups`` groups.
    The default k start at 30 because DReG reaches its asymptotic regime late: on the default toy its
    fitted slope is about 0.29 over k = 1…100, 0.42 over 10…100 and 0.45–0.49 over 30…300, while the two
    IWAE slopes are within 0.02 of ±½ already from k = 10.

    ``encoder_mean="dreg"`` (default) estimates the *mean* of the IWAE encoder gradient by the DReG
    draws' mean: both estimators are unbiased for the same :math:`\nabla_b\mathcal L_k` (Tucker et al.;
    checked by a z-test in the tests), and DReG's mean is ~100× more precise, so the IWAE encoder SNR
    (:math:`\approx 0.01` at k = 100) is not swamped by the estimator's own noise floor
    :math:`\approx 0.8/\sqrt R` (the trap of the chapter's MNIST measurement). ``"own"`` uses the IWAE
    draws' own mean (needs :math:`R \gg 1/\mathrm{SNR}^2`).
    """
    if encoder_mean not in ("dreg", "own"):
        raise ValueError(f"encoder_mean must be 'dreg' or 'own', got {encoder_mean!r}.")
    ks = [check_positive_int("k", k) for k in ks]
    if len(ks) < 2:
        raise ValueError("need at least two values of k to fit a slope.")
    check_positive_int("n_repeats", n_repeats)
    check_positive_int("n_groups", n_groups)
    if not 0 <= point < toy.data.shape[0]:
        raise ValueError(f"point must index a row of toy.data (0..{toy.data.shape[0] - 1}), got {point}.")
    x = toy.data[point]
    g = torch.Generator().manual_seed(seed)
    names = ("iwae_decoder", "iwae_encoder", "dreg_encoder")
    per_group = {n: torch.zeros(n_groups, len(ks), dtype=DTYPE) for n in names}
    pooled = {n: torch.zeros(len(ks), dtype=DTYPE) for n in names}
    for j, k in enumerate(ks):
        grads = rainforth_gradients(toy, x, k, n_repeats * n_groups, generator=g)
        for n in names:
            mean_src = grads["dreg_encoder"] if (n == "iwae_encoder" and encoder_mean == "dreg") else grads[n]
            G, M = grads[n].reshape(n_groups, n_repeats, -1), mean_src.reshape(n_groups, n_repeats, -1)
            per_group[n][:, j] = (M.mean(1).abs() / G.std(1)).mean(-1)
            pooled[n][j] = (mean_src.mean(0).abs() / grads[n].std(0)).mean()
    slope = {n: _slope(ks, pooled[n]) for n in names}
    group_slopes = {n: torch.tensor([_slope(ks, per_group[n][i]) for i in range(n_groups)]) for n in names}
    se = {n: (group_slopes[n].std() / math.sqrt(n_groups)).item() if n_groups > 1 else math.nan for n in names}
    return SNRCurve(ks, {n: pooled[n].tolist() for n in names}, slope, se)


# ==================================================================================== chapter 15: two layers


def diagonal_gap(precision) -> float:
    r""":math:`\tfrac12\big(\sum_j\log M_{jj} - \log\det M\big) \ge 0` for a precision matrix M: the smallest
    :math:`\mathrm{KL}(q\,\|\,\mathcal N(m, M^{-1}))` over diagonal Gaussians q (the optimum has variances
    :math:`1/M_{jj}`). Zero iff M is diagonal (Hadamard's inequality)."""
    M = _spd("precision", precision)
    return (0.5 * (torch.log(torch.diagonal(M)).sum() - _logdet(M))).item()


def _gauss_expect_sq(a: torch.Tensor, Mmat: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    r""":math:`\mathbb E\lVert a - Mz\rVert^2` for :math:`z\sim\mathcal N(\text{mean}, \text{cov})`."""
    r = a - Mmat @ mean
    return (r ** 2).sum() + torch.trace(Mmat @ cov @ Mmat.T)


class TwoLayerLinearGaussian:
    r"""A two-layer linear-Gaussian hierarchy (a linear Ladder VAE's generative model):

    .. math:: z_2\sim\mathcal N(0, I_{d_2}), \quad z_1|z_2\sim\mathcal N(Bz_2, s_1^2 I_{d_1}), \quad
              x|z_1\sim\mathcal N(Wz_1, \sigma^2 I_D).

    **Evidence.** :math:`x = [WB,\ s_1W]\,[z_2;\epsilon_1] + \sigma\epsilon`, so
    :math:`p(x) = \mathcal N(0, WBB^\top W^\top + s_1^2WW^\top + \sigma^2 I)`, which is a one-layer
    :class:`~vae_core.exact.LinearGaussian` with loading :math:`[WB, s_1W]` (used for ``log_evidence``).

    **Posterior.** Over :math:`z = (z_1, z_2)` it is Gaussian with precision blocks
    :math:`\Lambda_{11} = I/s_1^2 + W^\top W/\sigma^2` (the precision of :math:`p(z_1|z_2,x)`),
    :math:`\Lambda_{12} = -B/s_1^2`, :math:`\Lambda_{22} = I + B^\top B/s_1^2` (the precision of
    :math:`p(z_2|z_1,x) = p(z_2|z_1)`: z2 → z1 → x is a Markov chain), and mean :math:`\Lambda^{-1}[W^\top x/\sigma^2; 0]`.
    The marginal precisions are the Schur complements :math:`S_1 = \Lambda_{11}-\Lambda_{12}\Lambda_{22}^{-1}\Lambda_{21}`
    (of :math:`p(z_1|x)`) and :math:`S_2 = \Lambda_{22}-\Lambda_{21}\Lambda_{11}^{-1}\Lambda_{12}` (of :math:`p(z_2|x)`).

    **Inference families** (means linear in x and in the layer above/below, as the exact posterior's are):

    * *top-down* (Ladder VAE, Sønderby et al. 2016): :math:`q(z_2|x)\,q(z_1|z_2,x)`;
    * *bottom-up* (the stochastic hierarchy of Sønderby et al.'s baseline, their Fig. 1a):
      :math:`q(z_1|x)\,q(z_2|z_1)`;
    * *layer-wise mean field* (one deterministic upward pass, :math:`q(z_1|x)\,q(z_2|x)`).

    With **full** covariances the top-down *and* the bottom-up families contain the exact posterior
    (:math:`p(z_1|x)\,p(z_2|z_1)` is the bottom-up factorisation, by the Markov property), so both
    close the gap; the mean field keeps a gap :math:`I_p(z_1;z_2|x) = \tfrac12\log\frac{|\Lambda_{11}||\Lambda_{22}|}{|\Lambda|}`.
    With **diagonal** conditionals (what neural encoders use) each family must match *its* conditionals'
    precisions with a diagonal; minimising the KL over the linear maps first (which makes them the exact
    regressions) leaves (see :meth:`best_gap`, with :func:`diagonal_gap` = H):

    .. math:: \text{gap}_{\text{TD}} = H(\Lambda_{11}) + H(S_2), \qquad
              \text{gap}_{\text{BU}} = H(S_1) + H(\Lambda_{22}), \qquad
              \text{gap}_{\text{MF}} = H(\Lambda).

    :math:`\Lambda_{11}` depends only on the likelihood (W) and :math:`\Lambda_{22}` only on the prior (B),
    while :math:`S_1^{-1} = \mathrm{Cov}(z_1|x)` mixes in the top layer's correlations :math:`BB^\top`. So if
    :math:`W^\top W = cI` and :math:`B^\top B` is diagonal, the top-down diagonal family is exact but the
    bottom-up one is not, unless :math:`BB^\top` is diagonal too (columns of B along coordinate axes, so
    that the posterior factorises over coordinates). For a generic model both keep a gap.
    """

    def __init__(self, W, B, s1: float, sigma: float):
        self.W = _matrix("W", W)
        self.B = _matrix("B", B)
        self.D, self.d1 = self.W.shape
        if self.B.shape[0] != self.d1:
            raise ValueError(f"B must have d1={self.d1} rows (z1 = B z2 + noise), got shape {tuple(self.B.shape)}.")
        self.d2 = self.B.shape[1]
        self.s1 = check_positive_float("s1", s1)
        self.sigma = check_positive_float("sigma", sigma)

    def __repr__(self) -> str:
        return f"TwoLayerLinearGaussian(D={self.D}, d1={self.d1}, d2={self.d2}, s1={self.s1:g}, sigma={self.sigma:g})"

    @classmethod
    def random(cls, D: int = 8, d1: int = 4, d2: int = 2, s1: float = 0.5, sigma: float = 1.0,
               seed: int = 0, structured: bool = False, axis_aligned_B: bool = False) -> "TwoLayerLinearGaussian":
        r"""A seeded model. ``structured=True`` gives W orthonormal columns (:math:`W^\top W = I`) and B orthogonal
        columns of norms 2 → 1 in a random orientation: the top-down diagonal family is then exact, the bottom-up
        one is not (gap 0.26 nats for the defaults and seed 0).
        ``axis_aligned_B=True`` (with ``structured``) puts B's columns on coordinate axes, so that
        :math:`BB^\top` is diagonal and the bottom-up diagonal family is exact too."""
        for n, v in (("D", D), ("d1", d1), ("d2", d2)):
            check_positive_int(n, v)
        if structured and not (d2 <= d1 <= D):
            raise ValueError(f"a structured model needs d2 <= d1 <= D, got d2={d2}, d1={d1}, D={D}.")
        g = torch.Generator().manual_seed(seed)
        if not structured:
            return cls(torch.randn(D, d1, generator=g, dtype=DTYPE), torch.randn(d1, d2, generator=g, dtype=DTYPE),
                       s1, sigma)
        Qw, _ = torch.linalg.qr(torch.randn(D, d1, generator=g, dtype=DTYPE))
        norms = torch.linspace(2.0, 1.0, d2, dtype=DTYPE)
        if axis_aligned_B:
            Qb = torch.eye(d1, d2, dtype=DTYPE)
        else:
            Qb, _ = torch.linalg.qr(torch.randn(d1, d2, generator=g, dtype=DTYPE))
        return cls(Qw, Qb * norms, s1, sigma)

    # ------------------------------------------------------------------ the generative model
    def collapsed(self) -> LinearGaussian:
        r"""The evidence as a one-layer :class:`~vae_core.exact.LinearGaussian` with loading :math:`[WB, s_1W]`."""
        return LinearGaussian(torch.cat([self.W @ self.B, self.s1 * self.W], 1), None, self.sigma)

    def log_evidence(self, x) -> float:
        r"""Exact :math:`\log p(x)` for one data point ``x`` of shape ``(D,)``."""
        return self.collapsed().log_evidence(_vector("x", x, self.D)).item()

    def log_joint(self, x, z1, z2) -> torch.Tensor:
        r""":math:`\log p(z_2) + \log p(z_1|z_2) + \log p(x|z_1)`; ``z1`` ``(..., d1)``, ``z2`` ``(..., d2)``."""
        x = _vector("x", x, self.D)
        lp2 = -0.5 * (self.d2 * LOG_2PI + (z2 ** 2).sum(-1))
        lp1 = -0.5 * (self.d1 * (LOG_2PI + 2 * math.log(self.s1)) + ((z1 - z2 @ self.B.T) ** 2).sum(-1) / self.s1 ** 2)
        lpx = -0.5 * (self.D * (LOG_2PI + 2 * math.log(self.sigma))
                      + ((x - z1 @ self.W.T) ** 2).sum(-1) / self.sigma ** 2)
        return lp2 + lp1 + lpx

    def posterior_precision(self) -> torch.Tensor:
        r"""The joint posterior precision :math:`\Lambda` over :math:`(z_1, z_2)`, blocks as in the class docstring."""
        d1, d2 = self.d1, self.d2
        L = torch.zeros(d1 + d2, d1 + d2, dtype=DTYPE)
        L[:d1, :d1] = torch.eye(d1, dtype=DTYPE) / self.s1 ** 2 + self.W.T @ self.W / self.sigma ** 2
        L[:d1, d1:] = -self.B / self.s1 ** 2
        L[d1:, :d1] = -self.B.T / self.s1 ** 2
        L[d1:, d1:] = torch.eye(d2, dtype=DTYPE) + self.B.T @ self.B / self.s1 ** 2
        return L

    def posterior(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Exact posterior over :math:`(z_1, z_2)`: ``(mean (d1+d2,), cov (d1+d2, d1+d2))``."""
        x = _vector("x", x, self.D)
        h = torch.cat([self.W.T @ x / self.sigma ** 2, torch.zeros(self.d2, dtype=DTYPE)])
        cov = torch.linalg.inv(self.posterior_precision())
        cov = 0.5 * (cov + cov.T)
        return cov @ h, cov

    # ------------------------------------------------------------------ the ELBO of a Gaussian q
    def elbo(self, x, mean, cov) -> torch.Tensor:
        r"""Closed-form ELBO of a joint Gaussian :math:`q(z_1, z_2) = \mathcal N(\text{mean}, \text{cov})`, written
        term by term (no posterior formula is used; differentiable):

        .. math:: \mathbb E_q\log p(z_2) + \mathbb E_q\log p(z_1|z_2) + \mathbb E_q\log p(x|z_1) + H(q),

        each a Gaussian expectation
        :math:`\mathbb E\lVert a - Mz\rVert^2 = \lVert a - M\bar z\rVert^2 + \operatorname{tr}(M\,\mathrm{cov}\,M^\top)`.
        """
        x = _vector("x", x, self.D)
        d1, d2, n = self.d1, self.d2, self.d1 + self.d2
        sel1 = torch.cat([torch.eye(d1, dtype=DTYPE), torch.zeros(d1, d2, dtype=DTYPE)], 1)
        sel2 = torch.cat([torch.zeros(d2, d1, dtype=DTYPE), torch.eye(d2, dtype=DTYPE)], 1)
        lp2 = -0.5 * (d2 * LOG_2PI + _gauss_expect_sq(torch.zeros(d2, dtype=DTYPE), sel2, mean, cov))
        lp1 = -0.5 * (d1 * (LOG_2PI + 2 * math.log(self.s1))
                      + _gauss_expect_sq(torch.zeros(d1, dtype=DTYPE), sel1 - self.B @ sel2, mean, cov) / self.s1 ** 2)
        lpx = -0.5 * (self.D * (LOG_2PI + 2 * math.log(self.sigma))
                      + _gauss_expect_sq(x, self.W @ sel1, mean, cov) / self.sigma ** 2)
        entropy = 0.5 * (n * (1 + LOG_2PI) + _logdet(cov))
        return lp2 + lp1 + lpx + entropy

    # ------------------------------------------------------------------ best gap of each family
    def best_gap(self, family: str, diagonal: bool = True) -> float:
        r"""The smallest :math:`\log p(x) - \mathrm{ELBO}` over an inference family (the same for every x:
        the optimal means are the exact conditional means, which are linear). ``family`` is ``"top-down"``,
        ``"bottom-up"`` or ``"mean-field"``; ``diagonal`` restricts each conditional Gaussian to a diagonal
        covariance (else full).

        Derivation (bottom-up; the others alike). Write :math:`z_1 = m_1 + T_1^{1/2}\epsilon_1`,
        :math:`z_2 = m_2 + H(z_1 - m_1) + T_2^{1/2}\epsilon_2`. Then
        :math:`2\,\mathrm{KL}(q\|p) = \operatorname{tr}(\Lambda_{11}T_1) + 2\operatorname{tr}(\Lambda_{12}HT_1)
        + \operatorname{tr}(\Lambda_{22}(HT_1H^\top + T_2)) - \log|T_1||T_2| + \text{const}`.
        :math:`\partial/\partial H = 0` gives :math:`H = -\Lambda_{22}^{-1}\Lambda_{21}` (the exact regression), leaving
        :math:`\operatorname{tr}(S_1T_1) + \operatorname{tr}(\Lambda_{22}T_2) - \log|T_1||T_2|`: diagonal optimum
        :math:`T_1 = 1/\mathrm{diag}\,S_1`, :math:`T_2 = 1/\mathrm{diag}\,\Lambda_{22}`, and with
        :math:`|\Lambda| = |\Lambda_{22}||S_1|` the gap is :math:`H(S_1) + H(\Lambda_{22})`."""
        if family not in ("top-down", "bottom-up", "mean-field"):
            raise ValueError(f"family must be 'top-down', 'bottom-up' or 'mean-field', got {family!r}.")
        L = self.posterior_precision()
        d1 = self.d1
        L11, L12, L22 = L[:d1, :d1], L[:d1, d1:], L[d1:, d1:]
        if family == "mean-field":
            if diagonal:
                return diagonal_gap(L)
            return (0.5 * (_logdet(L11) + _logdet(L22) - _logdet(L))).item()
        if not diagonal:
            return 0.0
        if family == "top-down":
            S2 = L22 - L12.T @ torch.linalg.solve(L11, L12)
            return diagonal_gap(L11) + diagonal_gap(0.5 * (S2 + S2.T))
        S1 = L11 - L12 @ torch.linalg.solve(L22, L12.T)
        return diagonal_gap(0.5 * (S1 + S1.T)) + diagonal_gap(L22)

    def ladder_posterior(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The Ladder VAE's inference (Sønderby et al. 2016) in the linear case, as a joint Gaussian
        over :math:`(z_1, z_2)`; diagonal merges, returned as ``(mean, cov)``.

        Each layer merges a bottom-up Gaussian message with the top-down prior by adding *precisions*:
        :math:`\sigma_q^{-2} = \hat\sigma^{-2} + \sigma_p^{-2}`,
        :math:`\mu_q = (\hat\mu\hat\sigma^{-2} + \mu_p\sigma_p^{-2})/\sigma_q^{-2}`
        (whatever symbols a text prints for it, the precisions are what add). In a linear-Gaussian model
        the exact messages are the likelihoods of each layer: for z1, :math:`p(x|z_1)` has precision
        :math:`W^\top W/\sigma^2` and mean :math:`(W^\top W)^{-1}W^\top x`; for z2, :math:`p(x|z_2)` has precision
        :math:`(WB)^\top C_1^{-1}WB` with :math:`C_1 = s_1^2WW^\top + \sigma^2I`. The diagonal merge keeps only the
        diagonal of each message precision: exact when those precisions (and :math:`\Lambda_{11}`) are diagonal.
        The top-down prior of z1 is :math:`\mathcal N(Bz_2, s_1^2 I)`, so the z1 mean is linear in the sampled z2.
        """
        x = _vector("x", x, self.D)
        d1, d2 = self.d1, self.d2
        # z2: bottom-up message p(x | z2) = N(x; WB z2, C1), merged with the prior N(0, I)
        WB = self.W @ self.B
        C1 = self.s1 ** 2 * self.W @ self.W.T + self.sigma ** 2 * torch.eye(self.D, dtype=DTYPE)
        J2 = WB.T @ torch.linalg.solve(C1, WB)
        h2 = WB.T @ torch.linalg.solve(C1, x)
        prec2 = torch.diagonal(J2) + 1.0                   # diagonal merge with N(0, I)
        mean2 = h2 / prec2                                 # = diag(J2)·mu_hat2 / prec2, mu_hat2 = h2 / diag(J2)
        # z1 | z2: bottom-up message p(x | z1) (precision W^T W / σ², mean (W^T W)^{-1} W^T x), prior N(B z2, s1² I)
        J1 = torch.diagonal(self.W.T @ self.W) / self.sigma ** 2
        mu_hat1 = (self.W.T @ x) / self.sigma ** 2 / J1
        prec1 = J1 + 1.0 / self.s1 ** 2
        e = J1 * mu_hat1 / prec1                           # z1 mean = e + E z2
        E = (self.B / self.s1 ** 2) / prec1[:, None]
        v1, v2 = 1.0 / prec1, 1.0 / prec2
        mean = torch.cat([e + E @ mean2, mean2])
        cov = torch.zeros(d1 + d2, d1 + d2, dtype=DTYPE)
        cov[d1:, d1:] = torch.diag(v2)
        cov[:d1, d1:] = E * v2
        cov[d1:, :d1] = (E * v2).T
        cov[:d1, :d1] = torch.diag(v1) + E @ torch.diag(v2) @ E.T
        return mean, cov


class HierarchicalFit(NamedTuple):
    """A numerically optimised q of one family: its ``elbo``, the ``gap`` to the exact log p(x), and the
    joint ``mean``/``cov`` it found."""
    elbo: float
    gap: float
    mean: torch.Tensor
    cov: torch.Tensor


def fit_hierarchical_q(model: TwoLayerLinearGaussian, x, family: str, diagonal: bool = True, steps: int = 500,
                       seed: int = 0) -> HierarchicalFit:
    r"""Maximise :meth:`TwoLayerLinearGaussian.elbo` over one inference family for one data point, by L-BFGS
    (scipy, autograd gradients) in float64 from a seeded random start (the independent check of
    :meth:`~TwoLayerLinearGaussian.best_gap`).

    Parameterisation (``first`` is the layer sampled first: z2 for top-down, z1 for bottom-up):
    :math:`z_{\text{first}} = m_f + L_f\epsilon_f`, :math:`z_{\text{second}} = m_s + H z_{\text{first}} + L_s\epsilon_s`
    with :math:`L` diagonal (``diagonal=True``) or lower-triangular; the mean-field family has H = 0.
    """
    if not isinstance(model, TwoLayerLinearGaussian):
        raise TypeError(f"model must be a TwoLayerLinearGaussian, got {type(model).__name__}.")
    if family not in ("top-down", "bottom-up", "mean-field"):
        raise ValueError(f"family must be 'top-down', 'bottom-up' or 'mean-field', got {family!r}.")
    x = _vector("x", x, model.D)
    check_positive_int("steps", steps)
    d1, d2 = model.d1, model.d2
    nf, ns = (d2, d1) if family == "top-down" else (d1, d2)
    g = torch.Generator().manual_seed(seed)
    p = {"mf": torch.randn(nf, generator=g, dtype=DTYPE), "ms": torch.randn(ns, generator=g, dtype=DTYPE),
         "lf": -torch.ones(nf, dtype=DTYPE), "ls": -torch.ones(ns, dtype=DTYPE),
         "H": 0.1 * torch.randn(ns, nf, generator=g, dtype=DTYPE),
         "Lf": torch.zeros(nf, nf, dtype=DTYPE), "Ls": torch.zeros(ns, ns, dtype=DTYPE)}
    names = ["mf", "ms", "lf", "ls"] + ([] if family == "mean-field" else ["H"]) + ([] if diagonal else ["Lf", "Ls"])
    params = [p[n].requires_grad_(True) for n in names]

    def joint():
        Lf = torch.diag(p["lf"].exp()) + (0 if diagonal else torch.tril(p["Lf"], -1))
        Ls = torch.diag(p["ls"].exp()) + (0 if diagonal else torch.tril(p["Ls"], -1))
        H = p["H"] if family != "mean-field" else torch.zeros(ns, nf, dtype=DTYPE)
        Cf = Lf @ Lf.T
        mean_s = p["ms"] + H @ p["mf"]
        Cs = H @ Cf @ H.T + Ls @ Ls.T
        Cfs = Cf @ H.T                                   # Cov(first, second)
        if family == "top-down":                         # order the joint as (z1, z2) = (second, first)
            mean = torch.cat([mean_s, p["mf"]])
            cov = torch.cat([torch.cat([Cs, Cfs.T], 1), torch.cat([Cfs, Cf], 1)], 0)
        else:
            mean = torch.cat([p["mf"], mean_s])
            cov = torch.cat([torch.cat([Cf, Cfs], 1), torch.cat([Cfs.T, Cs], 1)], 0)
        return mean, cov

    _minimize(lambda: -model.elbo(x, *joint()), params, steps)
    with torch.no_grad():
        mean, cov = joint()
        elbo = model.elbo(x, mean, cov).item()
    return HierarchicalFit(elbo, model.log_evidence(x) - elbo, mean, cov)
