r"""The β-VAE and its constrained forms: the ELBO's KL weight read as a Lagrange multiplier.

Maximise the expected reconstruction subject to a budget on the rate,

.. math:: \max_{\theta,\phi}\ \mathbb E_{x}\mathbb E_{q_\phi(z|x)}[\log p_\theta(x|z)]
          \quad\text{s.t.}\quad R = \mathbb E_x \mathrm{KL}(q_\phi(z|x)\,\|\,p(z)) \le \varepsilon .

Its Lagrangian is :math:`\mathbb E[\log p_\theta(x|z)] - \beta (R - \varepsilon)` with
:math:`\beta \ge 0`: for a fixed multiplier this is, up to the constant :math:`\beta\varepsilon`,
the β-VAE objective of Higgins et al. (2017), and :math:`\beta = 1` is the ELBO. Three ways to train:

* ``objective="beta"`` — a fixed (or scheduled) :math:`\beta`: loss ``-mean(recon - beta * kl)``;
* ``objective="capacity"`` — Burgess et al. (2018): loss ``-(mean(recon) - gamma * |mean(kl) - C|)``
  with the capacity :math:`C` raised by a schedule (``fit(schedules={"capacity": linear_ramp(0, 25, E)})``);
* ``objective="rate"`` — the constrained problem itself: :math:`\beta` is the multiplier and is
  learned by dual ascent towards ``target_rate`` (in the spirit of GECO, Rezende & Viola 2018,
  which constrains the reconstruction instead). After every training batch, without gradient,

  .. math:: \log\beta \leftarrow \operatorname{clip}\big(\log\beta + \eta\,(\hat R - \varepsilon),
            \ \log\beta_{\min},\ \log\beta_{\max}\big)

  where :math:`\hat R` is the batch's mean KL and :math:`\eta` = ``dual_step`` (per nat of
  constraint violation, per batch). A rate above the target raises :math:`\beta`, one below lowers
  it. The update lives in :meth:`BetaVAE.loss` (training mode only), so ``fit`` stays type-agnostic.

Whatever the objective, :class:`~vae_core.models.base.Output` ``.elbo`` is the true ELBO
``recon - kl`` and ``terms`` holds ``recon``, ``kl`` and (for the constrained forms) ``beta``, the
multiplier used for the batch. The multiplier is saved in checkpoints (module extra state).

Also here: :func:`mse_kl_loss` and :func:`fixed_variance_beta`, the "MSE + KL" recipe, which is a
β-VAE with a fixed-variance Gaussian decoder, :math:`\beta = 2\sigma^2`.
"""
from __future__ import annotations

import math

import torch

from .._validate import check_nonnegative_float, check_positive_float, check_tensor
from .base import Batch, Output
from .vae import VAE

__all__ = ["BetaVAE", "OBJECTIVES", "mse_kl_loss", "fixed_variance_beta", "fixed_variance_sigma"]

OBJECTIVES = ("beta", "capacity", "rate")


class BetaVAE(VAE):
    r"""A :class:`~vae_core.models.vae.VAE` trained with a weighted or constrained KL term.

    Args:
        input_dim, latent_dim, hidden_dims, likelihood, activation: as :class:`~vae_core.models.vae.VAE`.
        beta: the KL weight :math:`\beta \ge 0` (``objective="beta"``; 1 gives the ELBO), or the
            starting multiplier (``objective="rate"``, then > 0).
        objective: ``"beta"``, ``"capacity"`` or ``"rate"`` (see the module docstring).
        gamma: weight :math:`\gamma > 0` of :math:`|R - C|` (``"capacity"``).
        capacity: :math:`C \ge 0` in nats (``"capacity"``); schedulable.
        target_rate: :math:`\varepsilon \ge 0` in nats (``"rate"``); schedulable.
        dual_step: :math:`\eta > 0`, the change of :math:`\log\beta` per nat of rate error per batch.
        beta_range: ``(beta_min, beta_max)``, the clip of the learned multiplier (``"rate"``).

    ``schedulable = ("beta", "capacity", "target_rate")``: ``fit(schedules=...)`` may set any of them
    per epoch (e.g. a KL warm-up of β, or a capacity ramp with
    :func:`vae_core.schedules.linear_ramp`). With ``objective="rate"``, schedule ``target_rate`` rather
    than ``beta``: a schedule of ``beta`` would reset the learned multiplier at every epoch.
    """

    schedulable = ("beta", "capacity", "target_rate")

    def __init__(self, input_dim: int, latent_dim: int, hidden_dims=(400,), likelihood: str = "bernoulli",
                 activation: str = "tanh", beta: float = 4.0, objective: str = "beta", gamma: float = 100.0,
                 capacity: float = 0.0, target_rate: float = 10.0, dual_step: float = 0.01,
                 beta_range=(1e-3, 1e3)):
        super().__init__(input_dim, latent_dim, hidden_dims, likelihood, activation)
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}: 'beta' for a fixed "
                             f"KL weight, 'capacity' for gamma*|KL - C|, 'rate' for a learned multiplier.")
        beta = check_nonnegative_float("beta", beta, "the KL weight")
        gamma = check_positive_float("gamma", gamma)
        capacity = check_nonnegative_float("capacity", capacity, "a capacity in nats")
        target_rate = check_nonnegative_float("target_rate", target_rate, "a rate in nats")
        dual_step = check_positive_float("dual_step", dual_step)
        try:
            lo, hi = (float(v) for v in beta_range)
        except (TypeError, ValueError):
            raise TypeError(f"beta_range must be a pair (beta_min, beta_max), got {beta_range!r}.") from None
        if not (0 < lo < hi < math.inf):
            raise ValueError(f"beta_range must satisfy 0 < beta_min < beta_max < inf, got {beta_range!r}.")
        if objective == "rate" and not lo <= beta <= hi:
            raise ValueError(f"the starting multiplier beta={beta} must lie in beta_range={(lo, hi)} "
                             f"for objective='rate'.")
        self.objective, self.beta, self.gamma, self.capacity = objective, beta, gamma, capacity
        self.target_rate, self.dual_step, self.beta_range = target_rate, dual_step, (lo, hi)
        self.config.update(beta=beta, objective=objective, gamma=gamma, capacity=capacity,
                           target_rate=target_rate, dual_step=dual_step, beta_range=[lo, hi])

    # -- the objective --------------------------------------------------------------------------
    def loss(self, batch: Batch | torch.Tensor, generator: torch.Generator | None = None) -> Output:
        r"""The scalar to minimise for ``self.objective``; ``elbo = recon - kl`` in every case.

        With ``objective="rate"`` in training mode, the multiplier is then updated by one dual-ascent
        step from this batch's rate (:meth:`dual_update`); the loss uses the multiplier *before* the step.
        """
        x = batch.x if isinstance(batch, Batch) else batch
        t = self.elbo(x, n_samples=self.n_samples, beta=1.0, kl=self.kl_estimator, generator=generator)
        recon, kl = t.recon, t.kl
        terms = {"recon": recon, "kl": kl}
        if self.objective == "capacity":
            loss = -(recon.mean() - self.gamma * (kl.mean() - self.capacity).abs())
        else:
            beta = float(self.beta)
            loss = -(recon - beta * kl).mean()
            if self.objective == "rate":
                terms["beta"] = torch.full_like(kl, beta).detach()
                if self.training:
                    self.dual_update(kl.detach().mean().item())
        return Output(loss=loss, elbo=recon - kl, terms=terms)

    def dual_update(self, rate: float) -> float:
        r"""One dual-ascent step on the multiplier from a measured ``rate`` (nats); returns the new β.

        :math:`\log\beta \leftarrow \log\beta + \eta(\text{rate} - \varepsilon)`, clipped to ``beta_range``.
        """
        if not math.isfinite(rate):
            raise FloatingPointError(f"the rate is {rate}; lower the learning rate.")
        lo, hi = self.beta_range
        log_beta = math.log(min(max(float(self.beta), lo), hi)) + self.dual_step * (rate - self.target_rate)
        self.beta = min(max(math.exp(log_beta), lo), hi)
        return self.beta

    # -- the learned multiplier travels with checkpoints ----------------------------------------
    def get_extra_state(self) -> torch.Tensor:
        """``[beta, capacity, target_rate]`` as a tensor (checkpoints hold tensors only)."""
        return torch.tensor([float(self.beta), float(self.capacity), float(self.target_rate)], dtype=torch.float64)

    def set_extra_state(self, state) -> None:
        if not isinstance(state, torch.Tensor) or state.shape != (3,):
            raise ValueError(f"BetaVAE extra state must be a tensor [beta, capacity, target_rate], got {state!r}.")
        self.beta, self.capacity, self.target_rate = (float(v) for v in state.tolist())


# ------------------------------------------------------------------ "MSE + KL" is a β-VAE

def mse_kl_loss(x: torch.Tensor, x_mean: torch.Tensor, kl: torch.Tensor, weight: float,
                reduction: str = "sum") -> torch.Tensor:
    r"""The common "MSE + KL" loss per example: ``sq + weight * kl``.

    ``sq`` is :math:`\|x - \hat x\|^2` summed over the D pixels (``reduction="sum"``) or averaged
    over them (``"mean"``). For a Gaussian decoder :math:`\mathcal N(\hat x, \sigma^2 I)` with a
    fixed :math:`\sigma`,

    .. math:: -\mathrm{ELBO}_{\beta} = \frac{\|x - \hat x\|^2 + 2\sigma^2\beta\,\mathrm{KL}}{2\sigma^2}
              + \frac D2\log(2\pi\sigma^2),

    so this loss is :math:`2\sigma^2` times a β-VAE loss, up to a constant, with
    :math:`\beta = \text{weight}/(2\sigma^2)` (sum) or :math:`\beta = D\,\text{weight}/(2\sigma^2)`
    (mean): see :func:`fixed_variance_beta`.
    """
    for name, value in (("x", x), ("x_mean", x_mean)):
        check_tensor(name, value, min_dim=2)
    if x.shape != x_mean.shape:
        raise ValueError(f"x and x_mean must have the same shape (batch, pixels), got {tuple(x.shape)} "
                         f"and {tuple(x_mean.shape)}.")
    check_tensor("kl", kl)
    if kl.shape != x.shape[:-1]:
        raise ValueError(f"kl must have one value per example, shape {tuple(x.shape[:-1])}, got {tuple(kl.shape)}.")
    weight = check_nonnegative_float("weight", weight, "the KL weight")
    sq = (x - x_mean).pow(2)
    if reduction == "sum":
        sq = sq.sum(-1)
    elif reduction == "mean":
        sq = sq.mean(-1)
    else:
        raise ValueError(f"reduction must be 'sum' or 'mean' (over pixels), got {reduction!r}.")
    return sq + weight * kl


def fixed_variance_beta(sigma: float, weight: float = 1.0, reduction: str = "sum", n_pixels: int | None = None) -> float:
    r"""The β of the ELBO that ``mse_kl_loss(..., weight, reduction)`` trains, for a decoder variance σ².

    ``reduction="sum"``: :math:`\beta = \text{weight}/(2\sigma^2)`, so ``weight = 1`` is the ELBO
    exactly when :math:`\sigma^2 = 1/2`, and a KL weight of :math:`2\sigma^2` gives :math:`\beta = 1`.
    ``reduction="mean"`` divides the squared error by D: :math:`\beta = D\,\text{weight}/(2\sigma^2)`.
    """
    s = check_positive_float("sigma", sigma)
    w = check_nonnegative_float("weight", weight, "the KL weight")
    if reduction == "sum":
        return w / (2 * s * s)
    if reduction == "mean":
        if isinstance(n_pixels, bool) or not isinstance(n_pixels, int) or n_pixels < 1:
            raise ValueError(f"reduction='mean' needs n_pixels, the number D of pixels averaged over, got {n_pixels!r}.")
        return n_pixels * w / (2 * s * s)
    raise ValueError(f"reduction must be 'sum' or 'mean' (over pixels), got {reduction!r}.")


def fixed_variance_sigma(beta: float, weight: float = 1.0) -> float:
    r"""The decoder standard deviation that makes "sum-of-squares + weight·KL" a β-VAE with this β:
    :math:`\sigma = \sqrt{\text{weight}/(2\beta)}` (so ``weight = 1, beta = 1`` gives :math:`\sigma^2 = 1/2`)."""
    b = check_positive_float("beta", beta)
    w = check_positive_float("weight", weight)
    return math.sqrt(w / (2 * b))
