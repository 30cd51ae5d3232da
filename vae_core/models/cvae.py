r"""The conditional VAE (Sohn et al., 2015), chapter 10.

A label :math:`y` (one of ``n_classes``) is given with every image. Encoder :math:`q_\phi(z|x, y)` and
decoder :math:`p_\theta(x|z, y)` are the VAE's MLPs with the one-hot label appended to their input;
the prior is :math:`p(z|y) = \mathcal N(0, I)` for every class. The bound is

.. math:: \log p(x|y) \ge \mathbb E_{q(z|x,y)}[\log p(x|z,y)] - \mathrm{KL}(q(z|x,y)\,\|\,p(z|y)).

The semi-supervised M2, where the label may be missing, is :mod:`vae_core.models.m2`.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .._validate import check_hidden, check_positive_int
from ..distributions import gaussian_log_prob, kl_normal_standard
from ..estimators import reparameterize
from ..nets import DECODERS, GaussianMLP
from ..priors import StandardNormal
from .base import Batch, LatentVariableModel, Output
from .vae import LIKELIHOODS

__all__ = ["CVAE", "UNLABELLED", "one_hot", "check_labels"]

#: the label that marks an unlabelled example in an :class:`~vae_core.models.m2.M2` batch.
UNLABELLED = -1


def check_labels(y, n: int, n_classes: int, allow_unlabelled: bool = False, model: str = "CVAE") -> torch.Tensor:
    """``y`` must be an int tensor ``(n,)`` with values in ``0..n_classes-1`` (or ``-1`` when allowed)."""
    if y is None:
        raise ValueError(f"{model} needs labels: pass Batch(x, y) with y an int tensor of shape ({n},) and values "
                         f"in 0..{n_classes - 1}, or train on a data set that has labels (fit(model, (x, y))).")
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"labels y must be a torch.Tensor of ints, got {type(y).__name__}; "
                        f"convert with torch.as_tensor(y, dtype=torch.long).")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"labels y must be integers (class indices), got dtype {y.dtype}; use y.long() "
                        f"(or y.argmax(-1) for one-hot labels).")
    if y.shape != (n,):
        raise ValueError(f"labels y must have shape ({n},), one class index per image, got {tuple(y.shape)}.")
    low = UNLABELLED if allow_unlabelled else 0
    if n and (int(y.min()) < low or int(y.max()) >= n_classes):
        allowed = f"0..{n_classes - 1}" + (f", or {UNLABELLED} for an unlabelled image" if allow_unlabelled else "")
        raise ValueError(f"labels y must be in {allowed} (n_classes={n_classes}), got values from {int(y.min())} "
                         f"to {int(y.max())}; build the model with n_classes large enough, or map the labels "
                         f"to 0..n_classes-1.")
    return y.long()


def one_hot(y: torch.Tensor, n_classes: int, like: torch.Tensor) -> torch.Tensor:
    """One-hot rows ``(B, n_classes)`` of the labels ``y``, with ``like``'s dtype and device."""
    return nn.functional.one_hot(y, n_classes).to(dtype=like.dtype, device=like.device)


class CVAE(LatentVariableModel):
    """A conditional VAE: encoder ``[x, onehot(y)] -> (mu, logvar)``, decoder ``[z, onehot(y)] -> p(x|z, y)``.

    Args:
        input_dim: number of pixels D.
        latent_dim: size d of the "style" code z.
        n_classes: number of labels C; batches must carry ``y`` with values in ``0..C-1``.
        hidden_dims, likelihood, activation: as :class:`~vae_core.models.vae.VAE`.

    Settings (:func:`vae_core.fit` may set or schedule them): ``beta`` (the KL weight) and
    ``n_samples``; the KL is in closed form. With ``n_classes=1`` the label is a constant input and
    the model is a VAE (a test checks it). :meth:`mean_decoder` exports the decoder, whose input is
    ``[z, onehot(y)]`` (length ``latent_dim + n_classes``): the browser appends the one-hot label to
    the style code.
    """

    settings = {"beta": 1.0, "n_samples": 1}
    uses_labels = True

    def __init__(self, input_dim: int, latent_dim: int, n_classes: int = 10, hidden_dims: Sequence[int] | int = (400,),
                 likelihood: str = "bernoulli", activation: str = "tanh"):
        super().__init__()
        self.input_dim = check_positive_int("input_dim", input_dim)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.n_classes = check_positive_int("n_classes", n_classes)
        hidden = check_hidden(hidden_dims)
        if likelihood not in DECODERS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}.")
        self.likelihood = likelihood
        self.encoder = GaussianMLP(input_dim + n_classes, latent_dim, hidden, activation)                  # q(z|x, y)
        self.decoder = DECODERS[likelihood](latent_dim + n_classes, input_dim, hidden[::-1], activation)   # p(x|z, y)
        self.prior = StandardNormal(latent_dim)                                                             # p(z|y)

    # -- labels ---------------------------------------------------------------------------------
    def labelled(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of a batch, the labels checked (see :func:`check_labels`)."""
        batch = self.as_batch(batch)
        return batch.x, check_labels(batch.y, len(batch.x), self.n_classes, model=type(self).__name__)

    def with_label(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``[h, onehot(y)]``, the input of the networks; ``h`` may carry leading sample dimensions."""
        onehot = one_hot(y, self.n_classes, h)
        return torch.cat([h, onehot.expand(*h.shape[:-1], self.n_classes)], -1)

    # -- the two networks -----------------------------------------------------------------------
    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``q(z|x, y)``: ``(x (B, D), y (B,)) -> (mu, logvar)``, each ``(B, d)``."""
        return self.encoder(self.with_label(x, y))

    def decode_mean(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mean of ``p(x|z, y)`` (pixel probabilities, or the Gaussian mean); ``z`` is ``(..., B, d)``."""
        return self.decoder.mean(self.with_label(z, y))

    # -- the objective --------------------------------------------------------------------------
    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> Output:
        """``loss = -mean(recon - beta * kl)``; ``elbo = recon - kl``, the bound on log p(x|y)."""
        x, y = self.labelled(batch)
        mu, logvar = self.encode(x, y)                                            # q(z|x, y)
        z = reparameterize(mu, logvar, self.n_samples, generator)                 # (L, B, d)
        recon = self.decoder.log_prob(x, self.with_label(z, y)).mean(0)           # E_q log p(x|z, y)
        kl = kl_normal_standard(mu, logvar)                                       # KL(q(z|x, y) || N(0, I))
        return Output(loss=-(recon - self.beta * kl).mean(), elbo=recon - kl, terms={"recon": recon, "kl": kl})

    def log_weights(self, batch: Batch, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""``log p(x|z_k, y) + log p(z_k) - log q(z_k|x, y)`` at ``z_k ~ q(z|x, y)``, shape ``(K, B)``:
        importance weights for :math:`\log p(x|y)`."""
        x, y = self.labelled(batch)
        mu, logvar = self.encode(x, y)
        z = reparameterize(mu, logvar, n_samples, generator)
        return self.decoder.log_prob(x, self.with_label(z, y)) + self.prior.log_prob(z) - gaussian_log_prob(z, mu, logvar)

    # -- generation -----------------------------------------------------------------------------
    def sample_labels(self, n: int, y, generator: torch.Generator | None, device) -> torch.Tensor:
        """The labels of :meth:`sample`: ``y=None`` the classes in turn (0, 1, ..., C-1, 0, ...), an int
        that class ``n`` times, or ``n`` labels (checked)."""
        if y is None:
            return torch.arange(n, device=device) % self.n_classes
        if isinstance(y, torch.Generator):
            raise TypeError("sample(n, y=None, generator=None): pass the generator by name, generator=...")
        if isinstance(y, int) and not isinstance(y, bool):
            y = torch.full((n,), y, dtype=torch.long)
        return check_labels(y, n, self.n_classes, model=type(self).__name__).to(device)

    @torch.no_grad()
    def sample(self, n: int, y=None, generator: torch.Generator | None = None, mean: bool = True,
               z: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` images of the classes ``y`` (an int, an int tensor ``(n,)``, or ``None``: see
        :meth:`sample_labels`): the style ``z ~ N(0, I)`` unless a code ``z`` ``(n, d)`` is given,
        decoded to the mean image (default) or a draw of ``p(x|z, y)``."""
        if z is None:
            z = self.prior.sample(n, generator)
        elif z.shape != (check_positive_int("n", n), self.latent_dim):
            raise ValueError(f"z must have shape ({n}, {self.latent_dim}), got {tuple(z.shape)}.")
        given = self.with_label(z, self.sample_labels(n, y, generator, z.device))
        return self.decoder.mean(given) if mean else self.decoder.sample(given, generator)
