r"""The interface every model of the book follows, so that one ``fit`` trains them all.

``fit`` hands a model a :class:`Batch` and asks for an :class:`Output`; it never looks at the
model's type. A model is a :class:`LatentVariableModel` that implements

* :meth:`~LatentVariableModel.loss` ``(batch, generator=None) -> Output``: the scalar to minimise, the
  per-example bound in nats, the per-example terms (at least ``recon`` and ``kl``), and, for models
  with a discriminator, the discriminator's loss computed on *detached* latents;
* :meth:`~LatentVariableModel.log_weights` ``(batch, n_samples, generator=None) -> (K, B)``: the
  log importance weights :math:`\log p(x, z_k) - \log q(z_k|x)` at sampled :math:`z_k \sim q(z|x)`,
  so that :func:`vae_core.evaluate.log_marginal` works for every model;
* :meth:`~LatentVariableModel.sample` ``(n, y=None, generator=None)``: images from the model;
* :meth:`~LatentVariableModel.parameter_groups`: ``{"model": [...]}``, plus ``"discriminator"`` for
  models that train one; ``fit`` makes one optimizer per group;
* ``config``: the constructor arguments, which checkpoints save and ``load_checkpoint`` rebuilds from.

Attributes named in ``schedulable`` (for instance ``beta`` or ``tau``) may be set by ``fit`` once per
epoch from a schedule (:mod:`vae_core.schedules`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
import torch
from torch import nn

from .._checks import check_finite, check_tensor

__all__ = ["Batch", "Output", "LatentVariableModel"]


@dataclass
class Batch:
    """What ``fit`` hands a model: images ``x`` of shape ``(B, D)`` and, when known, labels ``y`` ``(B,)``."""
    x: torch.Tensor
    y: torch.Tensor | None = None

    def to(self, device) -> "Batch":
        return Batch(self.x.to(device), None if self.y is None else self.y.to(device))

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class Output:
    """What a model's :meth:`~LatentVariableModel.loss` returns.

    Attributes:
        loss: the scalar the model's optimizer minimises (a batch mean).
        elbo: the per-example bound in nats, shape ``(B,)``, higher is better: the ELBO, or the model's
            own bound (such as :math:`\\mathcal L_k` for an IWAE). ``History`` reports its mean.
        terms: per-example tensors, at least ``recon`` (:math:`\\mathbb E_q\\log p(x|z)`) and ``kl``;
            ``History`` records the mean of each.
        discriminator_loss: the discriminator's scalar loss, computed on detached latents, or ``None``.
    """
    loss: torch.Tensor
    elbo: torch.Tensor
    terms: dict = field(default_factory=dict)
    discriminator_loss: torch.Tensor | None = None


class LatentVariableModel(nn.Module):
    """Base class of every model in :data:`vae_core.models.MODELS`.

    Subclasses set ``self.config`` (a JSON-able dict of constructor arguments), ``self.input_dim`` and
    ``self.latent_dim``, and implement :meth:`loss`, :meth:`log_weights` and :meth:`sample`.
    """

    #: attributes ``fit(..., schedules={name: schedule})`` may set once per epoch.
    schedulable: tuple[str, ...] = ()
    #: whether the model uses the labels ``batch.y`` (conditional and semi-supervised models).
    uses_labels: bool = False
    #: whether the model also learns from unlabelled images (``y = -1``): the command line's ``--labels``.
    semi_supervised: bool = False

    config: dict
    input_dim: int
    latent_dim: int

    # -- the contract ---------------------------------------------------------------------------
    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> Output:
        raise NotImplementedError(f"{type(self).__name__} must implement loss(batch, generator) -> Output.")

    def log_weights(self, batch: Batch, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement log_weights(batch, n_samples, "
                                  f"generator) -> (K, B) tensor of log p(x, z) - log q(z|x).")

    def sample(self, n: int, y=None, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement sample(n, y, generator).")

    def parameter_groups(self) -> dict[str, list]:
        """``{"model": [all parameters]}``; models with a discriminator add ``"discriminator"``."""
        return {"model": list(self.parameters())}

    # -- shared input checks --------------------------------------------------------------------
    def check_x(self, x) -> torch.Tensor:
        """``x`` must be a finite float tensor ``(B, input_dim)``; otherwise a clear error."""
        check_tensor("x", x, min_dim=2)
        if x.shape[-1] != self.input_dim:
            raise ValueError(f"x must have shape (batch, {self.input_dim}) (flattened images), "
                             f"got {tuple(x.shape)}; use x.view(len(x), -1).")
        return check_finite("x", x)

    def as_batch(self, batch) -> Batch:
        """Accept a :class:`Batch` or a bare tensor ``x`` (then ``y`` is None); check ``x``."""
        if isinstance(batch, torch.Tensor):
            batch = Batch(batch)
        elif not isinstance(batch, Batch):
            raise TypeError(f"expected a vae_core.models.Batch(x, y) or a tensor x, got {type(batch).__name__}.")
        self.check_x(batch.x)
        return batch

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in getattr(self, "config", {}).items())


def parameters_of(*modules: nn.Module) -> list:
    """The parameters of several modules as one list (for :meth:`LatentVariableModel.parameter_groups`)."""
    out: list = []
    for m in modules:
        out.extend(m.parameters())
    return out

