r"""The β-VAE read as a Lagrangian (chapter 9), and the two models that set the rate instead of β.

Maximise the expected reconstruction subject to a budget on the rate,

.. math:: \max_{\theta,\phi}\ \mathbb E_{x}\mathbb E_{q_\phi(z|x)}[\log p_\theta(x|z)]
          \quad\text{s.t.}\quad R = \mathbb E_x \mathrm{KL}(q_\phi(z|x)\,\|\,p(z)) \le \varepsilon .

Its Lagrangian is :math:`\mathbb E[\log p_\theta(x|z)] - \beta (R - \varepsilon)` with
:math:`\beta \ge 0`: for a fixed multiplier this is, up to the constant :math:`\beta\varepsilon`,
the β-VAE objective of Higgins et al. (2017), and :math:`\beta = 1` is the ELBO. The β-VAE with a
fixed (or scheduled) β is the :class:`~vae_core.models.vae.VAE` itself, whose ``beta`` is a setting
(``model.beta = 4``, or ``fit(..., beta=4)``). This module holds the two ways to fix the rate instead:

* :class:`CapacityVAE` -- Burgess et al. (2018): loss ``-(mean(recon) - gamma * |mean(kl) - C|)``
  with the capacity :math:`C` raised by a schedule (``fit(schedules={"capacity": linear_ramp(0, 25, E)})``);
* :class:`RateConstrainedVAE` -- the constrained problem itself: :math:`\beta` is the multiplier,
  learned by dual ascent towards ``target_rate`` (in the spirit of GECO, Rezende & Viola 2018, which
  constrains the reconstruction instead). After every training batch, without gradient,

  .. math:: \log\beta \leftarrow \operatorname{clip}\big(\log\beta + \eta\,(\hat R - \varepsilon),
            \ \log\beta_{\min},\ \log\beta_{\max}\big)

  where :math:`\hat R` is the batch's mean KL and :math:`\eta` = ``dual_step`` (per nat of
  constraint violation, per batch). A rate above the target raises :math:`\beta`, one below lowers
  it. The update lives in :meth:`RateConstrainedVAE.loss` (training mode only), so ``fit`` stays
  type-agnostic, and the multiplier is saved in checkpoints (module extra state).

For both, :class:`~vae_core.models.base.Output` ``.elbo`` is the true ELBO ``recon - kl``.

Also here: :func:`mse_kl_loss` and :func:`fixed_variance_beta`, the "MSE + KL" recipe, which is a
β-VAE with a fixed-variance Gaussian decoder: the KL weight :math:`w` of "SSE + w·KL" is
:math:`2\sigma^2\beta`, so plain "SSE + KL" is :math:`\beta = 1/(2\sigma^2)`.
"""
from __future__ import annotations

import math

import torch

from .._validate import check_nonnegative_float, check_positive_float, check_tensor
from .base import Batch, Output
from .vae import VAE

__all__ = ["CapacityVAE", "RateConstrainedVAE", "mse_kl_loss", "fixed_variance_beta", "fixed_variance_sigma"]

class CapacityVAE(VAE):
    r"""A :class:`~vae_core.models.vae.VAE` trained to spend a rate of :math:`C` nats (Burgess et al., 2018):

    .. math:: \widetilde{\mathcal L} = \tfrac1B\textstyle\sum_i \mathbb E_q[\log p(x_i|z)]
              - \gamma\,\big|\tfrac1B\textstyle\sum_i \mathrm{KL}_i - C\big| .

    Args:
        input_dim, latent_dim, hidden_dims, likelihood, activation: as :class:`~vae_core.models.vae.VAE`.
        gamma: weight :math:`\gamma > 0` of :math:`|R - C|`.
        capacity: :math:`C \ge 0` in nats, the starting capacity.

    Settings: ``capacity`` (schedule it to raise :math:`C`, e.g. with
    :func:`vae_core.schedules.linear_ramp`), ``n_samples`` and ``kl_estimator`` (as the VAE's).
    """

    settings = {"capacity": 0.0, "n_samples": 1, "kl_estimator": "analytic"}

    def __init__(self, input_dim: int, latent_dim: int, hidden_dims=(400,), likelihood: str = "bernoulli",
                 activation: str = "tanh", gamma: float = 100.0, capacity: float = 0.0):
        super().__init__(input_dim, latent_dim, hidden_dims, likelihood, activation)
        self.gamma = check_positive_float("gamma", gamma)
        self.capacity = capacity


    def loss(self, batch: Batch | torch.Tensor, generator: torch.Generator | None = None) -> Output:
        r"""``loss = -(mean(recon) - gamma * |mean(kl) - capacity|)``; ``elbo = recon - kl``."""
        t = self.terms(self.as_batch(batch).x, generator)
        recon, kl = t["recon"], t["kl"]
        return Output(loss=-(recon.mean() - self.gamma * (kl.mean() - self.capacity).abs()), elbo=recon - kl,
                      terms={"recon": recon, "kl": kl})


class RateConstrainedVAE(VAE):
    r"""A :class:`~vae_core.models.vae.VAE` whose KL weight :math:`\beta` is the Lagrange multiplier of
    the constraint :math:`R \le \varepsilon`, learned by dual ascent (see the module docstring).

    Args:
        input_dim, latent_dim, hidden_dims, likelihood, activation: as :class:`~vae_core.models.vae.VAE`.
        beta: the starting multiplier, inside ``beta_range`` (1 starts at the ELBO).
        target_rate: :math:`\varepsilon \ge 0` in nats.
        dual_step: :math:`\eta > 0`, the change of :math:`\log\beta` per nat of rate error per batch.
        beta_range: ``(beta_min, beta_max)``, the clip of the learned multiplier.

    Settings: ``target_rate`` (schedulable), ``n_samples`` and ``kl_estimator`` (as the VAE's). The
    multiplier ``beta`` is learned, not set: it is the model's state, saved in checkpoints, and
    ``fit`` refuses to set or schedule it. ``Output.terms["beta"]`` is the multiplier each batch used.
    """

    settings = {"target_rate": 10.0, "n_samples": 1, "kl_estimator": "analytic"}

    def __init__(self, input_dim: int, latent_dim: int, hidden_dims=(400,), likelihood: str = "bernoulli",
                 activation: str = "tanh", beta: float = 1.0, target_rate: float = 10.0,
                 dual_step: float = 0.01, beta_range=(1e-3, 1e3)):
        super().__init__(input_dim, latent_dim, hidden_dims, likelihood, activation)
        try:
            lo, hi = (float(v) for v in beta_range)
        except (TypeError, ValueError):
            raise TypeError(f"beta_range must be a pair (beta_min, beta_max), got {beta_range!r}.") from None
        if not (0 < lo < hi < math.inf):
            raise ValueError(f"beta_range must satisfy 0 < beta_min < beta_max < inf, got {beta_range!r}.")
        self.beta = check_positive_float("beta", beta)
        if not lo <= self.beta <= hi:
            raise ValueError(f"the starting multiplier beta={beta} must lie in beta_range={(lo, hi)}.")
        self.target_rate, self.beta_range = target_rate, (lo, hi)
        self.dual_step = check_positive_float("dual_step", dual_step)


    def loss(self, batch: Batch | torch.Tensor, generator: torch.Generator | None = None) -> Output:
        r"""The β-VAE loss at the current multiplier, ``-mean(recon - beta * kl)``; in training mode
        the multiplier then takes one dual-ascent step from this batch's rate (:meth:`dual_update`)."""
        beta = self.beta
        out = super().loss(batch, generator)
        out.terms["beta"] = torch.full_like(out.terms["kl"], beta)
        if self.training:
            self.dual_update(out.terms["kl"].detach().mean().item())
        return out

    def dual_update(self, rate: float) -> float:
        r"""One dual-ascent step on the multiplier from a measured ``rate`` (nats); returns the new β.

        :math:`\log\beta \leftarrow \log\beta + \eta(\text{rate} - \varepsilon)`, clipped to ``beta_range``.
        A non-finite rate leaves β as it is (``fit`` then stops on the non-finite loss).
        """
        if math.isfinite(rate):
            lo, hi = self.beta_range
            self.beta = min(max(math.exp(math.log(self.beta) + self.dual_step * (rate - self.target_rate)), lo), hi)
        return self.beta

    # -- the learned multiplier travels with checkpoints ----------------------------------------
    def get_extra_state(self) -> torch.Tensor:
        """``[beta, target_rate]`` as a tensor (checkpoints hold tensors only)."""
        return torch.tensor([self.beta, self.target_rate], dtype=torch.float64)

    def set_extra_state(self, state) -> None:
        if not isinstance(state, torch.Tensor) or state.shape != (2,):
            raise ValueError(f"RateConstrainedVAE extra state must be a tensor [beta, target_rate], got {state!r}.")
        self.beta, self.target_rate = state.tolist()


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
    check_tensor("x", x, min_dim=2)
    check_tensor("x_mean", x_mean)
    check_tensor("kl", kl)
    if x_mean.shape != x.shape:
        raise ValueError(f"x and x_mean must have the same shape (batch, pixels), got {tuple(x.shape)} "
                         f"and {tuple(x_mean.shape)}.")
    if kl.shape != x.shape[:-1]:
        raise ValueError(f"kl must have one value per example, shape {tuple(x.shape[:-1])}, got {tuple(kl.shape)}.")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean' (over pixels), got {reduction!r}.")
    sq = (x - x_mean).pow(2)
    sq = sq.sum(-1) if reduction == "sum" else sq.mean(-1)
    return sq + check_nonnegative_float("weight", weight, "the KL weight") * kl


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
