"""The command line, python -m vae_core: any model, its chapter's options, clear errors, no half-written output."""
import os
import subprocess
import sys

import pytest
import torch

from vae_core import data
from vae_core.__main__ import main as cli_main

from conftest import ROOT
from test_train import _NanAtStep

pytestmark = pytest.mark.usefixtures("one_thread")


def test_command_line_writes_no_checkpoint_when_training_stops(tmp_path, monkeypatch, capsys):
    from vae_core import models as model_registry
    monkeypatch.setitem(model_registry.MODELS, "VAE", _NanAtStep)
    out = tmp_path / "run"
    assert cli_main(["--data", "digits", "--epochs", "2", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "training stopped" in err and "at step 3 of epoch 1" in err
    assert not out.exists()


def test_cli_trains_any_model_without_runpy_warning(tmp_path):
    env = dict(os.environ, PYTHONWARNINGS="error::RuntimeWarning")
    for name, extra in (("VAE", []), ("FreeBitsVAE", ["--free-bits", "0.25"])):
        out = tmp_path / name
        res = subprocess.run([sys.executable, "-m", "vae_core", "--model", name, "--data", "digits",
                              "--epochs", "1", "--latent-dim", "3", "--hidden-dims", "16", "--out", str(out),
                              *extra], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
        assert res.returncode == 0, res.stderr
        assert "RuntimeWarning" not in res.stderr and "final bound" in res.stdout
        assert (out / "model.pt").is_file()
    assert '"free_bits": 0.25' in (tmp_path / "FreeBitsVAE" / "config.json").read_text()


def test_cli_errors_exit_2_with_the_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VAE_CORE_DATA", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("VAE_CORE_OFFLINE", "1")
    monkeypatch.setattr(data.files, "SYSTEM_DIRS", {})
    assert cli_main(["--data", "fashion-mnist", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err and "fashion-mnist" in err.lower()
    assert cli_main(["--data", "digits", "--latent-dim", "0"]) == 2
    assert "latent_dim must be a positive int" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli_main(["--model", "NoSuchModel"])
    assert info.value.code == 2


def test_cli_an_option_the_model_lacks_names_the_models_that_have_it(capsys):
    assert cli_main(["--data", "digits", "--labels", "100"]) == 2
    err = capsys.readouterr().err
    assert "--labels is not an option of VAE; it is an option of M2" in err and "--latent-dim" in err
    assert cli_main(["--model", "VAE", "--data", "digits", "--gamma", "3"]) == 2
    assert "it is an option of CapacityVAE, FactorVAE" in capsys.readouterr().err
    assert cli_main(["--data", "digits", "--no-such-thing", "1"]) == 2
    err = capsys.readouterr().err
    assert "--no-such-thing is not an option of VAE." in err and "Traceback" not in err


@pytest.mark.parametrize("model, flags", [
    ("VaDE", ["--pretrain-epochs", "--pretrain-lr"]),
    ("M2", ["--labels", "--alpha"]),
    ("FactorVAE", ["--gamma", "--discriminator-lr", "--discriminator-betas", "--discriminator-hidden"]),
    ("ImplicitPriorVAE", ["--discriminator-lr", "--discriminator-hidden"]),
])
def test_cli_help_of_each_model_lists_how_its_chapter_trains_it(model, flags, capsys):
    with pytest.raises(SystemExit) as info:
        cli_main(["--model", model, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in flags:
        assert flag in out, flag
    assert "``" not in out and ":class:" not in out       # docstring markup turned into plain text


def test_keep_labels_keeps_the_same_number_of_each_class():
    from vae_core.__main__ import keep_labels
    ds = data.load("digits", "train")
    kept = keep_labels(ds, 50, seed=3)
    assert (kept.y >= 0).sum() == 50 and len(kept.y) == len(ds.y)
    assert torch.bincount(kept.y[kept.y >= 0], minlength=10).tolist() == [5] * 10
    assert torch.equal(kept.y[kept.y >= 0], ds.y[kept.y >= 0])          # kept labels are the true ones
    assert torch.equal(kept.x, ds.x)
    with pytest.raises(ValueError, match="multiple of the 10 classes"):
        keep_labels(ds, 15)


def test_cli_trains_m2_with_few_labels_and_vade_with_its_pretraining(tmp_path, capsys):
    out = tmp_path / "m2"
    assert cli_main(["--model", "M2", "--data", "digits", "--labels", "50", "--epochs", "1", "--latent-dim", "3",
                     "--hidden-dims", "16", "--classifier-hidden", "16", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    n_train = len(data.load("digits", "train"))
    assert f"50 labelled and {n_train - 50:,} unlabelled" in printed
    assert f'"alpha": {0.1 * n_train / 50}' in (out / "config.json").read_text()   # the paper's 0.1 N / n_labelled
    assert cli_main(["--model", "VaDE", "--data", "digits", "--pretrain-epochs", "1", "--epochs", "1",
                     "--latent-dim", "3", "--hidden-dims", "16", "--n-clusters", "4"]) == 0
    assert "pretrained for 1 epochs" in capsys.readouterr().out
