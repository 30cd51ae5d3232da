"""Execute a chapter notebook with chosen environment variables and measure its identity checks.

``execute(path, env)`` runs the notebook top to bottom in a fresh kernel (``notebooks/`` as working
directory, as the book build does) with ``env`` added to the environment, and returns the executed
notebook and one :class:`Margin` per call of ``torch.testing.assert_close``: how much of its
tolerance the comparison used, ``max |a - b| / (atol + rtol |b|)`` over its elements (1 = at the edge;
above 1 the check fails). The tolerances are the call's own, or PyTorch's defaults for the dtype.
A failing cell raises ``nbclient.exceptions.CellExecutionError`` with the cell and its traceback.

Also a command: ``python tests/nbrun.py [--dataset NAME] [--full] notebooks/*.ipynb`` prints the margins.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs first in the kernel: wraps assert_close so every call records the share of its tolerance it used.
_PATCH = r'''
import inspect as _inspect, json as _json, math as _math, torch as _torch
_vae_margins = []
_vae_assert_close = _torch.testing.assert_close
_DEFAULTS = {_torch.float16: (1e-3, 1e-5), _torch.bfloat16: (1.6e-2, 1e-5),
             _torch.float32: (1.3e-6, 1e-5), _torch.float64: (1e-7, 1e-7)}
def _vae_flat(v):
    if isinstance(v, dict):
        return [t for k in sorted(v) for t in _vae_flat(v[k])]
    if isinstance(v, (tuple, list)):
        return [t for x in v for t in _vae_flat(x)]
    return [_torch.as_tensor(v)]
def _vae_logged(actual, expected, *args, **kw):
    used, dtype = 0.0, None
    try:
        for a, b in zip(_vae_flat(actual), _vae_flat(expected)):
            a, b = a.detach().cpu(), b.detach().cpu()
            if not (a.is_floating_point() or b.is_floating_point()):
                used = max(used, 0.0 if _torch.equal(a, b) else _math.inf)
                continue
            dtype = _torch.promote_types(a.dtype, b.dtype) if a.is_floating_point() else b.dtype
            rtol, atol = _DEFAULTS.get(dtype, (1.3e-6, 1e-5))
            rtol = kw.get("rtol", rtol) if kw.get("rtol") is not None else rtol
            atol = kw.get("atol", atol) if kw.get("atol") is not None else atol
            a, b = a.to(_torch.float64), b.to(_torch.float64)
            err = (a - b).abs()
            allowed = atol + rtol * b.abs()
            share = (err / allowed).max().item() if (allowed > 0).all() else \
                (0.0 if (err == 0).all() else _math.inf)
            used = max(used, share)
    except Exception:
        used = float("nan")
    frame = _inspect.stack()[1]
    _vae_margins.append({"line": (frame.code_context or ["?"])[0].strip(), "used": used,
                         "dtype": str(dtype).replace("torch.", ""),
                         "explicit": kw.get("rtol") is not None or kw.get("atol") is not None})
    return _vae_assert_close(actual, expected, *args, **kw)
_torch.testing.assert_close = _vae_logged
'''


@dataclass
class Margin:
    """One ``assert_close`` call: its source line, the share of its tolerance used, the dtype compared
    and whether the cell set its own tolerance."""
    line: str
    used: float
    dtype: str
    explicit: bool


def execute(path, env: dict, timeout: int = 600):
    """Run the notebook at ``path`` with ``env`` added to the environment: ``(notebook, [Margin])``."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    out = Path(tempfile.mkdtemp(prefix="nbrun-")) / "margins.json"
    nb.cells.insert(0, nbformat.v4.new_code_cell(_PATCH))
    nb.cells.append(nbformat.v4.new_code_cell(
        f"import json as _j\nopen({str(out)!r}, 'w').write(_j.dumps(_vae_margins))"))
    old = {k: os.environ.get(k) for k in env}
    os.environ.update({k: str(v) for k, v in env.items()})
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    margins = [Margin(**m) for m in json.loads(out.read_text())]
    return nb, margins


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Run chapters and print how much of its tolerance each "
                                             "assert_close used.")
    ap.add_argument("notebooks", nargs="+")
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--full", action="store_true", help="full mode (default: quick mode)")
    args = ap.parse_args(argv)
    env = {} if args.full else {"VAE_BOOK_QUICK": "1"}
    if args.dataset:
        env["VAE_BOOK_DATASET"] = args.dataset
    for p in args.notebooks:
        _, margins = execute(p, env)
        for m in margins:
            print(f"{Path(p).stem[:14]:<14} {m.used:9.2e} {m.dtype:>8} {'own tol' if m.explicit else 'default'}  "
                  f"{m.line[:110]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
