"""fit(): reproducible, learns, validates input; checkpoints round-trip atomically."""
import json

import pytest
import torch

from vae_core import VAE, fit, load_checkpoint, save_checkpoint


def _toy_data(n=600, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    protos = (torch.rand(4, d, generator=g) > 0.5).float()
    idx = torch.randint(0, 4, (n,), generator=g)
    flips = (torch.rand(n, d, generator=g) < 0.05).float()
    return (protos[idx] + flips) % 2


def _model(seed=0, d=16):
    torch.manual_seed(seed)
    return VAE(d, 2, (32,))


def test_same_seed_same_history_and_learning():
    x = _toy_data()
    h1 = fit(_model(), x[:500], x[500:], epochs=6, batch_size=50, lr=3e-3, seed=3, progress=False)
    h2 = fit(_model(), x[:500], x[500:], epochs=6, batch_size=50, lr=3e-3, seed=3, progress=False)
    assert h1.train_elbo == h2.train_elbo and h1.test_elbo == h2.test_elbo
    h3 = fit(_model(), x[:500], x[500:], epochs=6, batch_size=50, lr=3e-3, seed=4, progress=False)
    assert h3.train_elbo != h1.train_elbo
    # it learns: the ELBO rises by several nats over an untrained model
    assert h1.test_elbo[-1] > h1.test_elbo[0] + 1.0
    assert h1.examples_seen == [500 * (i + 1) for i in range(6)] and len(h1.seconds) == 6


def test_progress_bar_and_callback(capsys):
    seen = []
    fit(_model(), _toy_data(100), epochs=2, batch_size=30, progress=True,
        callback=lambda epoch, hist, model: seen.append((epoch, len(hist))))
    assert seen == [(1, 1), (2, 2)]
    assert "training" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(epochs=0), ValueError, "epochs must be a positive int"),
    (dict(batch_size=-5), ValueError, "batch_size must be a positive int"),
    (dict(batch_size=2.0), TypeError, "batch_size must be a positive int"),
    (dict(lr=0), ValueError, "lr must be a finite number > 0"),
    (dict(optimizer="sgd"), ValueError, "optimizer must be"),
])
def test_fit_rejects_bad_settings(kwargs, err, match):
    with pytest.raises(err, match=match):
        fit(_model(), _toy_data(20), progress=False, **kwargs)


def test_fit_rejects_bad_data():
    with pytest.raises(TypeError, match=r"vae_core.data.load\(...\), a float tensor"):
        fit(_model(), [[0.0] * 16], progress=False)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit(_model(), _toy_data(20) * 255, epochs=1, progress=False)


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


def test_on_step_sees_every_step_and_can_stop_mid_epoch():
    seen = []
    hist = fit(_model(), _toy_data(100), epochs=3, batch_size=30, progress=False,
               on_step=lambda n, model: seen.append(n) or n >= 150)
    # 100 images in batches of 30, 30, 30, 10; stop at the first count >= 150 (in epoch 2)
    assert seen == [30, 60, 90, 100, 130, 160]
    assert hist.epoch == [1, 2] and hist.examples_seen == [100, 160]


def test_weight_decay_pulls_weights_towards_zero():
    x = _toy_data(200)
    plain, decayed = _model(), _model()
    fit(plain, x, epochs=3, batch_size=50, progress=False, optimizer="adagrad", lr=0.05)
    fit(decayed, x, epochs=3, batch_size=50, progress=False, optimizer="adagrad", lr=0.05, weight_decay=5.0)
    norm = lambda m: sum((p ** 2).sum() for p in m.parameters()).item()   # noqa: E731
    assert norm(decayed) < norm(plain)
