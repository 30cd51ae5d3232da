r"""An explorer of a class-conditional decoder :math:`p(x|z, y)` that works without a Python kernel.

:class:`ConditionalExplorer` shows what a CVAE's (or M2's) decoder draws for a class ``y`` and a
style code ``z``: class buttons choose ``y``, sliders move ``z``, and a strip draws the same ``z`` as
every class (style transfer). The decoder is the MLP whose input is ``[z, onehot(y)]``, exported with
:func:`~vae_core.widgets.export_mlp`; the front end (``static/conditional_explorer.js``) appends the
one-hot label to ``z`` and runs it in JavaScript, so the widget works on the book's static website.

Typical use (the explorer must be the value of the cell, or passed to ``display``)::

    from vae_core.widgets import ConditionalExplorer
    ConditionalExplorer.from_model(cvae, styles={"style of a test 7": z7})
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import anywidget
import numpy as np
import traitlets
from torch import nn

from .export import OUTPUTS, export_mlp, mlp_forward_numpy
from .frontend import esm_source, static_text

__all__ = ["ConditionalExplorer"]

_MAX_DEFAULT_SLIDERS = 8


class ConditionalExplorer(anywidget.AnyWidget):
    """Class buttons, style sliders and the decoder's images, computed in the browser.

    Args:
        decoder: an ``nn.Sequential`` MLP from ``[z, onehot(y)]`` (length ``latent_dim + n_classes``)
            to logits (``output="sigmoid"``) or pixel means (``output="identity"``).
        n_classes: the number C of classes; ``latent_dim`` is the decoder's input size minus C.
        image_shape: ``(height, width)``; its product must equal the decoder's output size.
        output: ``"sigmoid"`` or ``"identity"``.
        class_names: a name per class for the buttons (default ``"0"``, ``"1"``, ...).
        label: the class shown first.
        dims: which coordinates of z get sliders (default: all if at most 8, else the first 8).
        value_range: ``(low, high)`` of every slider.
        initial: the starting ``z`` (default zeros); "reset" returns to it and to ``label``.
        styles: ``{name: z}``, style codes offered as buttons (e.g. the codes of real images
            encoded by ``q(z|x, y)``: the browser then redraws that handwriting as every class).
        title, scale, colors: as :class:`~vae_core.widgets.LatentExplorer`.

    The current class and code are the synced traits ``label`` and ``z``.
    """

    _esm = esm_source("conditional_explorer.js")
    _css = static_text("conditional_explorer.css")

    spec = traitlets.Dict().tag(sync=True)
    latent_dim = traitlets.Int(2).tag(sync=True)
    n_classes = traitlets.Int(10).tag(sync=True)
    class_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    label = traitlets.Int(0).tag(sync=True)
    initial_label = traitlets.Int(0).tag(sync=True)
    image_shape = traitlets.List(traitlets.Int()).tag(sync=True)
    output = traitlets.Unicode("sigmoid").tag(sync=True)
    dims = traitlets.List(traitlets.Int()).tag(sync=True)
    value_range = traitlets.List(traitlets.Float()).tag(sync=True)
    initial = traitlets.List(traitlets.Float()).tag(sync=True)
    z = traitlets.List(traitlets.Float()).tag(sync=True)
    styles = traitlets.List(traitlets.Dict()).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    scale = traitlets.Int(8).tag(sync=True)
    colors = traitlets.Unicode("ink").tag(sync=True)

    def __init__(self, decoder: nn.Module, n_classes: int, image_shape: Sequence[int] = (28, 28),
                 output: str = "sigmoid", class_names: Sequence[str] | None = None, label: int = 0,
                 dims: Sequence[int] | None = None, value_range: Sequence[float] = (-3.0, 3.0),
                 initial: Sequence[float] | None = None, styles: Mapping[str, Sequence[float]] | None = None,
                 title: str = "Conditional explorer", scale: int | None = None, colors: str = "ink", **kwargs):
        spec = export_mlp(decoder)
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1:
            raise TypeError(f"n_classes must be a positive int, got {n_classes!r}.")
        latent_dim = spec["in_features"] - n_classes
        if latent_dim < 1:
            raise ValueError(f"the decoder takes {spec['in_features']} inputs, which cannot be [z, onehot(y)] with "
                             f"n_classes={n_classes}: expected latent_dim + n_classes inputs.")
        try:
            shape = [int(s) for s in image_shape]
        except TypeError:
            raise TypeError(f"image_shape must be a (height, width) pair, got {image_shape!r}.") from None
        if len(shape) != 2 or min(shape) < 1 or shape[0] * shape[1] != spec["out_features"]:
            raise ValueError(f"image_shape must be (height, width) with height * width = {spec['out_features']} "
                             f"(the decoder's outputs), got {image_shape!r}.")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}.")
        names = [str(k) for k in range(n_classes)] if class_names is None else [str(c) for c in class_names]
        if len(names) != n_classes:
            raise ValueError(f"class_names must have {n_classes} names, got {len(names)}.")
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < n_classes:
            raise ValueError(f"label must be a class index in 0..{n_classes - 1}, got {label!r}.")
        dims = list(range(min(latent_dim, _MAX_DEFAULT_SLIDERS))) if dims is None else [int(i) for i in dims]
        if not dims or len(set(dims)) != len(dims) or not all(0 <= i < latent_dim for i in dims):
            raise ValueError(f"dims must be distinct indices in [0, {latent_dim}), got {dims!r}.")
        lo, hi = (float(v) for v in value_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"value_range must be (low, high) with low < high, got {tuple(value_range)!r}.")
        initial = self._code("initial", [0.0] * latent_dim if initial is None else initial, latent_dim)
        style_list = [{"name": str(name), "z": self._code(f"styles[{name!r}]", z, latent_dim)}
                      for name, z in (styles or {}).items()]
        if colors not in ("ink", "grey"):
            raise ValueError(f"colors must be 'ink' or 'grey', got {colors!r}.")
        if scale is None:
            scale = max(1, round(196 / max(shape)))
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale must be a positive int, got {scale!r}.")
        super().__init__(spec=spec, latent_dim=latent_dim, n_classes=n_classes, class_names=names, label=label,
                         initial_label=label, image_shape=shape, output=output, dims=dims, value_range=[lo, hi],
                         initial=initial, z=list(initial), styles=style_list, title=str(title), scale=scale,
                         colors=colors, **kwargs)

    @staticmethod
    def _code(name: str, values, latent_dim: int) -> list[float]:
        values = values.tolist() if hasattr(values, "tolist") else values
        out = [float(v) for v in values]
        if len(out) != latent_dim or not all(math.isfinite(v) for v in out):
            raise ValueError(f"{name} must be {latent_dim} finite numbers (a style code z), got {len(out)} values.")
        return out

    @classmethod
    def from_model(cls, model, image_shape: Sequence[int] | None = None, **kwargs) -> "ConditionalExplorer":
        """The explorer of a conditional model (:class:`~vae_core.models.CVAE`, :class:`~vae_core.models.M2`):
        its ``mean_decoder()`` takes ``[z, onehot(y)]``. ``image_shape`` defaults to a square."""
        if not getattr(model, "uses_labels", False) or not callable(getattr(model, "mean_decoder", None)):
            raise TypeError(f"{type(model).__name__} is not a conditional model with a mean_decoder(); "
                            f"for an unconditional decoder use LatentExplorer.from_model.")
        net, output = model.mean_decoder()
        if image_shape is None:
            side = math.isqrt(int(model.input_dim))
            if side * side != model.input_dim:
                raise ValueError(f"input_dim={model.input_dim} is not a square image: pass image_shape=(H, W).")
            image_shape = (side, side)
        return cls(net, n_classes=model.n_classes, image_shape=image_shape, output=output, **kwargs)

    def image(self, label: int | None = None, z=None) -> np.ndarray:
        """The image for class ``label`` and style ``z`` (default: the current ones), computed in numpy
        as the browser does: intensities in [0, 1] of shape ``image_shape``."""
        label = self.label if label is None else int(label)
        if not 0 <= label < self.n_classes:
            raise ValueError(f"label must be in 0..{self.n_classes - 1}, got {label}.")
        code = np.zeros(self.latent_dim + self.n_classes)
        code[: self.latent_dim] = self.z if z is None else z
        code[self.latent_dim + label] = 1.0
        raw = mlp_forward_numpy(self.spec, code)
        out = 0.5 * (1.0 + np.tanh(0.5 * raw)) if self.output == "sigmoid" else np.clip(raw, 0.0, 1.0)
        return out.reshape(self.image_shape)

    def __repr__(self) -> str:
        return (f"ConditionalExplorer(latent_dim={self.latent_dim}, n_classes={self.n_classes}, "
                f"image_shape={tuple(self.image_shape)}, label={self.label})")
