r"""Export a decoder to the browser: weights as base64 float32, and the same forward pass in numpy.

A latent explorer runs its decoder in JavaScript. The decoder must be a small MLP: an
``nn.Sequential`` of ``nn.Linear`` layers and element-wise activations. :func:`export_mlp` turns it
into a JSON-serialisable spec (weights as base64-encoded little-endian float32) and
:func:`mlp_forward_numpy` runs that spec in numpy, which is how the tests check that the exported
numbers are the decoder's numbers. Any model reaches the browser through its ``mean_decoder()``
(see :meth:`vae_core.widgets.LatentExplorer.from_model`).
"""
from __future__ import annotations

import base64
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..nets import BernoulliMLP, GaussianMLP

__all__ = ["export_mlp", "mlp_forward_numpy", "decode_image", "SPEC_FORMAT"]

#: identifies the layout of the dict returned by :func:`export_mlp`.
SPEC_FORMAT = "vae-core-mlp/1"

#: how the last layer's output becomes pixel values: logits through a sigmoid, or means as they are.
OUTPUTS = ("sigmoid", "identity")

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
    if isinstance(module, GaussianMLP):
        keep = int(module.out_dim)
        module = module.net
    elif isinstance(module, BernoulliMLP):
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
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}.")
    out = mlp_forward_numpy(spec, z)
    out = 0.5 * (1.0 + np.tanh(0.5 * out)) if output == "sigmoid" else np.clip(out, 0.0, 1.0)
    return out.reshape(*out.shape[:-1], *image_shape)
