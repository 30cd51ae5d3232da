r"""The decoder explorer: what a decoder draws as the reader moves its input, computed in the browser.

:class:`LatentExplorer` carries a decoder's weights (exported by :func:`~vae_core.widgets.export_mlp`)
in the widget state; its front end (``static/latent.js``) runs the decoder in JavaScript, so the
same widget works in Jupyter, in Colab and on the book's static website. An *input map* says how
the reader's controls become the decoder's input:

========== ============================================== ===================================
input_map  the controls                                   the decoder's input
========== ============================================== ===================================
"z"        sliders for the code                           :math:`z`
"z+label"  class buttons and style sliders (CVAE, M2)     :math:`[z, \mathrm{onehot}(y)]`
"codes"    a class per categorical variable (ch. 12)      :math:`N` one-hot vectors, flattened
"cluster"  a cluster and sliders within it (VaDE)         :math:`\mu_c + \sigma_c \odot s`
========== ============================================== ===================================

:meth:`LatentExplorer.from_model` picks the map for a model (:func:`decoder_inputs` is the one place
that reads a model). Typical use (the explorer must be the value of the cell, or passed to
``display``)::

    from vae_core.widgets import LatentExplorer
    LatentExplorer.from_model(model)
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import traitlets
from torch import nn

from .base import ImageExplorer, SettingError, default_scale, finite_range, image_shape_pair, index_in, plain, validates
from .export import OUTPUTS, export_mlp, mlp_forward_numpy
from .frontend import esm_source, static_text

__all__ = ["LatentExplorer", "decoder_inputs", "one_hot_code", "INPUT_MAPS"]

INPUT_MAPS = ("z", "z+label", "codes", "cluster")

_MAX_DEFAULT_SLIDERS = 8
_TITLES = {"z": "Latent explorer", "z+label": "Conditional explorer", "codes": "Categorical code explorer",
           "cluster": "Cluster explorer"}
# the arguments only one input map takes
_MAP_ARGS = {"z+label": ("n_classes", "class_names"), "codes": ("n_categories",),
             "cluster": ("means", "stds", "weights")}


def one_hot_code(codes, n_categories: int) -> np.ndarray:
    """Class indices ``(N,)`` (or ``(n, N)``) to the flattened one-hot decoder input ``(N*K,)`` (or ``(n, N*K)``)."""
    c = np.asarray(codes)
    if c.size and (not np.issubdtype(c.dtype, np.integer) or c.min() < 0 or c.max() >= n_categories):
        raise ValueError(f"codes must be class indices in 0..{n_categories - 1}, got {codes!r}.")
    return np.eye(n_categories)[c.astype(int)].reshape(*c.shape[:-1], -1)


def decoder_inputs(model) -> dict:
    """How to explore ``model``'s decoder: the keyword arguments of :class:`LatentExplorer` for it.

    This is the one place that reads a model: ``mean_decoder()`` (the decoder's mean as an
    ``nn.Sequential`` and its output map), ``input_dim`` (a square image by default), and what
    the input map needs: ``uses_labels``/``n_classes`` (CVAE, M2: "z+label"), ``n_categories``
    (CategoricalVAE: "codes"), ``cluster_means``/``cluster_logvars``/``pi`` (VaDE: "cluster").
    Any other model gets "z".
    """
    if not callable(getattr(model, "mean_decoder", None)):
        raise TypeError(f"{type(model).__name__} has no mean_decoder() -> (nn.Sequential, output); "
                        f"pass its decoder MLP to LatentExplorer(...) directly.")
    net, output = model.mean_decoder()
    found = {"decoder": net, "output": output, "input_map": "z"}
    side = math.isqrt(int(model.input_dim))
    if side * side == model.input_dim:
        found["image_shape"] = (side, side)
    if getattr(model, "uses_labels", False):
        found.update(input_map="z+label", n_classes=int(model.n_classes))
    elif hasattr(model, "n_categories"):
        found.update(input_map="codes", n_categories=int(model.n_categories))
    elif all(hasattr(model, a) for a in ("cluster_means", "cluster_logvars", "pi")):
        found.update(input_map="cluster", means=model.cluster_means.detach(),
                     stds=(0.5 * model.cluster_logvars.detach()).exp(), weights=model.pi.detach())
    return found


# ------------------------------------------------------------------ the input maps, in Python
# Each map: (number of slider coordinates or variables, the map's fixed data) from the decoder's input
# size; and the decoder's input for a state {z, label, codes, cluster}, as the browser computes it.

def _matrix(name: str, value, rows: int | None, cols: int) -> list[list[float]]:
    arr = np.asarray(plain(value), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != cols or (rows is not None and arr.shape[0] != rows):
        raise SettingError(f"{name} must have shape ({rows if rows is not None else 'K'}, {cols}) "
                           f"(one row per cluster), got {arr.shape}.")
    if not np.isfinite(arr).all():
        raise SettingError(f"{name} must be finite.")
    return arr.tolist()


def _setup_z(n_in, args):
    return n_in, {}


def _setup_label(n_in, args):
    n = args.get("n_classes")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SettingError(f"input_map='z+label' needs n_classes, a positive int, got {n!r}.")
    if n_in - n < 1:
        raise SettingError(f"the decoder takes {n_in} inputs, which cannot be [z, onehot(y)] with n_classes={n}: "
                           f"expected latent_dim + n_classes inputs.")
    names = [str(k) for k in range(n)] if args.get("class_names") is None else [str(c) for c in args["class_names"]]
    if len(names) != n:
        raise SettingError(f"class_names must have {n} names (one per class), got {len(names)}.")
    return n_in - n, {"class_names": names}


def _setup_codes(n_in, args):
    K = args.get("n_categories")
    if isinstance(K, bool) or not isinstance(K, int) or K < 1 or n_in % K:
        raise SettingError(f"input_map='codes' needs n_categories, a positive int that divides the decoder's input "
                           f"size {n_in} (N one-hot codes of K classes, flattened), got {K!r}.")
    return n_in // K, {"n_categories": K}


def _setup_cluster(n_in, args):
    if args.get("means") is None or args.get("stds") is None:
        raise SettingError("input_map='cluster' needs means and stds, (K, d) arrays of the clusters.")
    means = _matrix("means", args["means"], None, n_in)
    K = len(means)
    stds = _matrix("stds", args["stds"], K, n_in)
    if min(min(r) for r in stds) <= 0:
        raise SettingError("stds must be > 0 (standard deviations, not log-variances).")
    weights = [1.0 / K] * K if args.get("weights") is None else np.ravel(plain(args["weights"])).tolist()
    if len(weights) != K or min(weights) < 0 or not math.isclose(sum(weights), 1.0, abs_tol=1e-4):
        raise SettingError(f"weights must be {K} non-negative numbers summing to 1 (the mixture weights), got {weights!r}.")
    return n_in, {"means": means, "stds": stds, "weights": [float(w) for w in weights]}


_SETUP = {"z": _setup_z, "z+label": _setup_label, "codes": _setup_codes, "cluster": _setup_cluster}


def _decoder_input(map_name: str, data: dict, state: dict) -> np.ndarray:
    z = np.asarray(state["z"], dtype=np.float64)
    if map_name == "z":
        return z
    if map_name == "z+label":
        n, label = len(data["class_names"]), state["label"]
        if not 0 <= label < n:
            raise ValueError(f"label must be a class index in 0..{n - 1}, got {label}.")
        return np.concatenate([z, np.eye(n)[label]])
    if map_name == "codes":
        return one_hot_code(np.asarray(state["codes"], dtype=int), data["n_categories"])
    c = state["cluster"]
    return np.asarray(data["means"][c]) + np.asarray(data["stds"][c]) * z


class LatentExplorer(ImageExplorer):
    """The decoder's image for the reader's controls, computed in the browser.

    Args:
        decoder: an ``nn.Sequential`` MLP (see :func:`~vae_core.widgets.export_mlp`) whose last layer
            outputs logits (``output="sigmoid"``) or pixel means (``output="identity"``, clamped to [0, 1]).
        image_shape: ``(height, width)``; its product must equal the decoder's output size.
        output: ``"sigmoid"`` or ``"identity"``.
        input_map: ``"z"``, ``"z+label"``, ``"codes"`` or ``"cluster"`` (see the module); each map
            takes the arguments listed with it below, and only those.
        latent_dim: optional check: the size of ``z`` (``"z"`` only).
        dims: which slider coordinates get sliders; default all if at most 8, else the first 8.
            The others stay at their ``initial`` value. (Not for ``"codes"``.)
        value_range: ``(low, high)`` of every slider (``"cluster"``: in standard deviations, low < 0 < high).
        initial: the starting position: ``z`` (``"z"``, ``"z+label"``), ``s`` (``"cluster"``) or ``N``
            class indices (``"codes"``); default zeros. "reset" returns here.
        styles: ``{name: z}``, codes offered as buttons (``"z"``, ``"z+label"``), e.g. the codes of real
            images encoded by ``q(z|x, y)``: the browser then redraws that handwriting as every class.
        n_classes, class_names, label: ``"z+label"``: the number of classes C (the decoder takes
            ``latent_dim + C`` inputs), a name per class for the buttons, the class shown first.
        n_categories: ``"codes"``: K classes per variable (the decoder takes ``N * K`` inputs).
        means, stds, weights, cluster: ``"cluster"``: ``(K, d)`` cluster means and standard deviations,
            the mixture weights (default uniform), the cluster shown first.
        title: a heading (default: the map's name). scale: screen pixels per image pixel (default:
            about 224 px wide). colors: ``"ink"`` (dark strokes on white, like the book's figures of
            digits) or ``"grey"`` (intensity as brightness, for photographs such as faces).

    Synced traits: ``z`` (the slider positions: ``z``, or ``s`` for ``"cluster"``), ``label``,
    ``codes`` and ``cluster``; setting them from Python moves the controls. :meth:`image` computes
    in numpy what the browser draws.
    """

    _esm = esm_source("latent.js")
    _css = static_text("explorers.css")

    spec = traitlets.Dict().tag(sync=True)
    input_map = traitlets.Unicode("z").tag(sync=True)
    map_data = traitlets.Dict().tag(sync=True)
    latent_dim = traitlets.Int(2).tag(sync=True)
    output = traitlets.Unicode("sigmoid").tag(sync=True)
    dims = traitlets.List(traitlets.Int()).tag(sync=True)
    value_range = traitlets.List(traitlets.Float(), default_value=[-3.0, 3.0]).tag(sync=True)
    styles = traitlets.List(traitlets.Dict()).tag(sync=True)
    initial = traitlets.Dict().tag(sync=True)
    z = traitlets.List(traitlets.Float()).tag(sync=True)
    label = traitlets.Int(0).tag(sync=True)
    codes = traitlets.List(traitlets.Int()).tag(sync=True)
    cluster = traitlets.Int(0).tag(sync=True)
    colors = traitlets.Unicode("ink").tag(sync=True)

    def __init__(self, decoder: nn.Module, image_shape: Sequence[int] = (28, 28), output: str = "sigmoid",
                 input_map: str = "z", *, latent_dim: int | None = None, dims: Sequence[int] | None = None,
                 value_range: Sequence[float] = (-3.0, 3.0), initial=None,
                 styles: Mapping[str, Sequence[float]] | None = None, n_classes: int | None = None,
                 class_names: Sequence[str] | None = None, label: int = 0, n_categories: int | None = None,
                 means=None, stds=None, weights=None, cluster: int = 0, title: str | None = None,
                 scale: int | None = None, colors: str = "ink", **kwargs):
        if input_map not in INPUT_MAPS:
            raise SettingError(f"input_map must be one of {INPUT_MAPS}, got {input_map!r}.")
        args = dict(n_classes=n_classes, class_names=class_names, n_categories=n_categories, means=means,
                    stds=stds, weights=weights)
        for other, names in _MAP_ARGS.items():
            wrong = [n for n in names if args[n] is not None and other != input_map]
            if wrong:
                raise SettingError(f"{', '.join(wrong)} belong to input_map={other!r}, not {input_map!r}.")
        spec = export_mlp(decoder)
        d, data = _SETUP[input_map](spec["in_features"], args)
        if latent_dim is not None and latent_dim != d:
            raise SettingError(f"latent_dim must equal the decoder's input size {d}, got {latent_dim!r}.")
        if input_map == "codes":
            initial = [0] * d if initial is None else [int(v) for v in plain(initial)]
            start = {"codes": initial}
            dims = []
        else:
            start = {"z": [0.0] * d if initial is None else plain(initial)}
            dims = list(range(min(d, _MAX_DEFAULT_SLIDERS))) if dims is None else plain(dims)
        if input_map == "z+label":
            start["label"] = plain(label)
        shape = image_shape_pair(image_shape)
        super().__init__(spec=spec, input_map=input_map, map_data=data, latent_dim=d, output=output, dims=dims,
                         value_range=plain(value_range), image_shape=shape,
                         initial=start, z=start.get("z", []), codes=start.get("codes", []), label=plain(label),
                         cluster=plain(cluster),
                         styles=[{"name": str(k), "z": plain(v)} for k, v in (styles or {}).items()],
                         title=_TITLES[input_map] if title is None else str(title),
                         scale=default_scale(shape, 224) if scale is None else scale, colors=colors, **kwargs)

    @classmethod
    def from_model(cls, model, **kwargs) -> "LatentExplorer":
        """The explorer of any model's decoder, with the input map :func:`decoder_inputs` picks for it.

        ``image_shape`` defaults to a square when the model's ``input_dim`` is one; other keyword
        arguments go to :class:`LatentExplorer` (and override what the model says).
        """
        found = decoder_inputs(model)
        if "image_shape" not in found and "image_shape" not in kwargs:
            raise SettingError(f"input_dim={model.input_dim} is not a square image: pass image_shape=(H, W).")
        return cls(**{**found, **kwargs})

    # -- checks of the settings (also when a trait is set later) ---------------------------------
    def _pixels_expected(self):
        return (self.spec["out_features"], "the decoder outputs") if self.spec else None

    @validates("output")
    def _check_output(self, name, value):
        if value not in OUTPUTS:
            raise SettingError(f"output must be one of {OUTPUTS}, got {value!r}.")
        return value

    @validates("colors")
    def _check_colors(self, name, value):
        if value not in ("ink", "grey"):
            raise SettingError(f"colors must be 'ink' or 'grey', got {value!r}.")
        return value

    @validates("value_range")
    def _check_value_range(self, name, value):
        return finite_range(name, value, "low < 0 < high" if self.input_map == "cluster" else "low < high")

    @validates("dims")
    def _check_dims(self, name, value):
        d = self.latent_dim
        if (not value and self.input_map != "codes") or len(set(value)) != len(value) or not all(0 <= i < d for i in value):
            raise SettingError(f"dims must be distinct indices in [0, {d}), got {value!r}.")
        return value

    @validates("z", "styles")
    def _check_codes(self, name, value):
        n = 0 if self.input_map == "codes" else self.latent_dim
        for what, z in ([("z (or initial)", value)] if name == "z" else [(f"styles[{s['name']!r}]", s["z"]) for s in value]):
            if len(z) != n or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in z):
                raise SettingError(f"{what} must be {n} finite numbers (slider positions), got {len(z)} values.")
        return value

    @validates("codes")
    def _check_class_indices(self, name, value):
        if self.input_map == "codes":
            N, K = self.latent_dim, self.map_data["n_categories"]
            if len(value) != N or not all(0 <= v < K for v in value):
                raise SettingError(f"codes (or initial) must be {N} class indices in 0..{K - 1}, got {value!r}.")
        return value

    @validates("label", "cluster")
    def _check_choice(self, name, value):
        n = {"label": len(self.map_data.get("class_names", [])) or 1,
             "cluster": len(self.map_data.get("means", [])) or 1}[name]
        return index_in(name, value, n)

    # -- what the browser draws, in numpy ----------------------------------------------------------
    def _state(self, z=None, label=None, codes=None, cluster=None) -> dict:
        pick = lambda given, current: current if given is None else plain(given)  # noqa: E731
        return {"z": pick(z, self.z), "label": pick(label, self.label), "codes": pick(codes, self.codes),
                "cluster": pick(cluster, self.cluster)}

    def decoder_input(self, z=None, *, label=None, codes=None, cluster=None) -> np.ndarray:
        """The decoder's input for the given controls (default: the current ones), as the browser builds it."""
        return _decoder_input(self.input_map, self.map_data, self._state(z, label, codes, cluster))

    def image(self, z=None, *, label=None, codes=None, cluster=None) -> np.ndarray:
        """The image for the given controls (default: the current ones): intensities in [0, 1] of shape
        ``image_shape``, computed in numpy as the browser does."""
        raw = mlp_forward_numpy(self.spec, self.decoder_input(z, label=label, codes=codes, cluster=cluster))
        out = 0.5 * (1.0 + np.tanh(0.5 * raw)) if self.output == "sigmoid" else np.clip(raw, 0.0, 1.0)
        return out.reshape(self.image_shape)

    def __repr__(self) -> str:
        return (f"LatentExplorer(input_map={self.input_map!r}, latent_dim={self.latent_dim}, "
                f"image_shape={tuple(self.image_shape)}, output={self.output!r})")
