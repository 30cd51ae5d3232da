"""How an explorer's front end and its data reach the page, and the browser's random numbers in numpy.

Every explorer in :mod:`vae_core.widgets` is an anywidget whose JavaScript lives in ``static/``.
:func:`esm_source` turns one of those files into the widget's ES module (inlining what it imports
from its siblings, such as ``static/common.js`` and ``static/mlp.js``); :func:`pack_u8` carries
pictures as base64 bytes (``unpackU8`` in ``common.js`` reads them back); :func:`mulberry32_uniforms`
repeats, bit for bit, the seeded uniform generator the front ends draw from, so tests can check what
a browser shows.
"""
from __future__ import annotations

import base64
import re
from importlib import resources

import numpy as np

__all__ = ["esm_source", "static_text", "pack_u8", "unpack_u8", "mulberry32_uniforms"]

_MASK = 0xFFFFFFFF


def static_text(name: str) -> str:
    """The text of ``static/<name>``, a front-end file shipped inside the package."""
    return resources.files("vae_core.widgets").joinpath("static", name).read_text(encoding="utf-8")


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
    importer = re.compile(r'^import\s*\{([^}]*)\}\s*from\s*"\./([\w.-]+\.js)";?[ \t]*$', re.M)
    declared = re.compile(r"^export\s+((?:async\s+)?function\*?|const|let|class)\s+([A-Za-z_$][\w$]*)", re.M)
    inlined: dict[str, str] = {}   # sibling file -> the constant holding its exports

    def inline(match: re.Match) -> str:
        sibling = match.group(2)
        src = static_text(sibling)
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

    return importer.sub(inline, static_text(name))


def pack_u8(images) -> str:
    """Base64 of ``images`` (intensities in [0, 1], any shape; array or tensor) as bytes ``round(255 * v)``, row-major."""
    a = np.asarray(images.detach().cpu() if hasattr(images, "detach") else images, dtype=np.float64)
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise ValueError("images must be a non-empty array of finite intensities in [0, 1].")
    if a.min() < -1e-6 or a.max() > 1 + 1e-6:
        raise ValueError(f"images must lie in [0, 1] (pixel intensities), got values in [{a.min():.3g}, {a.max():.3g}]; "
                         f"pass decoder means (after the sigmoid), not logits.")
    return base64.b64encode(np.rint(np.clip(a, 0, 1) * 255).astype(np.uint8).tobytes()).decode("ascii")


def unpack_u8(text: str, shape=None) -> np.ndarray:
    """The bytes (0..255, uint8) of :func:`pack_u8`'s string, reshaped to ``shape`` when given."""
    a = np.frombuffer(base64.b64decode(text), dtype=np.uint8)
    return a if shape is None else a.reshape(shape)


def _imul(a: int, b: int) -> int:
    """JavaScript's ``Math.imul`` on unsigned 32-bit representations: the low 32 bits of a*b."""
    return (a * b) & _MASK


def mulberry32_uniforms(seed: int, n: int) -> np.ndarray:
    """The ``n`` uniforms in [0, 1) that ``mulberry32(seed)`` yields in the browser, bit for bit."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}.")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}.")
    a = int(seed) & _MASK
    out = np.empty(int(n), dtype=np.float64)
    for i in range(int(n)):
        a = (a + 0x6D2B79F5) & _MASK
        t = a
        t = _imul(t ^ (t >> 15), t | 1)
        t = (t ^ ((t + _imul(t ^ (t >> 7), t | 61)) & _MASK)) & _MASK
        out[i] = ((t ^ (t >> 14)) & _MASK) / 4294967296.0
    return out
