r"""Gradient estimators: how a gradient passes through a random sample.

The question every estimator here answers is how to compute

.. math:: \nabla_\theta\, \mathbb E_{z\sim q_\theta}[f(z)]

from samples. Two families:

* **Reparameterization** (pathwise): write :math:`z = g(\varepsilon, \theta)` with noise
  :math:`\varepsilon` whose law does not depend on :math:`\theta`; then
  :math:`\nabla_\theta \mathbb E[f(z)] = \mathbb E_\varepsilon[\nabla_\theta f(g(\varepsilon,\theta))]`.
  For a Gaussian, :math:`z = \mu + \sigma \odot \varepsilon,\ \varepsilon \sim \mathcal N(0, I)`
  (:func:`reparameterize`, :func:`reparam_grad`, :func:`gaussian_reparam_grad`).
* **Score function** (log-derivative trick, REINFORCE, likelihood ratio):
  :math:`\nabla_\theta \mathbb E[f(z)] = \mathbb E_q[(f(z) - b)\,\nabla_\theta \log q_\theta(z)]`
  for any baseline :math:`b` that does not depend on :math:`z`
  (:func:`score_function_grad`, :func:`gaussian_score_function_grad`,
  :func:`categorical_score_function_grad`).

Discrete latents have no pathwise gradient; the Gumbel-max trick turns sampling a categorical
into an ``argmax`` of perturbed logits (:func:`gumbel_max_sample`), and the Gumbel-softmax /
Concrete relaxation replaces the ``argmax`` by a tempered softmax (:func:`gumbel_softmax`,
:func:`concrete_log_prob`), optionally with the straight-through estimator
(:func:`straight_through`).

Per-sample gradients. The estimator functions return the Monte-Carlo average by default and, with
``per_sample=True``, the ``n_samples`` individual single-sample estimates (stacked in a new leading
dimension), from which a variance is one ``.var(0)`` away. They are computed in one backward pass
by giving every sample its own copy of the parameters, so the functions ``f``, ``sample_fn``,
``log_prob_fn`` and ``transform`` must treat the leading (sample) dimension element-wise, as
batched tensor code normally does.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from ._checks import check_positive_int, check_same_shape, check_tensor

__all__ = [
    "reparameterize", "score_function_grad", "reparam_grad", "gaussian_score_function_grad",
    "gaussian_reparam_grad", "categorical_score_function_grad", "gumbel_sample", "gumbel_max_sample",
    "gumbel_softmax", "straight_through", "concrete_log_prob", "check_tau",
]


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, n_samples: int | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Draw :math:`z = \mu + \exp(\tfrac12\log\sigma^2) \odot \varepsilon` with :math:`\varepsilon\sim\mathcal N(0,I)`.

    Gradients flow to ``mu`` and ``logvar``; the randomness lives only in ``eps``.

    Args:
        mu, logvar: tensors of the same shape ``(..., d)``.
        n_samples: ``None`` for one sample of shape ``mu.shape``; an int ``L`` for ``L`` samples
            stacked in a new leading dimension, shape ``(L, *mu.shape)``.
        generator: a ``torch.Generator`` for reproducible noise.
    """
    check_tensor("mu", mu)
    check_tensor("logvar", logvar)
    check_same_shape(mu=mu, logvar=logvar)
    shape = mu.shape if n_samples is None else (check_positive_int("n_samples", n_samples), *mu.shape)
    eps = torch.randn(shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


# --------------------------------------------------------------------------- helpers

def _param_tuple(params) -> tuple[torch.Tensor, ...]:
    if isinstance(params, torch.Tensor):
        raise TypeError("params must be a tuple or list of tensors, e.g. (mu, logvar); "
                        "wrap a single tensor as (logits,).")
    try:
        params = tuple(params)
    except TypeError:
        raise TypeError(f"params must be a tuple or list of tensors, got {type(params).__name__}.") from None
    if not params:
        raise ValueError("params must hold at least one tensor.")
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor) or not p.is_floating_point():
            raise TypeError(f"params[{i}] must be a floating-point torch.Tensor, got "
                            f"{type(p).__name__ if not isinstance(p, torch.Tensor) else p.dtype}.")
    return params


def _per_sample_copies(params: tuple[torch.Tensor, ...], n: int) -> list[torch.Tensor]:
    """One detached copy of every parameter per sample: shape ``(n, *p.shape)``, requiring grad."""
    return [p.detach().unsqueeze(0).expand(n, *p.shape).clone().requires_grad_(True) for p in params]


def _values_per_sample(name: str, value, n: int) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must return a torch.Tensor, got {type(value).__name__}.")
    if value.dim() == 0 or value.shape[0] != n:
        raise ValueError(f"{name} must return one value per sample, a tensor of shape ({n}, ...) with the "
                         f"samples in the leading dimension; got shape {tuple(value.shape)}.")
    return value


def _baseline_values(baseline, fz: torch.Tensor) -> torch.Tensor:
    r"""The baseline :math:`b_i` subtracted from :math:`f(z_i)`; zero when ``baseline`` is None."""
    if baseline is None:
        return torch.zeros_like(fz)
    if isinstance(baseline, str):
        if baseline not in ("loo", "leave_one_out"):
            raise ValueError(f"baseline must be None, a number, a tensor, or 'loo' (leave-one-out mean); "
                             f"got {baseline!r}.")
        n = fz.shape[0]
        if n < 2:
            raise ValueError("the leave-one-out baseline needs n_samples >= 2, got n_samples=1.")
        return (fz.sum(0, keepdim=True) - fz) / (n - 1)
    if isinstance(baseline, bool):
        raise TypeError("baseline must be None, a number, a tensor or 'loo', got a bool.")
    if isinstance(baseline, (int, float)):
        return torch.full_like(fz, float(baseline))
    if isinstance(baseline, torch.Tensor):
        b = baseline.detach().to(fz.dtype)
        try:
            return torch.broadcast_to(b, fz.shape)
        except RuntimeError:
            raise ValueError(f"a tensor baseline must broadcast to the shape of f's values "
                             f"{tuple(fz.shape)}; got shape {tuple(b.shape)}.") from None
    raise TypeError(f"baseline must be None, a number, a tensor or 'loo', got {type(baseline).__name__}.")


def _finish(grads, copies, per_sample: bool):
    out = tuple(torch.zeros_like(c) if g is None else g for g, c in zip(grads, copies))
    return out if per_sample else tuple(g.mean(0) for g in out)


# --------------------------------------------------------------------------- score function

def score_function_grad(f: Callable[[torch.Tensor], torch.Tensor],
                        sample_fn: Callable[..., torch.Tensor],
                        log_prob_fn: Callable[..., torch.Tensor],
                        params: Sequence[torch.Tensor], n_samples: int, baseline=None,
                        generator: torch.Generator | None = None,
                        per_sample: bool = False) -> tuple[torch.Tensor, ...]:
    r"""The score-function (log-derivative, REINFORCE) estimator of :math:`\nabla_\theta \mathbb E_{q_\theta}[f(z)]`.

    From :math:`\nabla_\theta q_\theta = q_\theta \nabla_\theta \log q_\theta`,

    .. math:: \nabla_\theta \mathbb E_{q_\theta}[f(z)] = \mathbb E_{q_\theta}\!\left[(f(z) - b)\,
              \nabla_\theta \log q_\theta(z)\right]
              \approx \frac1n \sum_{i=1}^n (f(z_i) - b_i)\, \nabla_\theta \log q_\theta(z_i),
              \qquad z_i \sim q_\theta,

    which holds for any baseline :math:`b` independent of :math:`z_i` because
    :math:`\mathbb E_q[\nabla_\theta \log q_\theta] = 0`. ``f`` is never differentiated: it may be
    discontinuous or a black box. Only ``log_prob_fn`` is differentiated.

    Args:
        f: maps the samples ``z`` of shape ``(n, ...)`` to values of shape ``(n, ...)`` (one per
            sample and batch element). Called without gradients.
        sample_fn: ``sample_fn(*params, n_samples=n, generator=g)`` returns ``n`` samples stacked in
            a leading dimension. Called without gradients.
        log_prob_fn: ``log_prob_fn(z, *params)`` returns :math:`\log q_\theta(z)`, the same shape
            as ``f(z)``. It is called with per-sample parameter copies of shape
            ``(n, *p.shape)``, so it must broadcast over the leading dimension.
        params: a tuple of floating tensors :math:`\theta` (e.g. ``(mu, logvar)``).
        n_samples: the number ``n`` of samples.
        baseline: ``None`` (no baseline), a number or tensor (a constant :math:`b`), or ``"loo"``:
            :math:`b_i = \frac{1}{n-1}\sum_{j\ne i} f(z_j)`, the leave-one-out mean, which depends only
            on the *other* samples and so keeps the estimator unbiased.
        generator: a ``torch.Generator`` for reproducible samples.
        per_sample: return the ``n`` single-sample estimates (shape ``(n, *p.shape)`` each)
            instead of their mean.

    Returns:
        A tuple with one gradient estimate per parameter (shape ``p.shape``, or ``(n, *p.shape)``).
    """
    params = _param_tuple(params)
    n = check_positive_int("n_samples", n_samples)
    with torch.no_grad():
        z = sample_fn(*[p.detach() for p in params], n_samples=n, generator=generator)
        fz = _values_per_sample("f", f(z), n).to(params[0].dtype)
        weight = fz - _baseline_values(baseline, fz)
    copies = _per_sample_copies(params, n)
    log_q = _values_per_sample("log_prob_fn", log_prob_fn(z, *copies), n)
    if log_q.shape != fz.shape:
        raise ValueError(f"log_prob_fn returned shape {tuple(log_q.shape)} but f returned "
                         f"{tuple(fz.shape)}; both need one value per sample (and batch element).")
    grads = torch.autograd.grad((weight * log_q).sum(), copies, allow_unused=True)
    return _finish(grads, copies, per_sample)


def reparam_grad(f: Callable[[torch.Tensor], torch.Tensor],
                 transform: Callable[..., torch.Tensor],
                 noise_fn: Callable[..., torch.Tensor],
                 params: Sequence[torch.Tensor], n_samples: int,
                 generator: torch.Generator | None = None,
                 per_sample: bool = False) -> tuple[torch.Tensor, ...]:
    r"""The reparameterization (pathwise) estimator of :math:`\nabla_\theta \mathbb E_{q_\theta}[f(z)]`.

    With :math:`z = g(\varepsilon, \theta)` and noise :math:`\varepsilon \sim p(\varepsilon)` that
    does not depend on :math:`\theta`,

    .. math:: \nabla_\theta \mathbb E_{q_\theta}[f(z)] = \mathbb E_{p(\varepsilon)}\!\left[
              \nabla_\theta f(g(\varepsilon, \theta))\right]
              \approx \frac1n \sum_{i=1}^n \nabla_\theta f(g(\varepsilon_i, \theta)).

    The exchange of :math:`\nabla_\theta` and :math:`\mathbb E` needs :math:`\theta \mapsto
    f(g(\varepsilon,\theta))` to be differentiable for almost every :math:`\varepsilon`, with a
    derivative dominated by an integrable function (e.g. ``f`` Lipschitz). A step function breaks
    it: autograd then returns 0 although the true gradient is not 0.

    Args:
        f: maps ``z`` of shape ``(n, ...)`` to values of shape ``(n, ...)``; differentiated.
        transform: ``transform(eps, *params)`` returns ``z``; called with per-sample parameter
            copies of shape ``(n, *p.shape)``.
        noise_fn: ``noise_fn(n_samples=n, generator=g)`` returns the noise ``eps`` (leading
            dimension ``n``).
        params, n_samples, generator, per_sample: as in :func:`score_function_grad`.
    """
    params = _param_tuple(params)
    n = check_positive_int("n_samples", n_samples)
    with torch.no_grad():
        eps = noise_fn(n_samples=n, generator=generator)
    copies = _per_sample_copies(params, n)
    fz = _values_per_sample("f", f(transform(eps, *copies)), n)
    if not fz.requires_grad:
        # f has no differentiable path to the parameters (e.g. a comparison): autograd says 0
        return _finish([None] * len(copies), copies, per_sample)
    grads = torch.autograd.grad(fz.sum(), copies, allow_unused=True)
    return _finish(grads, copies, per_sample)


def _gaussian_args(mu, logvar):
    check_tensor("mu", mu)
    check_tensor("logvar", logvar)
    check_same_shape(mu=mu, logvar=logvar)
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and "
                         f"{tuple(logvar.shape)}.")


def gaussian_score_function_grad(f, mu: torch.Tensor, logvar: torch.Tensor, n_samples: int,
                                 baseline=None, generator: torch.Generator | None = None,
                                 per_sample: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Score-function estimate of :math:`(\nabla_\mu, \nabla_{\log\sigma^2})\,\mathbb E_{\mathcal N(\mu,\operatorname{diag}\sigma^2)}[f(z)]`.

    The scores of a diagonal Gaussian are

    .. math:: \nabla_\mu \log q = \frac{z-\mu}{\sigma^2}, \qquad
              \nabla_{\log\sigma^2} \log q = \frac12\left(\frac{(z-\mu)^2}{\sigma^2} - 1\right),

    and the estimate is :math:`\frac1n\sum_i (f(z_i) - b_i)` times them. ``f`` maps ``z`` of shape
    ``(n, *mu.shape)`` to ``(n, *mu.shape[:-1])`` (it sums over the last, latent dimension); the
    samples are those of :func:`reparameterize` with the same generator. Other arguments as in
    :func:`score_function_grad`. Returns ``(grad_mu, grad_logvar)``.
    """
    _gaussian_args(mu, logvar)

    def sample(mu_, logvar_, n_samples, generator):
        return reparameterize(mu_, logvar_, n_samples=n_samples, generator=generator)

    def log_prob(z, mu_, logvar_):
        from .distributions import gaussian_log_prob
        return gaussian_log_prob(z, mu_, logvar_)

    return score_function_grad(f, sample, log_prob, (mu, logvar), n_samples, baseline=baseline,
                               generator=generator, per_sample=per_sample)


def gaussian_reparam_grad(f, mu: torch.Tensor, logvar: torch.Tensor, n_samples: int,
                          generator: torch.Generator | None = None,
                          per_sample: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Reparameterization estimate of :math:`(\nabla_\mu, \nabla_{\log\sigma^2})\,\mathbb E_{\mathcal N(\mu,\operatorname{diag}\sigma^2)}[f(z)]`.

    With :math:`z = \mu + \sigma\odot\varepsilon`, :math:`\nabla_\mu f(z) = \nabla_z f(z)` and
    :math:`\nabla_{\log\sigma^2} f(z) = \nabla_z f(z) \odot \tfrac12 \sigma\varepsilon`. Uses the
    same noise as :func:`reparameterize` and :func:`gaussian_score_function_grad` with an equally
    seeded generator. Returns ``(grad_mu, grad_logvar)``.
    """
    _gaussian_args(mu, logvar)

    def noise(n_samples, generator):
        return torch.randn((n_samples, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)

    def transform(eps, mu_, logvar_):
        return mu_ + torch.exp(0.5 * logvar_) * eps

    return reparam_grad(f, transform, noise, (mu, logvar), n_samples, generator=generator,
                        per_sample=per_sample)


def categorical_score_function_grad(f, logits: torch.Tensor, n_samples: int, baseline=None,
                                    generator: torch.Generator | None = None,
                                    per_sample: bool = False) -> torch.Tensor:
    r"""Score-function estimate of :math:`\nabla_\theta \mathbb E_{c \sim \mathrm{Cat}(\mathrm{softmax}\,\theta)}[f(c)]`.

    For a categorical with logits :math:`\theta`, :math:`\nabla_\theta \log \pi_c = e_c - \pi`
    (one-hot minus probabilities), so the estimate is
    :math:`\frac1n \sum_i (f(e_{c_i}) - b_i)(e_{c_i} - \pi)`.

    ``f`` receives **one-hot** samples of shape ``(n, *logits.shape)`` and returns
    ``(n, *logits.shape[:-1])``. Returns the gradient for ``logits`` (not a tuple).
    """
    check_tensor("logits", logits)

    def sample(logits_, n_samples, generator):
        return gumbel_max_sample(logits_, generator=generator, n_samples=n_samples, one_hot=True)

    def log_prob(c, logits_):
        return (c * torch.log_softmax(logits_, dim=-1)).sum(-1)

    (g,) = score_function_grad(f, sample, log_prob, (logits,), n_samples, baseline=baseline,
                               generator=generator, per_sample=per_sample)
    return g


# --------------------------------------------------------------------------- Gumbel

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
