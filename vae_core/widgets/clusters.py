r"""The cluster explorer of chapter 13 (VaDE), computed in the browser.

:class:`ClusterExplorer` shows what a mixture-prior model draws inside one of its clusters. The reader
picks a cluster :math:`c` (a row of buttons, each showing the decoded cluster mean) and moves sliders
:math:`s_j \in [-3, 3]` measured in that cluster's standard deviations, so the code is

.. math:: z = \mu_c + \sigma_c \odot s .

Everything the page needs is in the widget state: the decoder's weights (from
:func:`~vae_core.widgets.export.export_mlp`) and each cluster's mean and standard deviation. The front
end (``static/cluster_explorer.js``) runs the decoder in JavaScript, so the explorer works on the
static website without a Python kernel. :meth:`ClusterExplorer.code` and :meth:`ClusterExplorer.image`
repeat the browser's arithmetic in numpy for the tests.

Typical use (the explorer must be the value of the cell, or passed to ``display``)::

    from vae_core.widgets import ClusterExplorer
    ClusterExplorer.from_model(vade_model)
"""
from __future__ import annotations

import math
from typing import Sequence

import anywidget
import numpy as np
import traitlets
from torch import nn

from .export import OUTPUTS, decode_image, export_mlp
from .frontend import esm_source

__all__ = ["ClusterExplorer"]

_MAX_DEFAULT_SLIDERS = 8


def _matrix(name: str, value, rows: int | None, cols: int) -> list[list[float]]:
    arr = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != cols or (rows is not None and arr.shape[0] != rows):
        want = f"({rows if rows is not None else 'K'}, {cols})"
        raise ValueError(f"{name} must have shape {want} (one row per cluster), got {arr.shape}.")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite.")
    return arr.tolist()


class ClusterExplorer(anywidget.AnyWidget):
    """Pick a cluster, slide within it: :math:`z = \\mu_c + \\sigma_c \\odot s`, decoded in the browser.

    Args:
        decoder: an ``nn.Sequential`` MLP from ``z`` to logits (``output="sigmoid"``) or pixel means
            (``output="identity"``).
        means, stds: ``(K, d)`` cluster means and standard deviations (``stds`` > 0).
        weights: the mixture weights :math:`\\pi` (``K`` numbers, shown on the buttons); default uniform.
        image_shape: ``(height, width)`` of the decoded image.
        output: ``"sigmoid"`` or ``"identity"``.
        dims: which coordinates get sliders; default all if ``d <= 8``, else the first 8.
        cluster: the cluster shown first. ``value_range``: the sliders' range in standard deviations.
        title, scale, colors: as :class:`~vae_core.widgets.latent.LatentExplorer`.

    Synced traits: ``cluster`` (int) and ``s`` (the slider positions, ``d`` floats).
    """

    _esm = esm_source("cluster_explorer.js")

    spec = traitlets.Dict().tag(sync=True)
    latent_dim = traitlets.Int(2).tag(sync=True)
    n_clusters = traitlets.Int(2).tag(sync=True)
    means = traitlets.List(traitlets.List(traitlets.Float())).tag(sync=True)
    stds = traitlets.List(traitlets.List(traitlets.Float())).tag(sync=True)
    weights = traitlets.List(traitlets.Float()).tag(sync=True)
    image_shape = traitlets.List(traitlets.Int()).tag(sync=True)
    output = traitlets.Unicode("sigmoid").tag(sync=True)
    dims = traitlets.List(traitlets.Int()).tag(sync=True)
    value_range = traitlets.List(traitlets.Float()).tag(sync=True)
    cluster = traitlets.Int(0).tag(sync=True)
    s = traitlets.List(traitlets.Float()).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    scale = traitlets.Int(8).tag(sync=True)
    colors = traitlets.Unicode("ink").tag(sync=True)

    def __init__(self, decoder: nn.Module, means, stds, weights=None, image_shape: Sequence[int] = (28, 28),
                 output: str = "sigmoid", dims: Sequence[int] | None = None, cluster: int = 0,
                 value_range: Sequence[float] = (-3.0, 3.0), title: str = "Cluster explorer",
                 scale: int | None = None, colors: str = "ink", **kwargs):
        spec = export_mlp(decoder)
        d = spec["in_features"]
        means = _matrix("means", means, None, d)
        K = len(means)
        stds = _matrix("stds", stds, K, d)
        if min(min(r) for r in stds) <= 0:
            raise ValueError("stds must be > 0 (standard deviations, not log-variances).")
        if weights is None:
            weights = [1.0 / K] * K
        weights = [float(w) for w in np.asarray(weights.detach().cpu() if hasattr(weights, "detach") else weights,
                                                dtype=np.float64).ravel()]
        if len(weights) != K or min(weights) < 0 or not math.isclose(sum(weights), 1.0, abs_tol=1e-4):
            raise ValueError(f"weights must be {K} non-negative numbers summing to 1, got {weights!r}.")
        try:
            shape = [int(v) for v in image_shape]
        except TypeError:
            raise TypeError(f"image_shape must be a (height, width) pair, got {image_shape!r}.") from None
        if len(shape) != 2 or min(shape) < 1 or shape[0] * shape[1] != spec["out_features"]:
            raise ValueError(f"image_shape must be (height, width) with height*width = {spec['out_features']} "
                             f"(the decoder's outputs), got {image_shape!r}.")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}.")
        if dims is None:
            dims = list(range(min(d, _MAX_DEFAULT_SLIDERS)))
        dims = [int(i) for i in dims]
        if not dims or len(set(dims)) != len(dims) or not all(0 <= i < d for i in dims):
            raise ValueError(f"dims must be distinct indices in [0, {d}), got {dims!r}.")
        if isinstance(cluster, bool) or not isinstance(cluster, (int, np.integer)) or not 0 <= cluster < K:
            raise ValueError(f"cluster must be an int in [0, {K}), got {cluster!r}.")
        lo, hi = (float(v) for v in value_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < 0 < hi):
            raise ValueError(f"value_range must be (low, high) with low < 0 < high, got {tuple(value_range)!r}.")
        if colors not in ("ink", "grey"):
            raise ValueError(f"colors must be 'ink' or 'grey', got {colors!r}.")
        if scale is None:
            scale = max(1, round(196 / max(shape)))
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale must be a positive int, got {scale!r}.")
        super().__init__(spec=spec, latent_dim=d, n_clusters=K, means=means, stds=stds, weights=weights,
                         image_shape=shape, output=output, dims=dims, value_range=[lo, hi], cluster=int(cluster),
                         s=[0.0] * d, title=str(title), scale=scale, colors=colors, **kwargs)

    @classmethod
    def from_model(cls, model, image_shape: Sequence[int] | None = None, **kwargs) -> "ClusterExplorer":
        """The explorer of a mixture-prior model such as :class:`~vae_core.models.VaDE`: its
        ``mean_decoder()``, ``cluster_means``, ``cluster_logvars`` and ``pi``."""
        for attr in ("mean_decoder", "cluster_means", "cluster_logvars", "pi"):
            if not hasattr(model, attr):
                raise TypeError(f"{type(model).__name__} has no {attr}: ClusterExplorer.from_model needs a "
                                f"mixture-prior model such as VaDE.")
        net, output = model.mean_decoder()
        if image_shape is None:
            side = math.isqrt(int(model.input_dim))
            if side * side != model.input_dim:
                raise ValueError(f"input_dim={model.input_dim} is not a square image: pass image_shape=(H, W).")
            image_shape = (side, side)
        means = model.cluster_means.detach()
        stds = (0.5 * model.cluster_logvars.detach()).exp()
        return cls(net, means, stds, weights=model.pi.detach(), image_shape=image_shape, output=output, **kwargs)

    def code(self, cluster: int | None = None, s=None) -> np.ndarray:
        """``z = means[cluster] + stds[cluster] * s`` (defaults: the current cluster and sliders)."""
        c = self.cluster if cluster is None else int(cluster)
        s = np.asarray(self.s if s is None else s, dtype=np.float64)
        return np.asarray(self.means[c]) + np.asarray(self.stds[c]) * s

    def image(self, cluster: int | None = None, s=None) -> np.ndarray:
        """The image the browser draws for ``(cluster, s)``, computed in numpy."""
        return decode_image(self.spec, self.code(cluster, s), self.image_shape, self.output)

    def __repr__(self) -> str:
        return (f"ClusterExplorer(n_clusters={self.n_clusters}, latent_dim={self.latent_dim}, "
                f"image_shape={tuple(self.image_shape)}, cluster={self.cluster})")
