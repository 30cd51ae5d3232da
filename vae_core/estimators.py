r"""Gradient estimators: how a gradient passes through a random sample.

This module starts with the reparameterization trick,
:math:`z = \mu + \sigma \odot \varepsilon,\ \varepsilon \sim \mathcal N(0, I)`.
"""
from __future__ import annotations

import torch

from ._checks import check_positive_int, check_same_shape, check_tensor

__all__ = ["reparameterize"]


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
