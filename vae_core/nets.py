r"""The MLPs of Kingma & Welling (2013), Appendix C, as conditional distributions.

* :class:`GaussianMLP` maps an input to the mean and log-variance of a diagonal Gaussian
  (the encoder :math:`q_\phi(z|x)`, and the decoder for real-valued data).
* :class:`BernoulliMLP` maps a latent code to Bernoulli logits (the decoder for binary data).

Each is a distribution over a ``value`` given an input, with the same four methods, so that a model
never writes out which likelihood it has: ``log_prob(value, given)``, ``mean(given)``,
``sample(given, generator)`` and ``export()`` (the network that maps ``given`` to the mean, for the
browser explorers). ``given`` may carry leading sample dimensions, ``(L, B, d)``; ``value`` then
broadcasts against them. :data:`DECODERS` names the two likelihoods a model's decoder can have.

The paper uses one hidden layer with ``tanh``; ``hidden_dims`` and ``activation`` generalise that.
"""
from __future__ import annotations

from typing import Sequence

import copy

import torch
from torch import nn

from ._validate import check_hidden, check_positive_int
from .distributions import bernoulli_log_prob, gaussian_log_prob, sample_bernoulli

__all__ = ["mlp", "GaussianMLP", "BernoulliMLP", "DECODERS", "soft_clamp", "ACTIVATIONS"]

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "softplus": nn.Softplus, "elu": nn.ELU}

#: log-variances are kept inside this range (a smooth clamp) so that exp() cannot overflow.
LOGVAR_BOUND = 10.0


def soft_clamp(x: torch.Tensor, bound: float = LOGVAR_BOUND) -> torch.Tensor:
    """Smoothly squash ``x`` into ``(-bound, bound)``: ``bound * tanh(x / bound)`` (≈ x near 0)."""
    return bound * torch.tanh(x / bound)


def mlp(in_dim: int, hidden_dims: Sequence[int], out_dim: int, activation: str = "tanh") -> nn.Sequential:
    """A plain ``nn.Sequential`` MLP: Linear, activation, ..., Linear (no final activation)."""
    check_positive_int("in_dim", in_dim)
    check_positive_int("out_dim", out_dim)
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}.")
    layers: list[nn.Module] = []
    prev = in_dim
    for h in check_hidden(hidden_dims):
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

    def log_prob(self, value: torch.Tensor, given: torch.Tensor) -> torch.Tensor:
        r""":math:`\log \mathcal N(\text{value}; \mu(\text{given}), \operatorname{diag}\sigma^2(\text{given}))`, summed over the last axis."""
        mu, logvar = self(given)
        return gaussian_log_prob(value.expand_as(mu), mu, logvar)

    def mean(self, given: torch.Tensor) -> torch.Tensor:
        return self(given)[0]

    def sample(self, given: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        mu, logvar = self(given)
        return mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator, device=mu.device,
                                                            dtype=mu.dtype)

    def export(self) -> tuple[nn.Sequential, str]:
        """A float32 CPU copy of the network cut to the mean rows, and ``"identity"`` (it gives the mean)."""
        net = copy.deepcopy(self.net).cpu().float()
        last = net[-1]
        mean_layer = nn.Linear(last.in_features, self.out_dim)
        with torch.no_grad():
            mean_layer.weight.copy_(last.weight[: self.out_dim])
            mean_layer.bias.copy_(last.bias[: self.out_dim])
        net[-1] = mean_layer
        return net, "identity"


class BernoulliMLP(nn.Module):
    """``z -> logits`` of independent Bernoullis (one per pixel)."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dims: Sequence[int] = (400,), activation: str = "tanh"):
        super().__init__()
        self.out_dim = out_dim
        self.net = mlp(in_dim, hidden_dims, out_dim, activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)

    def log_prob(self, value: torch.Tensor, given: torch.Tensor) -> torch.Tensor:
        r""":math:`\log \mathrm{Bernoulli}(\text{value}; \sigma(\text{logits}(\text{given})))` summed over pixels
        (grey values in [0, 1] give the cross-entropy)."""
        return bernoulli_log_prob(value, self(given))

    def mean(self, given: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(given))

    def sample(self, given: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return sample_bernoulli(self.mean(given), generator)

    def export(self) -> tuple[nn.Sequential, str]:
        """A float32 CPU copy of the network (it gives logits), and ``"sigmoid"``."""
        return copy.deepcopy(self.net).cpu().float(), "sigmoid"


#: the decoders :math:`p_\theta(x|z)` by likelihood name: ``DECODERS[likelihood](latent_dim, data_dim, hidden, activation)``.
DECODERS = {"bernoulli": BernoulliMLP, "gaussian": GaussianMLP}


class Discriminator(nn.Module):
    r"""A small MLP classifier ``z -> logit`` for the density-ratio trick.

    Trained with :meth:`ratio_loss` to tell samples of a distribution :math:`q` (label 1, the
    *numerator*) from samples of :math:`p` (label 0, the *denominator*), in equal numbers. The
    Bayes-optimal classifier then has :math:`\sigma(T(z)) = q(z) / (q(z) + p(z))`, i.e. the logit

    .. math:: T^*(z) = \log\frac{q(z)}{p(z)},

    so the trained logit estimates the log density ratio (with this sign: numerator = label 1).
    Used by :class:`~vae_core.models.implicit_prior.ImplicitPriorVAE` (:math:`q(z)` against
    :math:`\mathcal N(0, I)`) and :class:`~vae_core.models.factor_vae.FactorVAE` (:math:`q(z)`
    against :math:`\prod_j q(z_j)`). Kim & Mnih (2018) use 6 layers of 1000 units; two of 256 suffice
    for the book's small latent spaces.

    Args:
        in_dim: the latent size d.
        hidden_dims: hidden layer sizes.
        activation: as :func:`mlp` (``"relu"``, ``"tanh"``, ``"softplus"``, ``"elu"``).
    """

    def __init__(self, in_dim: int, hidden_dims: Sequence[int] | int = (256, 256), activation: str = "relu"):
        super().__init__()
        self.in_dim = check_positive_int("in_dim", in_dim)
        self.net = mlp(in_dim, hidden_dims, 1, activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """The logits :math:`T(z)`, shape ``z.shape[:-1]`` (one per latent vector)."""
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"z must be a torch.Tensor, got {type(z).__name__}.")
        if z.dim() == 0 or z.shape[-1] != self.in_dim:
            raise ValueError(f"z must have last dimension in_dim={self.in_dim}, got shape {tuple(z.shape)}.")
        return self.net(z).squeeze(-1)

    def ratio_loss(self, z_numerator: torch.Tensor, z_denominator: torch.Tensor) -> torch.Tensor:
        r"""Binary cross-entropy with label 1 for ``z_numerator`` (:math:`\sim q`) and 0 for
        ``z_denominator`` (:math:`\sim p`), each class averaged on its own and the two averaged:

        .. math:: -\tfrac12\,\mathbb E_q[\log\sigma(T(z))] - \tfrac12\,\mathbb E_p[\log(1-\sigma(T(z)))].

        Weighting the classes equally is what makes the optimal logit :math:`\log q/p` with no
        :math:`\log(n_q/n_p)` offset, whatever the two batch sizes. Pass *detached* latents when the
        encoder must not learn from this loss.
        """
        t_num, t_den = self(z_numerator), self(z_denominator)
        return 0.5 * (nn.functional.softplus(-t_num).mean() + nn.functional.softplus(t_den).mean())


__all__ += ["Discriminator"]
