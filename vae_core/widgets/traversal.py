r"""Latent traversals of several models side by side, without a Python kernel.

A *traversal* moves one latent coordinate :math:`z_j` over a range while the others stay at a base
code, and decodes every step. :class:`TraversalExplorer` shows, for each model in a column, one row
per latent dimension, all at the value chosen by one slider: a disentangled model changes one factor
per row. The pictures are computed in Python when the widget is made (``n_values`` steps per row)
and carried in the widget state as 8-bit grey levels, so the page needs no decoder and no kernel.

Typical use::

    TraversalExplorer.from_models({"VAE": vae, "FactorVAE": fvae}, image_shape=(16, 16), base_x=x[0])
"""
from __future__ import annotations

import base64
import math
from typing import Mapping, Sequence

import anywidget
import numpy as np
import torch
import traitlets

from .frontend import esm_source

__all__ = ["TraversalExplorer", "traversal_images"]


def _encode_u8(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).decode("ascii")


def _decode_u8(text: str, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.uint8).reshape(shape)


@torch.no_grad()
def traversal_images(model, base: torch.Tensor, dims: Sequence[int], values: Sequence[float]) -> np.ndarray:
    r"""The model's mean images as :math:`z_j` runs over ``values`` from the code ``base``, for each
    ``j`` in ``dims``: float array ``(len(dims), len(values), input_dim)`` in [0, 1], through
    ``model.mean_decoder()`` (the same map the other explorers export)."""
    net, output = model.mean_decoder()
    base = torch.as_tensor(base, dtype=torch.float32).reshape(-1).cpu()
    values = torch.as_tensor(list(values), dtype=torch.float32)
    z = base.repeat(len(dims), len(values), 1)
    for r, j in enumerate(dims):
        z[r, :, j] = values
    out = net(z)
    out = torch.sigmoid(out) if output == "sigmoid" else out.clamp(0, 1)
    return out.numpy().astype(np.float64)


class TraversalExplorer(anywidget.AnyWidget):
    """One slider, several models' traversals side by side (precomputed pictures, kernel-free).

    Args:
        panels: a list of ``{"name": str, "rows": [row labels], "images": array (rows, n_values, H*W)}``
            with grey levels in [0, 1] (1 = ink); every panel has the same ``n_values``.
        values: the ``n_values`` latent values of the steps, increasing.
        image_shape: ``(height, width)``.
        index: the step shown first (default: the middle one).
        title: a heading. scale: screen pixels per image pixel (default: about 48 px per picture).

    The current step is the synced trait ``index``. :meth:`from_models` builds the panels from models.
    """

    _esm = esm_source("traversal_explorer.js")

    panels = traitlets.List(traitlets.Dict()).tag(sync=True)
    values = traitlets.List(traitlets.Float()).tag(sync=True)
    image_shape = traitlets.List(traitlets.Int()).tag(sync=True)
    index = traitlets.Int(0).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    scale = traitlets.Int(3).tag(sync=True)

    def __init__(self, panels: Sequence[Mapping], values: Sequence[float], image_shape: Sequence[int],
                 index: int | None = None, title: str = "Latent traversals", scale: int | None = None, **kwargs):
        values = [float(v) for v in values]
        if len(values) < 2 or not all(math.isfinite(v) for v in values) or any(b <= a for a, b in zip(values, values[1:])):
            raise ValueError(f"values must be at least two increasing finite numbers, got {values!r}.")
        shape = [int(s) for s in image_shape]
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"image_shape must be a (height, width) pair of positive ints, got {image_shape!r}.")
        if not panels:
            raise ValueError("panels must hold at least one model's traversals.")
        state = []
        for p in panels:
            images = np.asarray(p["images"], dtype=np.float64)
            rows = [str(r) for r in p["rows"]]
            if images.shape != (len(rows), len(values), shape[0] * shape[1]):
                raise ValueError(f"panel {p.get('name')!r}: images must have shape (rows={len(rows)}, "
                                 f"n_values={len(values)}, pixels={shape[0] * shape[1]}), got {images.shape}.")
            if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
                raise ValueError(f"panel {p.get('name')!r}: grey levels must be finite and in [0, 1].")
            state.append({"name": str(p["name"]), "rows": rows,
                          "images": _encode_u8(np.rint(images * 255))})
        if index is None:
            index = len(values) // 2
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(values):
            raise ValueError(f"index must be an int in [0, {len(values)}), got {index!r}.")
        if scale is None:
            scale = max(1, round(48 / max(shape)))
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale must be a positive int, got {scale!r}.")
        super().__init__(panels=state, values=values, image_shape=shape, index=index, title=str(title),
                         scale=scale, **kwargs)

    @classmethod
    def from_models(cls, models: Mapping[str, object], image_shape: Sequence[int], base_x: torch.Tensor | None = None,
                    dims: Mapping[str, Sequence[int]] | None = None, value_range: Sequence[float] = (-3.0, 3.0),
                    n_values: int = 25, **kwargs) -> "TraversalExplorer":
        """Panels from models with ``mean_decoder()`` (and ``encode`` when ``base_x`` is given).

        ``base_x``: one image whose encoder mean is the base code of every traversal (default: the
        prior mean, zeros). ``dims``: per model name, which latent dimensions to show, in order
        (default: all). ``n_values`` steps over ``value_range``.
        """
        if isinstance(n_values, bool) or not isinstance(n_values, int) or n_values < 2:
            raise ValueError(f"n_values must be an int >= 2, got {n_values!r}.")
        lo, hi = (float(v) for v in value_range)
        values = np.linspace(lo, hi, n_values).tolist()
        panels = []
        for name, model in models.items():
            d = int(model.latent_dim)
            if base_x is None:
                base = torch.zeros(d)
            else:
                with torch.no_grad():
                    was = model.training
                    model.eval()
                    base = model.encode(torch.as_tensor(base_x, dtype=torch.float32).reshape(1, -1))[0][0]
                    model.train(was)
            rows = list(range(d)) if dims is None or name not in dims else [int(j) for j in dims[name]]
            panels.append({"name": name, "rows": [f"z[{j}]" for j in rows],
                           "images": traversal_images(model, base, rows, values)})
        return cls(panels, values, image_shape, **kwargs)

    def image(self, panel: int, row: int, index: int | None = None) -> np.ndarray:
        """The grey levels (0..255, 1-D) the page shows for ``panel``, ``row`` at step ``index``."""
        p = self.panels[panel]
        n = len(self.values)
        pixels = self.image_shape[0] * self.image_shape[1]
        arr = _decode_u8(p["images"], (len(p["rows"]), n, pixels))
        return arr[row, self.index if index is None else index]

    def __repr__(self) -> str:
        return (f"TraversalExplorer(models={[p['name'] for p in self.panels]}, steps={len(self.values)}, "
                f"image_shape={tuple(self.image_shape)})")
