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

Discrete latents have no pathwise gradient; :mod:`vae_core.gumbel` (chapter 5) holds the
Gumbel-max trick and its Gumbel-softmax / Concrete relaxation.

Per-sample gradients. The estimator functions return the Monte-Carlo average by default and, with
``per_sample=True``, the ``n_samples`` individual single-sample estimates (stacked in a new leading
dimension), from which a variance is one ``.var(0)`` away. They are computed in one backward pass
by giving every sample its own copy of the parameters, so the functions ``f``, ``sample_fn``,
``log_prob_fn`` and ``transform`` must treat the leading (sample) dimension element-wise, as
batched tensor code normally does.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from ._validate import check_positive_int, check_same_shape, check_tensor
from .gumbel import gumbel_max_sample

__all__ = [
    "reparameterize", "score_function_grad", "reparam_grad", "gaussian_score_function_grad",
    "gaussian_reparam_grad", "categorical_score_function_grad",
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
