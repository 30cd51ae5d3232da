r"""Explorers that work without a Python kernel.

:class:`LatentExplorer` shows what a decoder draws for a latent code :math:`z`. Its front end
(``static/latent_explorer.js``) runs the decoder itself, in JavaScript, from weights carried in the
widget's state. Nothing calls back into Python when a slider moves, so the same widget works in
Jupyter, in Colab and on the book's static website.

The decoder must be a small MLP: an ``nn.Sequential`` of ``nn.Linear`` layers and element-wise
activations. :func:`export_mlp` turns it into a JSON-serialisable spec (weights as base64-encoded
little-endian float32) and :func:`mlp_forward_numpy` runs that spec in numpy, which is how the tests
check that the exported numbers are the decoder's numbers.

Typical use in a notebook (the explorer must be the value of the cell, or passed to ``display``)::

    from vae_core.widgets import LatentExplorer
    LatentExplorer(model.decoder.net, image_shape=(28, 28), output="sigmoid")
"""
from __future__ import annotations

import math
from typing import Sequence

import anywidget
import numpy as np
import traitlets
from torch import nn

from .export import OUTPUTS, decode_image, export_mlp
from .frontend import static_text

__all__ = ["LatentExplorer"]

_MAX_DEFAULT_SLIDERS = 8


class LatentExplorer(anywidget.AnyWidget):
    """Sliders for latent coordinates and the decoder's image, computed in the browser.

    Args:
        decoder: an ``nn.Sequential`` MLP (see :func:`export_mlp`) whose last layer outputs logits
            (``output="sigmoid"``) or pixel means (``output="identity"``, clamped to [0, 1]).
        latent_dim: the size of ``z``; default: the first Linear layer's ``in_features``.
        image_shape: ``(height, width)``; its product must equal the decoder's output size.
        output: ``"sigmoid"`` or ``"identity"``.
        dims: which coordinates get sliders; default all if ``latent_dim <= 8``, else the first 8.
            The others stay at their ``initial`` value.
        value_range: ``(low, high)`` of every slider.
        initial: the starting ``z`` (length ``latent_dim``); default zeros. "reset" returns here.
        title: a heading shown above the explorer.
        scale: screen pixels per image pixel (nearest-neighbour); default about 224 px wide.
        colors: ``"ink"`` (dark strokes on white, like the book's figures of digits) or ``"grey"``
            (intensity as brightness, for photographs such as faces).

    The current code is the synced trait ``z`` (a list of floats): setting it from Python moves the
    sliders, moving a slider in Jupyter updates it. "random sample from prior" draws the slider
    coordinates from N(0, 1) (clipped to ``value_range``) and keeps the others.
    """

    _esm = static_text("latent_explorer.js")
    _css = static_text("latent_explorer.css")

    spec = traitlets.Dict().tag(sync=True)
    latent_dim = traitlets.Int(2).tag(sync=True)
    image_shape = traitlets.List(traitlets.Int()).tag(sync=True)
    output = traitlets.Unicode("sigmoid").tag(sync=True)
    dims = traitlets.List(traitlets.Int()).tag(sync=True)
    value_range = traitlets.List(traitlets.Float()).tag(sync=True)
    initial = traitlets.List(traitlets.Float()).tag(sync=True)
    z = traitlets.List(traitlets.Float()).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    scale = traitlets.Int(8).tag(sync=True)
    colors = traitlets.Unicode("ink").tag(sync=True)

    def __init__(self, decoder: nn.Module, latent_dim: int | None = None, image_shape: Sequence[int] = (28, 28),
                 output: str = "sigmoid", dims: Sequence[int] | None = None,
                 value_range: Sequence[float] = (-3.0, 3.0), initial: Sequence[float] | None = None,
                 title: str = "Latent explorer", scale: int | None = None, colors: str = "ink",
                 **kwargs):
        spec = export_mlp(decoder)
        d = spec["in_features"]
        if latent_dim is None:
            latent_dim = d
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim != d:
            raise ValueError(f"latent_dim must equal the decoder's input size {d}, got {latent_dim!r}.")
        try:
            shape = [int(s) for s in image_shape]
        except TypeError:
            raise TypeError(f"image_shape must be a (height, width) pair, got {image_shape!r}.") from None
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"image_shape must be a (height, width) pair of positive ints, got {image_shape!r}.")
        if shape[0] * shape[1] != spec["out_features"]:
            raise ValueError(f"image_shape {tuple(shape)} has {shape[0] * shape[1]} pixels but the decoder "
                             f"outputs {spec['out_features']} values.")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}.")
        if dims is None:
            dims = list(range(min(latent_dim, _MAX_DEFAULT_SLIDERS)))
        dims = [int(i) for i in dims]
        if not dims or len(set(dims)) != len(dims) or not all(0 <= i < latent_dim for i in dims):
            raise ValueError(f"dims must be distinct indices in [0, {latent_dim}), got {dims!r}.")
        lo, hi = (float(v) for v in value_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"value_range must be (low, high) with low < high, got {tuple(value_range)!r}.")
        if initial is None:
            initial = [0.0] * latent_dim
        initial = [float(v) for v in (initial.tolist() if hasattr(initial, "tolist") else initial)]
        if len(initial) != latent_dim:
            raise ValueError(f"initial must have {latent_dim} values, got {len(initial)}.")
        if colors not in ("ink", "grey"):
            raise ValueError(f"colors must be 'ink' or 'grey', got {colors!r}.")
        if scale is None:
            scale = max(1, round(224 / max(shape)))
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale must be a positive int, got {scale!r}.")
        super().__init__(spec=spec, latent_dim=latent_dim, image_shape=shape, output=output, dims=dims,
                         value_range=[lo, hi], initial=initial, z=list(initial), title=str(title),
                         scale=scale, colors=colors, **kwargs)

    @classmethod
    def from_model(cls, model, image_shape: Sequence[int] | None = None, **kwargs) -> "LatentExplorer":
        """The explorer of any model's decoder: the one way a model reaches the browser.

        Uses ``model.mean_decoder()``, which returns ``(net, output)``: an ``nn.Sequential`` MLP from
        ``z`` to the decoder's mean (logits with ``output="sigmoid"``, or means with ``"identity"``).
        ``image_shape`` defaults to a square when the model's ``input_dim`` is a perfect square; other
        keyword arguments go to :class:`LatentExplorer`.
        """
        if not callable(getattr(model, "mean_decoder", None)):
            raise TypeError(f"{type(model).__name__} has no mean_decoder() -> (nn.Sequential, output); "
                            f"pass its decoder MLP to LatentExplorer(...) directly.")
        net, output = model.mean_decoder()
        if image_shape is None:
            side = math.isqrt(int(model.input_dim))
            if side * side != model.input_dim:
                raise ValueError(f"input_dim={model.input_dim} is not a square image: pass image_shape=(H, W).")
            image_shape = (side, side)
        return cls(net, image_shape=image_shape, output=output, **kwargs)

    def image(self, z=None) -> np.ndarray:
        """The image for ``z`` (default: the current code), computed in numpy like the browser does."""
        return decode_image(self.spec, self.z if z is None else z, self.image_shape, self.output)

    def __repr__(self) -> str:
        return (f"LatentExplorer(latent_dim={self.latent_dim}, image_shape={tuple(self.image_shape)}, "
                f"output={self.output!r}, dims={self.dims})")
