r"""The MLPs of Kingma & Welling (2013), Appendix C.

* :class:`GaussianMLP` maps an input to the mean and log-variance of a diagonal Gaussian
  (the encoder :math:`q_\phi(z|x)`, and the decoder for real-valued data).
* :class:`BernoulliMLP` maps a latent code to Bernoulli logits (the decoder for binary data).

The paper uses one hidden layer with ``tanh``; ``hidden_dims`` and ``activation`` generalise that.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ._checks import check_positive_int

__all__ = ["mlp", "GaussianMLP", "BernoulliMLP", "soft_clamp", "ACTIVATIONS"]

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "softplus": nn.Softplus, "elu": nn.ELU}

#: log-variances are kept inside this range (a smooth clamp) so that exp() cannot overflow.
LOGVAR_BOUND = 10.0


def soft_clamp(x: torch.Tensor, bound: float = LOGVAR_BOUND) -> torch.Tensor:
    """Smoothly squash ``x`` into ``(-bound, bound)``: ``bound * tanh(x / bound)`` (≈ x near 0)."""
    return bound * torch.tanh(x / bound)


def _check_hidden(hidden_dims) -> tuple[int, ...]:
    if isinstance(hidden_dims, int):
        hidden_dims = (hidden_dims,)
    try:
        dims = tuple(hidden_dims)
    except TypeError:
        raise TypeError(f"hidden_dims must be an int or a sequence of ints, got {hidden_dims!r}.") from None
    for h in dims:
        check_positive_int("each hidden dimension", h)
    return dims


def mlp(in_dim: int, hidden_dims: Sequence[int], out_dim: int, activation: str = "tanh") -> nn.Sequential:
    """A plain ``nn.Sequential`` MLP: Linear, activation, ..., Linear (no final activation)."""
    check_positive_int("in_dim", in_dim)
    check_positive_int("out_dim", out_dim)
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}.")
    layers: list[nn.Module] = []
    prev = in_dim
    for h in _check_hidden(hidden_dims):
        layers += [nn.Linear(prev, h), ACTIVATIONS[activation]()]
        prev = h
    layers.append(nn.Linear(prev, out_dim))
    return nn.Sequential(*layers)


class GaussianMLP(nn.Module):
    r"""``x -> (mu, logvar)`` of a diagonal Gaussian; ``logvar`` is soft-clamped to ``(-10, 10)``."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dims: Sequence[int] = (400,), activation: str = "tanh"):
        super().__init__()
        self.out_dim = out_dim
        self.net = mlp(in_dim, hidden_dims, 2 * out_dim, activation)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=-1)
        return mu, soft_clamp(logvar)


class BernoulliMLP(nn.Module):
    """``z -> logits`` of independent Bernoullis (one per pixel)."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dims: Sequence[int] = (400,), activation: str = "tanh"):
        super().__init__()
        self.net = mlp(in_dim, hidden_dims, out_dim, activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
