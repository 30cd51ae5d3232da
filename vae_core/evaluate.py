r"""Evaluation: importance-sampled log-likelihood, latent usage, clustering and disentanglement scores.

The importance-sampling estimate of the evidence with the encoder as proposal,

.. math:: \log p(x) \approx \log \frac1K \sum_{k=1}^K
          \frac{p_\theta(x|z_k)\,p(z_k)}{q_\phi(z_k|x)}, \qquad z_k\sim q_\phi(z|x),

is a stochastic lower bound whose expectation increases with ``K`` towards :math:`\log p(x)`
(Burda et al., 2015); ``K = 1`` gives the Monte-Carlo ELBO. Also here: the KL per latent dimension
and active units (chapters 8, 9, 15), cluster accuracy (chapter 13) and the mutual information gap
(chapter 14).
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch

from ._validate import check_positive_int, check_tensor
from .distributions import kl_normal_standard_per_dim
from .models.base import Batch

__all__ = ["evaluating", "mean_elbo", "log_importance_weights", "log_marginal", "kl_per_dimension",
           "active_units", "cluster_accuracy", "discrete_mutual_information", "mutual_information_gap"]


@contextmanager
def evaluating(model):
    """``with evaluating(model):`` — eval mode and no gradients inside; the previous mode restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def _batches(x: torch.Tensor, y, batch_size: int):
    check_tensor("x", x, min_dim=2)
    check_positive_int("batch_size", batch_size)
    if y is not None and len(y) != len(x):
        raise ValueError(f"y must have one label per row of x: expected {len(x)}, got {len(y)}.")
    ys = [None] * math.ceil(len(x) / batch_size) if y is None else y.split(batch_size)
    return [Batch(xb, yb) for xb, yb in zip(x.split(batch_size), ys)]


def mean_elbo(model, x: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 1000,
              generator: torch.Generator | None = None) -> float:
    """The mean over ``x`` of the model's per-example bound (``model.loss(batch).elbo``), in nats.

    Computed in eval mode, without gradients, ``batch_size`` examples at a time, in float64.
    """
    device = next(model.parameters()).device
    with evaluating(model):
        total = torch.zeros((), dtype=torch.float64, device=device)
        for batch in _batches(x, y, batch_size):
            total += model.loss(batch.to(device), generator=generator).elbo.double().sum()
    return total.item() / len(x)


def log_importance_weights(model, x: torch.Tensor, n_samples: int,
                           generator: torch.Generator | None = None, y: torch.Tensor | None = None) -> torch.Tensor:
    r"""``log w_k = log p(x, z_k) - log q(z_k|x)`` with ``z_k ~ q(z|x)``, shape ``(K, B)``:
    the model's :meth:`~vae_core.models.base.LatentVariableModel.log_weights`."""
    return model.log_weights(Batch(x, y), n_samples, generator=generator)


def log_marginal(model, x: torch.Tensor, n_samples: int = 1000, batch_size: int = 100,
                 chunk: int = 250, generator: torch.Generator | None = None,
                 y: torch.Tensor | None = None) -> torch.Tensor:
    r"""Importance-sampled :math:`\log p(x)` per example (shape ``(B,)``), in nats.

    Works for every model through its ``log_weights``. Examples are processed ``batch_size`` at a
    time and samples ``chunk`` at a time, so memory stays bounded for large ``n_samples``; the
    chunks are combined exactly with logsumexp.
    """
    check_positive_int("n_samples", n_samples)
    check_positive_int("chunk", chunk)
    with evaluating(model):
        out = []
        for batch in _batches(x, y, batch_size):
            parts = [torch.logsumexp(model.log_weights(batch, min(chunk, n_samples - s), generator=generator), 0)
                     for s in range(0, n_samples, chunk)]
            out.append(torch.logsumexp(torch.stack(parts), 0) - math.log(n_samples))
        return torch.cat(out)


@torch.no_grad()
def kl_per_dimension(model, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    r"""Average over ``x`` of :math:`\mathrm{KL}(q(z_j|x)\,\|\,p(z_j))` for each latent dimension ``j``.

    Sums to the mean KL term of the ELBO. A dimension with near-zero KL carries no information
    about ``x`` (it has collapsed onto the prior).
    """
    total = None
    for xb in x.split(batch_size):
        kl = kl_normal_standard_per_dim(*model.encode(xb)).sum(0)  # per dimension, summed over the batch
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




def _as_labels(name: str, labels) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of labels, got shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer labels, got dtype {arr.dtype}; use .astype(int) or .long().")
    return arr


def cluster_accuracy(y_true, y_pred, return_mapping: bool = False):
    r"""Clustering accuracy: the fraction of examples labelled correctly under the best one-to-one
    matching of clusters to classes,

    .. math:: \mathrm{ACC} = \max_{m} \frac1N \sum_{i=1}^N \mathbb 1\{y_i = m(\hat c_i)\},

    the maximum over injective maps ``m`` from clusters to classes. The matching is a linear
    assignment problem on the contingency table (Hungarian algorithm,
    ``scipy.optimize.linear_sum_assignment``); clusters and classes may differ in number (a cluster
    left without a class counts as wrong).

    Args:
        y_true, y_pred: integer labels (tensors, arrays or lists) of the same length; their values
            need not be 0..K-1.
        return_mapping: also return ``{cluster: class}``.

    Returns:
        the accuracy in [0, 1] (and the mapping when asked).
    """
    from scipy.optimize import linear_sum_assignment

    t, p = _as_labels("y_true", y_true), _as_labels("y_pred", y_pred)
    if len(t) != len(p):
        raise ValueError(f"y_true and y_pred must have the same length, got {len(t)} and {len(p)}.")
    classes, t_idx = np.unique(t, return_inverse=True)
    clusters, p_idx = np.unique(p, return_inverse=True)
    counts = np.zeros((len(clusters), len(classes)), dtype=np.int64)   # counts[cluster, class]
    np.add.at(counts, (p_idx, t_idx), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    accuracy = counts[rows, cols].sum() / len(t)
    if return_mapping:
        return float(accuracy), {clusters[r].item(): classes[c].item() for r, c in zip(rows, cols)}
    return float(accuracy)


# -- disentanglement (chapter 14) ---------------------------------------------------------------
# The MIG of Chen et al. (2018): for each factor v_k, the mutual information I(z_j; v_k) of every
# latent dimension with it (latents discretised into bins), and the gap between the largest and the
# second largest, divided by the factor's entropy H(v_k). It is 1 when each factor is captured by one
# dimension alone and 0 when every factor is spread evenly over two or more dimensions (or by none).

def _as_2d_numpy(name: str, value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (N, columns), got {arr.shape}.")
    return arr


def _bin(column: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bins between the column's minimum and maximum (a constant column is one bin)."""
    lo, hi = column.min(), column.max()
    if hi <= lo:
        return np.zeros(len(column), dtype=np.int64)
    return np.minimum(((column - lo) / (hi - lo) * n_bins).astype(np.int64), n_bins - 1)


def discrete_mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    r""":math:`I(a; b) = \sum_{a,b} p(a,b)\log\frac{p(a,b)}{p(a)p(b)}` in nats, from the empirical joint of two
    integer label arrays of the same length."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D label arrays of the same length, got {a.shape} and {b.shape}.")
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    joint = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(joint, (ai, bi), 1.0)
    joint /= joint.sum()
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())


def mutual_information_gap(codes, factors, n_bins: int = 20) -> tuple[float, np.ndarray, np.ndarray]:
    """The MIG of latent ``codes`` ``(N, d)`` (e.g. the encoder means) against integer ``factors`` ``(N, K)``.

    Each latent dimension is discretised into ``n_bins`` equal-width bins over its range (as in common
    disentanglement code; the score depends a little on ``n_bins``). Needs ``d >= 2``.

    Returns:
        ``(mig, gap_per_factor (K,), mutual_information (d, K))``, the gaps normalised by :math:`H(v_k)`.
    """
    z = _as_2d_numpy("codes", codes).astype(np.float64)
    v = _as_2d_numpy("factors", factors)
    if len(z) != len(v):
        raise ValueError(f"codes and factors must have the same number of rows, got {len(z)} and {len(v)}.")
    if z.shape[1] < 2:
        raise ValueError(f"the mutual information gap needs at least 2 latent dimensions, got {z.shape[1]}.")
    if not np.isfinite(z).all():
        raise ValueError("codes has NaN or infinite entries; encode finite inputs.")
    check_positive_int("n_bins", n_bins)
    binned = [_bin(z[:, j], n_bins) for j in range(z.shape[1])]
    mi = np.array([[discrete_mutual_information(bz, v[:, k]) for k in range(v.shape[1])] for bz in binned])
    entropy = np.array([discrete_mutual_information(v[:, k], v[:, k]) for k in range(v.shape[1])])
    if (entropy <= 0).any():
        raise ValueError("every factor must take at least two values in the data (a constant factor has zero entropy).")
    top = np.sort(mi, axis=0)[::-1]
    gaps = (top[0] - top[1]) / entropy
    return float(gaps.mean()), gaps, mi


# -- swapping the prior under a fixed encoder and decoder (chapter 14) ---------------------------
# With the encoder q(z|x) and the decoder p(x|z) of a trained model held fixed, any normalised prior
# p(z) gives a well-defined model whose ELBO is E_q[log p(x|z)] - E_q[log q(z|x) - log p(z)] and whose
# log p(x) is estimated by importance sampling from q(z|x). ``log_prior`` is a callable z -> log p(z)
# (shape z.shape[:-1]); e.g. the exact aggregate posterior of the training images,
# ``lambda z: vae_core.prior_theory.mixture_log_prob(z, mu_train, logvar_train)``.

def _check_log_prior(log_prior):
    if not callable(log_prior):
        raise TypeError(f"log_prior must be a callable z -> log p(z), got {type(log_prior).__name__}.")


@torch.no_grad()
def _reduced_log_weights(model, x, log_prior, n_samples, batch_size, generator, reduce) -> torch.Tensor:
    """``reduce`` over the K axis of ``log p(x|z_k) + log_prior(z_k) - log q(z_k|x)``, ``z_k ~ q(z|x)``,
    batch by batch: ``(N,)``."""
    _check_log_prior(log_prior)
    check_tensor("x", x, min_dim=2)
    check_positive_int("n_samples", n_samples)
    check_positive_int("batch_size", batch_size)
    from .distributions import gaussian_log_prob
    from .estimators import reparameterize
    out = []
    with evaluating(model):
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            mu, logvar = model.encode(xb)
            z = reparameterize(mu, logvar, n_samples, generator)                 # (K, B, d)
            lw = model.log_likelihood(xb, z) + log_prior(z) - gaussian_log_prob(z, mu.expand_as(z), logvar.expand_as(z))
            out.append(reduce(lw))
    return torch.cat(out)


def elbo_with_prior(model, x: torch.Tensor, log_prior, n_samples: int = 16, batch_size: int = 500,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Per-example ELBO ``(N,)`` of ``model``'s encoder and decoder under the prior ``log_prior``:
    :math:`\frac1L\sum_l[\log p(x|z_l) + \log p(z_l) - \log q(z_l|x)]`, :math:`z_l\sim q(z|x)`, ``L = n_samples``
    (a Monte-Carlo KL, so it works for any prior)."""
    return _reduced_log_weights(model, x, log_prior, n_samples, batch_size, generator, lambda lw: lw.mean(0))


def log_marginal_with_prior(model, x: torch.Tensor, log_prior, n_samples: int = 100, batch_size: int = 100,
                            generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Per-example importance-sampled :math:`\log p(x) \approx \log\frac1K\sum_k p(x|z_k)p(z_k)/q(z_k|x)` ``(N,)``
    under the prior ``log_prior``, with ``K = n_samples`` draws from the encoder (a stochastic lower bound)."""
    return _reduced_log_weights(model, x, log_prior, n_samples, batch_size, generator,
                                lambda lw: torch.logsumexp(lw, 0) - math.log(n_samples))
