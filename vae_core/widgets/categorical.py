r"""The categorical code explorer (chapter 12): choose a class for every latent variable, see the image.

A :class:`~vae_core.models.CategoricalVAE` decodes a code of :math:`N` categorical variables with
:math:`K` classes each, fed to its decoder as :math:`N` one-hot vectors. :class:`CategoricalExplorer`
shows a grid of :math:`N \times K` cells; clicking a cell sets that variable's class and the decoder,
running in the browser from exported weights (``static/categorical_explorer.js``), redraws the image.
A strip of thumbnails shows the image for each class of the chosen variable. Nothing calls back into
Python, so it works on the static website too.
"""
from __future__ import annotations

import math
from typing import Sequence

import anywidget
import numpy as np
import traitlets
from torch import nn

from .export import decode_image, export_mlp
from .frontend import esm_source

__all__ = ["CategoricalExplorer", "one_hot_code"]


def one_hot_code(codes, n_categories: int) -> np.ndarray:
    """Class indices ``(N,)`` (or ``(n, N)``) to the flattened one-hot decoder input ``(N*K,)`` (or ``(n, N*K)``)."""
    c = np.asarray(codes)
    if c.size and (not np.issubdtype(c.dtype, np.integer) or c.min() < 0 or c.max() >= n_categories):
        raise ValueError(f"codes must be class indices in 0..{n_categories - 1}, got {codes!r}.")
    out = np.eye(n_categories)[c.astype(int)]
    return out.reshape(*c.shape[:-1], -1)


class CategoricalExplorer(anywidget.AnyWidget):
    """A grid of classes, one row per categorical variable, and the decoded image, computed in the browser.

    Args:
        decoder: an ``nn.Sequential`` MLP from the flattened one-hot code (``N*K`` inputs) to pixel
            logits, e.g. ``model.mean_decoder()[0]``.
        n_latents: :math:`N`; ``n_latents * n_categories`` must equal the decoder's input size.
        n_categories: :math:`K`.
        image_shape: ``(height, width)``.
        initial: the starting code (``N`` class indices); default all zeros. "reset" returns here.
        title, scale, colors: as :class:`~vae_core.widgets.LatentExplorer`.

    The current code is the synced trait ``codes`` (a list of ints).
    """

    _esm = esm_source("categorical_explorer.js")

    spec = traitlets.Dict().tag(sync=True)
    n_latents = traitlets.Int(1).tag(sync=True)
    n_categories = traitlets.Int(2).tag(sync=True)
    image_shape = traitlets.List(traitlets.Int()).tag(sync=True)
    initial = traitlets.List(traitlets.Int()).tag(sync=True)
    codes = traitlets.List(traitlets.Int()).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    scale = traitlets.Int(8).tag(sync=True)
    colors = traitlets.Unicode("ink").tag(sync=True)

    def __init__(self, decoder: nn.Module, n_latents: int, n_categories: int,
                 image_shape: Sequence[int] = (28, 28), initial: Sequence[int] | None = None,
                 title: str = "Categorical code explorer", scale: int | None = None, colors: str = "ink",
                 **kwargs):
        spec = export_mlp(decoder)
        for name, v in (("n_latents", n_latents), ("n_categories", n_categories)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}.")
        if n_latents * n_categories != spec["in_features"]:
            raise ValueError(f"n_latents * n_categories = {n_latents} * {n_categories} = {n_latents * n_categories} "
                             f"must equal the decoder's input size {spec['in_features']} (one-hot codes, flattened).")
        try:
            shape = [int(s) for s in image_shape]
        except TypeError:
            raise TypeError(f"image_shape must be a (height, width) pair, got {image_shape!r}.") from None
        if len(shape) != 2 or min(shape) < 1 or shape[0] * shape[1] != spec["out_features"]:
            raise ValueError(f"image_shape must be (height, width) with height*width = {spec['out_features']} "
                             f"(the decoder's outputs), got {image_shape!r}.")
        if initial is None:
            initial = [0] * n_latents
        initial = [int(v) for v in (initial.tolist() if hasattr(initial, "tolist") else initial)]
        if len(initial) != n_latents or not all(0 <= v < n_categories for v in initial):
            raise ValueError(f"initial must be {n_latents} class indices in 0..{n_categories - 1}, got {initial!r}.")
        if colors not in ("ink", "grey"):
            raise ValueError(f"colors must be 'ink' or 'grey', got {colors!r}.")
        if scale is None:
            scale = max(1, round(196 / max(shape)))
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale must be a positive int, got {scale!r}.")
        super().__init__(spec=spec, n_latents=n_latents, n_categories=n_categories, image_shape=shape,
                         initial=initial, codes=list(initial), title=str(title), scale=scale, colors=colors,
                         **kwargs)

    @classmethod
    def from_model(cls, model, image_shape: Sequence[int] | None = None, **kwargs) -> "CategoricalExplorer":
        """The explorer of a :class:`~vae_core.models.CategoricalVAE` (uses its ``mean_decoder()``)."""
        if not hasattr(model, "n_categories") or not callable(getattr(model, "mean_decoder", None)):
            raise TypeError(f"expected a model with categorical latents (n_categories, mean_decoder()), "
                            f"got {type(model).__name__}.")
        net, output = model.mean_decoder()
        if output != "sigmoid":
            raise ValueError(f"the explorer draws Bernoulli decoders (output 'sigmoid'), got {output!r}.")
        if image_shape is None:
            side = math.isqrt(int(model.input_dim))
            if side * side != model.input_dim:
                raise ValueError(f"input_dim={model.input_dim} is not a square image: pass image_shape=(H, W).")
            image_shape = (side, side)
        return cls(net, model.latent_dim, model.n_categories, image_shape=image_shape, **kwargs)

    def image(self, codes=None) -> np.ndarray:
        """The image for ``codes`` (default: the current code), computed in numpy as the browser does."""
        c = self.codes if codes is None else codes
        return decode_image(self.spec, one_hot_code(c, self.n_categories), self.image_shape, "sigmoid")

    def __repr__(self) -> str:
        return (f"CategoricalExplorer(n_latents={self.n_latents}, n_categories={self.n_categories}, "
                f"image_shape={tuple(self.image_shape)})")
