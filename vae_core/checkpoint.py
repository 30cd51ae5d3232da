"""Checkpoints: a folder with ``model.pt`` (a ``state_dict``) and ``config.json``.

Both files are written to temporary names and renamed only when complete, so an interrupted save
never leaves a half-written checkpoint; loading uses ``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .data.files import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(model, path, extra: dict | None = None) -> Path:
    """Save ``model`` (which must carry a JSON-able ``config``) into the folder ``path``."""
    config = getattr(model, "config", None)
    if not isinstance(config, dict):
        raise TypeError(f"{type(model).__name__} has no `config` dict; checkpoints need the "
                        f"constructor arguments to rebuild the model.")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    meta = {"class": type(model).__name__, "config": config, "extra": extra or {}}
    payload = json.dumps(meta, indent=2).encode()  # fail before writing anything if not JSON-able
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_write(path / "model.pt") as f:
        torch.save(state, f)
    with atomic_write(path / "config.json") as f:
        f.write(payload)
    return path


def load_checkpoint(path, map_location="cpu"):
    """Rebuild the model saved by :func:`save_checkpoint`; returns ``(model, extra)``."""
    from .models import MODELS

    path = Path(path)
    cfg_file, weights = path / "config.json", path / "model.pt"
    for f in (cfg_file, weights):
        if not f.is_file():
            raise FileNotFoundError(f"{f} is missing: a checkpoint is a folder with model.pt and "
                                    f"config.json written by vae_core.checkpoint.save_checkpoint.")
    try:
        meta = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{cfg_file} is not valid JSON ({err}); the checkpoint is damaged.") from None
    cls = MODELS.get(meta.get("class"))
    if cls is None:
        raise ValueError(f"{cfg_file} names model class {meta.get('class')!r}; known: {sorted(MODELS)}.")
    model = cls(**meta["config"])
    model.load_state_dict(torch.load(weights, map_location=map_location, weights_only=True))
    model.eval()
    return model, meta.get("extra", {})
