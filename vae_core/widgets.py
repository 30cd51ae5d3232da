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

import base64
import math
from importlib import resources
from typing import Any, Sequence

import anywidget
import numpy as np
import torch
import traitlets
from torch import nn

__all__ = ["LatentExplorer", "export_mlp", "mlp_forward_numpy", "decode_image", "SPEC_FORMAT"]

#: identifies the layout of the dict returned by :func:`export_mlp`.
SPEC_FORMAT = "vae-core-mlp/1"

#: the element-wise modules the browser can run, and the spec name of each.
_ACTIVATION_NAMES = {
    nn.Identity: "identity",
    nn.Tanh: "tanh",
    nn.ReLU: "relu",
    nn.Sigmoid: "sigmoid",
    nn.LeakyReLU: "leaky_relu",
    nn.Softplus: "softplus",
    nn.ELU: "elu",
}

_OUTPUTS = ("sigmoid", "identity")
_MAX_DEFAULT_SLIDERS = 8


def _static_text(name: str) -> str:
    return resources.files("vae_core").joinpath("static", name).read_text(encoding="utf-8")


def esm_source(name: str) -> str:
    """The anywidget ``_esm`` of ``static/<name>``, with its imports of sibling files inlined.

    anywidget loads a front end as one ES module string, which cannot import another file. A front
    end may still write ``import { a, b as c } from "./widget_common.js";`` (which is how it reads
    on disk): each such line becomes the sibling's source, run in its own scope and returning its
    exported declarations (``export function|const|let|class NAME``), followed by
    ``const { a, b: c } = ...;``. Only the names imported enter the widget's scope, as with a real
    import. An imported name the sibling does not export, or a sibling that imports or exports in
    any other way, is an error.
    """
    import re

    importer = re.compile(r'^import\s*\{([^}]*)\}\s*from\s*"\./([\w.-]+\.js)";?[ \t]*$', re.M)
    declared = re.compile(r"^export\s+((?:async\s+)?function\*?|const|let|class)\s+([A-Za-z_$][\w$]*)", re.M)
    inlined: dict[str, str] = {}   # sibling file -> the constant holding its exports

    def inline(match: re.Match) -> str:
        sibling = match.group(2)
        src = _static_text(sibling)
        exports = [m.group(2) for m in declared.finditer(src)]
        body = declared.sub(lambda m: f"{m.group(1)} {m.group(2)}", src)
        if re.search(r"^\s*(import|export)\b", body, re.M):
            raise ValueError(f"static/{sibling} may only export declarations and may not import (inlined into {name}).")
        pairs = []
        for item in filter(None, (part.strip() for part in match.group(1).split(","))):
            imported, _, local = (w.strip() for w in item.partition(" as "))
            if imported not in exports:
                raise ValueError(f"static/{name} imports {imported!r}, which static/{sibling} does not export.")
            pairs.append(imported if not local or local == imported else f"{imported}: {local}")
        lines = []
        if sibling not in inlined:
            inlined[sibling] = "__" + re.sub(r"\W", "_", sibling)
            lines += [f"// ---- static/{sibling}, inlined by vae_core.widgets.esm_source",
                      f"const {inlined[sibling]} = (() => {{", body.rstrip("\n"),
                      f"return {{ {', '.join(exports)} }};", "})();"]
        lines.append(f"const {{ {', '.join(pairs)} }} = {inlined[sibling]};")
        return "\n".join(lines)

    return importer.sub(inline, _static_text(name))


def _b64_float32(t: torch.Tensor) -> str:
    """Base64 of the tensor's values as little-endian float32, row-major."""
    arr = t.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy().astype("<f4", copy=False)
    return base64.b64encode(arr.tobytes()).decode("ascii")


def _decode_b64_float32(text: str, shape: Sequence[int]) -> np.ndarray:
    arr = np.frombuffer(base64.b64decode(text), dtype="<f4")
    expected = int(np.prod(shape))
    if arr.size != expected:
        raise ValueError(f"weight blob holds {arr.size} floats, expected {expected} for shape {tuple(shape)}.")
    return arr.reshape(shape)


def _flatten_modules(module: nn.Module) -> tuple[list[nn.Module], int | None]:
    """The decoder as a flat list of layers, and how many outputs to keep (None: all)."""
    keep = None
    # The book's own decoders wrap an nn.Sequential in ``.net``. A Gaussian decoder outputs
    # (mean, log-variance) side by side; the explorer draws the mean, i.e. the first ``out_dim``.
    try:
        from .nets import BernoulliMLP, GaussianMLP
    except Exception:  # pragma: no cover - nets is optional for this module
        BernoulliMLP = GaussianMLP = ()  # type: ignore[assignment]
    if GaussianMLP and isinstance(module, GaussianMLP):
        keep = int(module.out_dim)
        module = module.net
    elif BernoulliMLP and isinstance(module, BernoulliMLP):
        module = module.net

    def walk(m: nn.Module) -> list[nn.Module]:
        if isinstance(m, nn.Sequential):
            return [leaf for child in m for leaf in walk(child)]
        return [m]

    if not isinstance(module, nn.Module):
        raise TypeError(f"the decoder must be a torch.nn.Module (an nn.Sequential of Linear layers and "
                        f"activations), got {type(module).__name__}.")
    return walk(module), keep


def export_mlp(decoder: nn.Module) -> dict[str, Any]:
    """Export an MLP decoder to a JSON-serialisable spec the browser (and numpy) can run.

    Args:
        decoder: an ``nn.Sequential`` (nested ones are flattened) of ``nn.Linear`` and the
            activations ``Identity, Tanh, ReLU, Sigmoid, LeakyReLU, Softplus, ELU``; also accepted:
            a single ``nn.Linear``, and the book's ``vae_core.nets.BernoulliMLP`` /
            ``GaussianMLP`` (for the latter only the mean half of the output is kept).

    Returns:
        ``{"format", "in_features", "out_features", "layers"}`` where each layer is either
        ``{"type": "linear", "in", "out", "weight", "bias"}`` (``weight``: base64 of the
        ``(out, in)`` row-major matrix as little-endian float32; ``bias`` likewise, or ``None``)
        or ``{"type": "activation", "name", ...parameters}``.

    Raises:
        TypeError: a module other than the supported ones, named in the message.
        ValueError: no Linear layer, or consecutive shapes that do not chain.
    """
    modules, keep = _flatten_modules(decoder)
    layers: list[dict[str, Any]] = []
    in_features = out_features = None
    for i, m in enumerate(modules):
        if isinstance(m, nn.Linear):
            if out_features is not None and m.in_features != out_features:
                raise ValueError(f"layer {i} (Linear {m.in_features}->{m.out_features}) does not chain: "
                                 f"the previous layer outputs {out_features} features.")
            if in_features is None:
                in_features = m.in_features
            layers.append({
                "type": "linear", "in": m.in_features, "out": m.out_features,
                "weight": _b64_float32(m.weight),
                "bias": None if m.bias is None else _b64_float32(m.bias),
            })
            out_features = m.out_features
            continue
        name = _ACTIVATION_NAMES.get(type(m))
        if name is None:
            supported = ", ".join(["Linear"] + [c.__name__ for c in _ACTIVATION_NAMES])
            raise TypeError(f"export_mlp cannot export module {i}, {type(m).__name__}: supported modules "
                            f"are {supported} (inside nn.Sequential).")
        layer: dict[str, Any] = {"type": "activation", "name": name}
        if name == "leaky_relu":
            layer["negative_slope"] = float(m.negative_slope)
        elif name == "softplus":
            layer["beta"] = float(m.beta)
            layer["threshold"] = float(m.threshold)
        elif name == "elu":
            layer["alpha"] = float(m.alpha)
        layers.append(layer)
    if in_features is None:
        raise ValueError("export_mlp needs at least one nn.Linear layer in the decoder.")
    if keep is not None:
        # keep the first `keep` outputs: cut the rows of the last Linear, which is the last layer
        last = max(i for i, layer in enumerate(layers) if layer["type"] == "linear")
        if last != len(layers) - 1:
            raise ValueError("a GaussianMLP decoder must end with its Linear layer.")
        lin = [m for m in modules if isinstance(m, nn.Linear)][-1]
        layers[last] = {
            "type": "linear", "in": lin.in_features, "out": keep,
            "weight": _b64_float32(lin.weight[:keep]),
            "bias": None if lin.bias is None else _b64_float32(lin.bias[:keep]),
        }
        out_features = keep
    return {"format": SPEC_FORMAT, "in_features": int(in_features), "out_features": int(out_features),
            "layers": layers}


def _activation_numpy(layer: dict[str, Any], h: np.ndarray) -> np.ndarray:
    name = layer["name"]
    if name == "identity":
        return h
    if name == "tanh":
        return np.tanh(h)
    if name == "relu":
        return np.maximum(h, 0.0)
    if name == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * h))  # = 1 / (1 + exp(-h)), without overflow
    if name == "leaky_relu":
        return np.where(h >= 0, h, layer["negative_slope"] * h)
    if name == "softplus":
        beta, threshold = layer["beta"], layer["threshold"]
        bh = beta * h
        return np.where(bh > threshold, h, np.logaddexp(0.0, bh) / beta)
    if name == "elu":
        return np.where(h > 0, h, layer["alpha"] * np.expm1(np.minimum(h, 0.0)))
    raise ValueError(f"unknown activation {name!r} in the spec.")


def mlp_forward_numpy(spec: dict[str, Any], z) -> np.ndarray:
    """Run an exported spec in numpy (float64): ``z`` of shape ``(d,)`` or ``(n, d)``.

    Returns the raw last-layer output (logits or means), shape ``(D,)`` or ``(n, D)``.
    """
    if spec.get("format") != SPEC_FORMAT:
        raise ValueError(f"spec format must be {SPEC_FORMAT!r}, got {spec.get('format')!r}.")
    h = np.asarray(z, dtype=np.float64)
    single = h.ndim == 1
    h = np.atleast_2d(h)
    if h.ndim != 2 or h.shape[1] != spec["in_features"]:
        raise ValueError(f"z must have shape (d,) or (n, d) with d={spec['in_features']}, got {np.shape(z)}.")
    for layer in spec["layers"]:
        if layer["type"] == "linear":
            w = _decode_b64_float32(layer["weight"], (layer["out"], layer["in"])).astype(np.float64)
            h = h @ w.T
            if layer["bias"] is not None:
                h = h + _decode_b64_float32(layer["bias"], (layer["out"],))
        else:
            h = _activation_numpy(layer, h)
    return h[0] if single else h


def decode_image(spec: dict[str, Any], z, image_shape: Sequence[int], output: str = "sigmoid") -> np.ndarray:
    """The image the explorer draws for ``z``: intensities in [0, 1] with shape ``image_shape``."""
    if output not in _OUTPUTS:
        raise ValueError(f"output must be one of {_OUTPUTS}, got {output!r}.")
    out = mlp_forward_numpy(spec, z)
    out = 0.5 * (1.0 + np.tanh(0.5 * out)) if output == "sigmoid" else np.clip(out, 0.0, 1.0)
    return out.reshape(*out.shape[:-1], *image_shape)


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

    _esm = _static_text("latent_explorer.js")
    _css = _static_text("latent_explorer.css")

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
        if output not in _OUTPUTS:
            raise ValueError(f"output must be one of {_OUTPUTS}, got {output!r}.")
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

    def image(self, z=None) -> np.ndarray:
        """The image for ``z`` (default: the current code), computed in numpy like the browser does."""
        return decode_image(self.spec, self.z if z is None else z, self.image_shape, self.output)

    def __repr__(self) -> str:
        return (f"LatentExplorer(latent_dim={self.latent_dim}, image_shape={tuple(self.image_shape)}, "
                f"output={self.output!r}, dims={self.dims})")
