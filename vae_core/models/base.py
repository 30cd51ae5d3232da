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
  It is recorded automatically from the call of the model's constructor.

A model built from a ``decoder`` (with ``mean``, ``sample`` and ``export``, :mod:`vae_core.nets`) and a
``prior`` (with ``sample``, :mod:`vae_core.priors`) inherits :meth:`~LatentVariableModel.sample` and
:meth:`~LatentVariableModel.mean_decoder` from the base class.

A class declares in ``settings`` the training settings (with their defaults) that ``fit`` may set or
schedule, for instance ``{"beta": 1.0}``; ``fit`` refuses any other name, so a setting a model does
not use cannot be set on it by mistake.
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field

import torch
from torch import nn

from .._validate import check_finite, check_nonnegative_float, check_positive_int, check_tensor
from ..gumbel import check_tau
from ..objectives import KL_MODES

__all__ = ["Batch", "Output", "LatentVariableModel"]


@dataclass
class Batch:
    """What ``fit`` hands a model: images ``x`` of shape ``(B, D)`` and, when known, labels ``y`` ``(B,)``."""
    x: torch.Tensor
    y: torch.Tensor | None = None

    def __post_init__(self):
        check_tensor("x", self.x, min_dim=2)
        if self.x.dim() != 2:
            raise ValueError(f"x must have shape (batch, pixels) (flattened images), got {tuple(self.x.shape)}; "
                             f"use x.view(len(x), -1).")
        check_finite("x", self.x)

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

    Subclasses set ``self.input_dim`` and ``self.latent_dim``, and implement :meth:`loss` and
    :meth:`log_weights`; with a ``self.decoder`` and a ``self.prior`` they inherit :meth:`sample` and
    :meth:`mean_decoder`. ``self.config`` is recorded from the constructor's arguments.
    """

    #: the training settings ``fit`` may set or schedule, with their defaults (set on every instance).
    settings: dict = {}
    #: whether the model uses the labels ``batch.y`` (conditional and semi-supervised models).
    uses_labels: bool = False
    #: whether the model also learns from unlabelled images (``y = -1``): the command line's ``--labels``.
    semi_supervised: bool = False

    config: dict
    input_dim: int
    latent_dim: int

    def __init_subclass__(cls, **kwargs):
        """Wrap the subclass's ``__init__`` so that the outermost call records ``self.config``."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self, *args, **kw):
            init(self, *args, **kw)
            if type(self).__init__ is recording_init:       # the model's own class, not a super() call
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                self.config = {k: _jsonable(v) for k, v in list(bound.arguments.items())[1:]}

        cls.__init__ = recording_init

    def __init__(self):
        super().__init__()
        for name, value in self.settings.items():
            setattr(self, name, value)

    def __setattr__(self, name, value):
        if name in SETTING_CHECKS and name in type(self).settings:
            value = SETTING_CHECKS[name](name, value)
        super().__setattr__(name, value)

    # -- the contract ---------------------------------------------------------------------------
    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> Output:
        raise NotImplementedError(f"{type(self).__name__} must implement loss(batch, generator) -> Output.")

    def log_weights(self, batch: Batch, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement log_weights(batch, n_samples, "
                                  f"generator) -> (K, B) tensor of log p(x, z) - log q(z|x).")

    @torch.no_grad()
    def sample(self, n: int, y=None, generator: torch.Generator | None = None, mean: bool = True,
               **options) -> torch.Tensor:
        """``n`` images: decode codes from :meth:`sample_latent`; the mean image (default) or a draw of p(x|z).

        ``y`` is for conditional models; for this one it must be ``None``. ``options`` go to
        :meth:`sample_latent` (e.g. VaDE's ``cluster=``).
        """
        if isinstance(y, torch.Generator):
            raise TypeError("sample(n, y=None, generator=None): pass the generator by name, generator=...")
        if y is not None:
            raise ValueError(f"{type(self).__name__} is not conditional: sample() takes no labels y.")
        z = self.sample_latent(check_positive_int("n", n), generator, **options)
        return self.decoder.mean(z) if mean else self.decoder.sample(z, generator)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` codes the decoder takes, drawn from the prior."""
        return self.prior.sample(n, generator=generator)

    def mean_decoder(self) -> tuple[nn.Sequential, str]:
        """A float32 CPU copy of the decoder that maps a code to the mean image, and its output map:
        ``"sigmoid"`` (the network gives logits) or ``"identity"`` (it gives the mean). The browser
        explorers run this network."""
        return self.decoder.export()

    def parameter_groups(self) -> dict[str, list]:
        """``{"model": [all parameters]}``; models with a discriminator add ``"discriminator"``."""
        return {"model": list(self.parameters())}

    # -- input checks at the boundary -----------------------------------------------------------
    def check_x(self, x) -> torch.Tensor:
        """``x`` must be a finite float tensor ``(B, input_dim)``; otherwise a clear error."""
        check_tensor("x", x, min_dim=2)
        if x.shape[-1] != self.input_dim:
            raise ValueError(f"x must have shape (batch, {self.input_dim}) (flattened images), "
                             f"got {tuple(x.shape)}; use x.view(len(x), -1).")
        return check_finite("x", x)

    def as_batch(self, batch) -> Batch:
        """Accept a :class:`Batch` or a bare tensor ``x`` (then ``y`` is None); check ``x``'s width."""
        if isinstance(batch, torch.Tensor):
            batch = Batch(batch)
        elif not isinstance(batch, Batch):
            raise TypeError(f"expected a vae_core.models.Batch(x, y) or a tensor x, got {type(batch).__name__}.")
        if batch.x.shape[-1] != self.input_dim:
            raise ValueError(f"x must have shape (batch, {self.input_dim}) (flattened images), "
                             f"got {tuple(batch.x.shape)}; use x.view(len(x), -1).")
        return batch

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in getattr(self, "config", {}).items())


def _check_kl_estimator(name: str, value) -> str:
    if value not in KL_MODES:
        raise ValueError(f"{name} must be one of {KL_MODES}, got {value!r}.")
    return value


#: how each setting's value is checked whenever it is set (by a constructor, by fit, by a schedule).
SETTING_CHECKS = {
    "n_samples": check_positive_int,
    "k": check_positive_int,
    "kl_estimator": _check_kl_estimator,
    "tau": lambda name, value: check_tau(value),
    "capacity": lambda name, value: check_nonnegative_float(name, value, "a capacity in nats"),
    "target_rate": lambda name, value: check_nonnegative_float(name, value, "a rate in nats"),
}


def _jsonable(value):
    """Constructor arguments as JSON-able values (tuples become lists), for ``config``."""
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def parameters_of(*modules: nn.Module) -> list:
    """The parameters of several modules as one list (for :meth:`LatentVariableModel.parameter_groups`)."""
    out: list = []
    for m in modules:
        out.extend(m.parameters())
    return out

