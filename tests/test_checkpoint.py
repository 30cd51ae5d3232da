"""Checkpoints round-trip a model and its config; every write is atomic."""
import json

import pytest
import torch

from vae_core import fit, load_checkpoint, save_checkpoint
from vae_core.data.files import atomic_write

from test_train import _model, _toy_data


def test_checkpoint_round_trip(tmp_path):
    model = _model()
    fit(model, _toy_data(100), epochs=1, progress=False)
    save_checkpoint(model, tmp_path / "ck", extra={"note": "test"})
    loaded, extra = load_checkpoint(tmp_path / "ck")
    assert extra == {"note": "test"}
    x = _toy_data(10)
    model.eval()
    assert torch.equal(loaded.encode(x)[0], model.encode(x)[0])
    assert torch.equal(loaded.decode(torch.ones(3, 2)), model.decode(torch.ones(3, 2)))
    assert json.loads((tmp_path / "ck" / "config.json").read_text())["class"] == "VAE"


def test_checkpoint_failed_save_leaves_nothing(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(_model(), tmp_path / "ck")
    assert list((tmp_path / "ck").iterdir()) == []


def test_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.pt and config.json"):
        load_checkpoint(tmp_path)
    save_checkpoint(_model(), tmp_path / "ck")
    (tmp_path / "ck" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_checkpoint(tmp_path / "ck")
    with pytest.raises(TypeError, match="no `config` dict"):
        save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "x")


def test_atomic_write_leaves_nothing_behind_on_error(tmp_path):
    target = tmp_path / "sub" / "f.bin"
    with atomic_write(target) as f:
        f.write(b"first")
    with pytest.raises(ValueError):
        with atomic_write(target) as f:
            f.write(b"second, half")
            raise ValueError("checksum mismatch")
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.bin"]
