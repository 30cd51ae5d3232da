r"""Discrete latents (chapter 5): the Gumbel-max trick and its continuous relaxation.

* :func:`gumbel_sample` draws standard Gumbel noise :math:`G = -\log(-\log U)` with :math:`U` clamped
  away from 0 and 1, so the double logarithm never overflows;
* :func:`gumbel_max_sample`: :math:`\arg\max_k(\theta_k + G_k)` is an exact sample of
  :math:`\mathrm{Cat}(\mathrm{softmax}\,\theta)`;
* :func:`gumbel_softmax`: the Gumbel-softmax / Concrete relaxation
  :math:`y = \mathrm{softmax}((\theta + G)/\tau)`, differentiable in :math:`\theta` for :math:`\tau > 0`,
  and :func:`concrete_log_prob`, its density on the simplex (Maddison et al., 2017);
* :func:`straight_through`: a one-hot forward pass with the relaxed sample's gradient.
"""
from __future__ import annotations

import math

import torch

from ._validate import check_positive_int, check_same_shape, check_tensor

__all__ = ["gumbel_sample", "gumbel_max_sample", "gumbel_softmax", "straight_through", "concrete_log_prob",
           "check_tau"]


def check_tau(tau) -> float:
    """Return the temperature as a float if it is a finite number > 0, else raise."""
    if isinstance(tau, torch.Tensor):
        if tau.numel() != 1:
            raise ValueError(f"tau must be a single number > 0, got a tensor of shape {tuple(tau.shape)}.")
        tau = tau.item()
    if isinstance(tau, bool):
        raise TypeError("tau must be a number > 0, got a bool.")
    try:
        t = float(tau)
    except (TypeError, ValueError):
        raise TypeError(f"tau must be a number > 0 (the temperature), got {tau!r}.") from None
    if not (t > 0 and math.isfinite(t)):
        raise ValueError(f"tau must be > 0 (and finite): it is the temperature of the softmax, got {tau!r}. "
                         f"Small tau (e.g. 0.1) gives nearly one-hot samples, large tau nearly uniform ones.")
    return t


def _shape_tuple(shape) -> tuple[int, ...]:
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        out = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be an int or a sequence of ints, got {shape!r}.") from None
    if any(s < 0 for s in out):
        raise ValueError(f"shape must not have negative sizes, got {out}.")
    return out


def gumbel_sample(shape, generator: torch.Generator | None = None, *, dtype: torch.dtype | None = None,
                  device=None) -> torch.Tensor:
    r"""Standard Gumbel noise :math:`G = -\log(-\log U)`, :math:`U \sim \mathrm{Uniform}(0, 1)`.

    The Gumbel(0, 1) law has CDF :math:`F(g) = \exp(-e^{-g})`, so :math:`G = F^{-1}(U)`.
    ``U`` is clamped to ``[tiny, 1 - eps]`` of its dtype, so neither logarithm sees 0 or 1 and
    the noise is always finite (within about [-4.5, 16] in float32).
    """
    dtype = dtype or torch.get_default_dtype()
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype}.")
    u = torch.rand(_shape_tuple(shape), generator=generator, dtype=dtype, device=device)
    info = torch.finfo(dtype)
    u = u.clamp(min=info.tiny, max=1.0 - info.eps)
    return -torch.log(-torch.log(u))


def _perturbed(logits: torch.Tensor, n_samples, generator, noise) -> torch.Tensor:
    check_tensor("logits", logits)
    if logits.shape[-1] < 1:
        raise ValueError("logits must have at least one category in the last dimension.")
    shape = logits.shape if n_samples is None else (check_positive_int("n_samples", n_samples), *logits.shape)
    if noise is None:
        noise = gumbel_sample(shape, generator=generator, dtype=logits.dtype, device=logits.device)
    else:
        check_tensor("noise", noise)
        try:
            torch.broadcast_shapes(noise.shape, shape)
        except RuntimeError:
            raise ValueError(f"noise must broadcast to the shape {tuple(shape)} of the (sampled) logits, "
                             f"got {tuple(noise.shape)}.") from None
        noise = noise.to(logits.dtype)
    return logits + noise


def gumbel_max_sample(logits: torch.Tensor, generator: torch.Generator | None = None,
                      n_samples: int | None = None, one_hot: bool = False,
                      noise: torch.Tensor | None = None) -> torch.Tensor:
    r"""Categorical samples by the Gumbel-max trick: :math:`c = \arg\max_k (\theta_k + G_k)`.

    With i.i.d. :math:`G_k \sim \mathrm{Gumbel}(0,1)`, :math:`P(c = k) = \mathrm{softmax}(\theta)_k`
    (logits need not be normalised).

    Args:
        logits: ``(..., K)``, categories in the last dimension.
        generator: for reproducible noise.
        n_samples: ``None`` for one sample per row; an int ``n`` for ``n`` samples in a new
            leading dimension.
        one_hot: ``False`` returns **indices** (``torch.long``, shape ``logits.shape[:-1]``, with the
            sample dimension in front if any); ``True`` returns **one-hot** vectors in the dtype of
            ``logits`` (shape ``logits.shape``, likewise).
        noise: optional Gumbel noise to use instead of drawing it (shape of the sampled logits).
    """
    idx = _perturbed(logits, n_samples, generator, noise).argmax(-1)
    if not one_hot:
        return idx
    return torch.nn.functional.one_hot(idx, logits.shape[-1]).to(logits.dtype)


def straight_through(y_soft: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
    r"""Straight-through: the one-hot ``argmax`` forward, the gradient of ``y_soft`` backward.

    Returns :math:`y_\text{hard} + (y_\text{soft} - \operatorname{sg}(y_\text{soft}))` where
    :math:`\operatorname{sg}` stops gradients (``detach``): the same as the usual spelling
    ``y_hard - y_soft.detach() + y_soft``, grouped so that the bracket is exactly zero in floating
    point and the value is the one-hot vector bit for bit. Its Jacobian with respect to ``y_soft``
    is the identity, so the backward pass is that of the soft sample.

    Args:
        y_soft: ``(..., K)`` relaxed samples.
        index: the category of each hard sample (default ``y_soft.argmax(-1)``).
    """
    check_tensor("y_soft", y_soft)
    if index is None:
        index = y_soft.argmax(-1)
    y_hard = torch.nn.functional.one_hot(index, y_soft.shape[-1]).to(y_soft.dtype)
    return y_hard + (y_soft - y_soft.detach())


def gumbel_softmax(logits: torch.Tensor, tau: float, hard: bool = False,
                   generator: torch.Generator | None = None, n_samples: int | None = None,
                   noise: torch.Tensor | None = None) -> torch.Tensor:
    r"""A Gumbel-softmax (Concrete) sample :math:`y = \mathrm{softmax}((\theta + G)/\tau)`.

    As :math:`\tau \to 0`, :math:`y` tends to the one-hot Gumbel-max sample; as
    :math:`\tau \to \infty`, to the uniform vector :math:`(1/K, \dots, 1/K)`. For every
    :math:`\tau`, :math:`\arg\max_k y_k` is an exact categorical sample. Computed as
    ``exp(log_softmax(...))``, so extreme logits (±1e4) and small temperatures (1e-3) give finite
    values and gradients.

    Args:
        logits: ``(..., K)``.
        tau: the temperature, a number > 0 (``ValueError`` otherwise).
        hard: ``True`` for the straight-through estimator: the value is the exact one-hot
            Gumbel-max sample, the gradient that of the soft sample (see :func:`straight_through`).
        generator, n_samples, noise: as in :func:`gumbel_max_sample` (the same generator state
            gives the same noise, so ``argmax`` of the result equals ``gumbel_max_sample``).
    """
    t = check_tau(tau)
    perturbed = _perturbed(logits, n_samples, generator, noise)
    y_soft = torch.exp(torch.log_softmax(perturbed / t, dim=-1))
    if not hard:
        return y_soft
    return straight_through(y_soft, index=perturbed.argmax(-1))


def concrete_log_prob(y: torch.Tensor, logits: torch.Tensor, tau: float, log_input: bool = False) -> torch.Tensor:
    r"""Log-density of the Concrete (Gumbel-softmax) distribution on the simplex.

    For :math:`y = \mathrm{softmax}((\theta + G)/\tau)` with :math:`K` categories and
    :math:`\alpha_k = e^{\theta_k}` (Maddison et al., 2016),

    .. math:: p_{\alpha,\tau}(y) = (K-1)!\,\tau^{K-1} \prod_{k=1}^K
              \frac{\alpha_k\, y_k^{-\tau-1}}{\sum_{j=1}^K \alpha_j\, y_j^{-\tau}},

    a density with respect to Lebesgue measure on the first :math:`K-1` coordinates
    (:math:`y_K = 1 - \sum_{k<K} y_k`). Computed in log space with ``logsumexp``.

    Args:
        y: ``(..., K)`` points strictly inside the simplex, or their logarithms when
            ``log_input=True`` (better for small ``tau``, where coordinates underflow).
        logits: ``(..., K)`` logits :math:`\theta` (normalisation does not matter).
        tau: temperature > 0.
    Returns:
        ``(...)``: one log-density per point.
    """
    t = check_tau(tau)
    check_tensor("y", y)
    check_tensor("logits", logits)
    check_same_shape(y=y, logits=logits)
    K = y.shape[-1]
    if K < 2:
        raise ValueError(f"the Concrete distribution needs K >= 2 categories in the last dimension, got {K}.")
    if log_input:
        log_y = y
    else:
        if y.numel() and (y.min() < 0 or ((y.sum(-1) - 1).abs() > 1e-4).any()):
            raise ValueError("y must lie on the probability simplex (non-negative, summing to 1 over the "
                             "last dimension); pass log_input=True if you are giving log y.")
        log_y = torch.log(y)
    const = math.lgamma(K) + (K - 1) * math.log(t)
    return (const + (logits - (t + 1) * log_y).sum(-1)
            - K * torch.logsumexp(logits - t * log_y, dim=-1))
