"""fit drives any model through the interface: labels, schedules, a discriminator; the command line."""
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from vae_core import VAE, Batch, Output, data, evaluating, fit
from vae_core.data.files import atomic_write
from vae_core.models.base import LatentVariableModel
from vae_core.schedules import constant, exponential_decay, linear_ramp, linear_warmup
from vae_core.__main__ import main as cli_main

from conftest import ROOT

pytestmark = pytest.mark.usefixtures("one_thread")


def _x(n=60, dim=8, seed=0):
    return (torch.rand(n, dim, generator=torch.Generator().manual_seed(seed)) > 0.5).float()


class WithCritic(LatentVariableModel):
    """A VAE plus a critic that learns to tell q(z|x) samples from prior samples (on detached z)."""
    settings = {"gamma": 1.0}

    def __init__(self, input_dim=8, latent_dim=2, gamma=1.0):
        super().__init__()
        self.config = dict(input_dim=input_dim, latent_dim=latent_dim, gamma=gamma)
        self.input_dim, self.latent_dim, self.gamma = input_dim, latent_dim, gamma
        self.vae = VAE(input_dim, latent_dim, (8,))
        self.critic = nn.Linear(latent_dim, 1)
        self.seen_labels = []

    def loss(self, batch, generator=None):
        self.seen_labels.append(batch.y)
        mu, logvar = self.vae.encode(batch.x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator)
        recon = self.vae.log_likelihood(batch.x, z)
        kl = 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(-1)
        penalty = self.critic(z).squeeze(-1)               # the critic's opinion enters the VAE's loss
        prior = torch.randn(z.shape, generator=generator)
        logits = torch.cat([self.critic(z.detach()), self.critic(prior)]).squeeze(-1)
        labels = torch.cat([torch.ones(len(z)), torch.zeros(len(z))])
        d_loss = nn.functional.binary_cross_entropy_with_logits(logits, labels)
        return Output(loss=-(recon - kl - self.gamma * penalty).mean(), elbo=recon - kl,
                      terms={"recon": recon, "kl": kl, "penalty": penalty}, discriminator_loss=d_loss)

    def parameter_groups(self):
        return {"model": list(self.vae.parameters()),
                "discriminator": {"params": list(self.critic.parameters()), "lr": 0.05}}


def test_discriminator_trained_only_by_its_own_loss():
    torch.manual_seed(0)
    model = WithCritic()
    x = _x()
    critic_before = [p.detach().clone() for p in model.critic.parameters()]
    # the gradient the critic would get from the VAE's loss is discarded by fit: with gamma = 0 the
    # VAE's loss does not depend on the critic, so a run gives the same VAE as with a frozen critic
    h = fit(model, x, epochs=2, batch_size=20, progress=False, schedules={"gamma": 0.0})
    assert any(not torch.equal(a, b) for a, b in zip(critic_before, model.critic.parameters()))
    assert h.settings["gamma"] == [0.0, 0.0] and "penalty" in h.terms
    torch.manual_seed(0)
    frozen = WithCritic()
    frozen.parameter_groups = lambda: {"model": list(frozen.vae.parameters()),
                                       "discriminator": {"params": list(frozen.critic.parameters()), "lr": 1e-30}}
    fit(frozen, x, epochs=2, batch_size=20, progress=False, schedules={"gamma": 0.0})
    for a, b in zip(model.vae.parameters(), frozen.vae.parameters()):
        torch.testing.assert_close(a, b)


def test_discriminator_step_does_not_use_the_vae_loss_gradient():
    """With gamma > 0 the VAE's loss has a gradient for the critic; fit must drop it before the critic's step."""
    torch.manual_seed(1)
    model = WithCritic(gamma=5.0)
    x = _x(20)
    grads = {}

    class Spy(torch.optim.SGD):
        def step(self, closure=None):
            grads["critic"] = [p.grad.clone() for p in model.critic.parameters()]
            return super().step(closure)

    model.parameter_groups = lambda: {"model": list(model.vae.parameters()),
                                      "discriminator": list(model.critic.parameters())}
    import vae_core.train as train_module
    real = train_module.make_optimizer
    train_module.make_optimizer = lambda params, *a, **k: Spy(list(params), lr=0.0) if len(list(params)) == 2 and \
        all(p.shape in ((1, 2), (1,)) for p in params) else real(params, *a, **k)
    try:
        torch.manual_seed(1)
        fit(model, x, epochs=1, batch_size=20, progress=False, seed=0)
    finally:
        train_module.make_optimizer = real
    # the critic's gradient at the step is that of its own loss only (same batch, same noise)
    torch.manual_seed(1)
    fresh = WithCritic(gamma=5.0)
    gen = torch.Generator().manual_seed(0)
    batch_x = x[torch.randperm(20, generator=torch.Generator().manual_seed(1))]
    out = fresh.loss(Batch(batch_x), generator=gen)
    own = torch.autograd.grad(out.discriminator_loss, list(fresh.critic.parameters()))
    vae_part = torch.autograd.grad(out.loss, list(fresh.critic.parameters()))
    assert any(g.abs().max() > 1e-4 for g in vae_part)      # so the test would see a leak
    for got, want in zip(grads["critic"], own):
        torch.testing.assert_close(got, want)


def test_labels_reach_the_model_and_schedules_set_attributes():
    model = WithCritic()
    x, y = _x(40), torch.arange(40) % 3
    h = fit(model, (x, y), epochs=3, batch_size=40, progress=False,
            schedules={"gamma": linear_warmup(2, 0.0, 2.0)})
    assert h.settings["gamma"] == [0.0, 1.0, 2.0] and model.gamma == 2.0
    assert sorted(model.seen_labels[0].tolist()) == sorted(y.tolist())


def test_beta_shorthand_and_warmup_on_the_vae():
    torch.manual_seed(0)
    model = VAE(8, 2, (8,))
    h = fit(model, _x(), epochs=3, batch_size=30, progress=False, beta=linear_warmup(2))
    assert h.settings["beta"] == [0.0, 0.5, 1.0]
    # the recorded bound is the true ELBO (recon - kl), whatever beta was
    for elbo, recon, kl in zip(h.train_elbo, h.terms["recon"], h.terms["kl"]):
        assert elbo == pytest.approx(recon - kl, abs=1e-4)


def test_unknown_schedule_and_bad_schedule_values_are_clear_errors():
    with pytest.raises(ValueError, match="no setting 'tau'.*'beta', 'kl_estimator', 'n_samples'"):
        fit(VAE(8, 2, (8,)), _x(), epochs=1, progress=False, schedules={"tau": 0.5})
    with pytest.raises(TypeError, match="number or a callable"):
        fit(VAE(8, 2, (8,)), _x(), epochs=1, progress=False, schedules={"beta": "warm"})
    with pytest.raises(ValueError, match="never anneal"):
        exponential_decay(start=0.5, minimum=1.0, rate=0.1)


def test_schedule_values():
    assert linear_warmup(2).values(4) == [0.0, 0.5, 1.0, 1.0]
    assert linear_ramp(0.0, 25.0, 5).values(7) == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 25.0]
    tau = exponential_decay(1.0, 0.5, 0.3).values(5)
    assert tau[0] == 1.0 and tau[1] == pytest.approx(torch.exp(torch.tensor(-0.3)).item())
    assert all(a >= b for a, b in zip(tau, tau[1:])) and tau[-1] == 0.5
    assert constant(3).values(2) == [3, 3]
    with pytest.raises(ValueError, match="counted from 1"):
        linear_warmup(2)(0)


def test_nan_loss_stops_with_a_message_naming_the_fix():
    class Exploding(VAE):
        def loss(self, batch, generator=None):
            out = super().loss(batch, generator)
            out.elbo = out.elbo * float("nan")
            return out
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        fit(Exploding(8, 2, (8,)), _x(), epochs=1, progress=False)


class _NanAtStep(VAE):
    """A VAE whose loss is NaN (or +inf) from its ``bad``-th call on; counts its calls."""

    def __init__(self, *args, bad=3, value=float("nan"), **kwargs):
        super().__init__(*args, **kwargs)
        self.bad, self.value, self.calls = bad, value, 0

    def loss(self, batch, generator=None):
        self.calls += 1
        out = super().loss(batch, generator)
        if self.calls >= self.bad:
            out.loss = out.loss * self.value
        return out


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_loss_stops_at_that_step_with_the_last_finite_weights(value):
    torch.manual_seed(0)
    model = _NanAtStep(8, 2, (8,), bad=3, value=value)
    twin = VAE(8, 2, (8,))
    twin.load_state_dict(model.state_dict())
    # 60 examples, batches of 10: six steps per epoch, three epochs; the loss breaks at step 3 of epoch 1
    with pytest.raises(FloatingPointError, match=r"at step 3 of epoch 1 \(after 20 training examples\)"):
        fit(model, _x(), epochs=3, batch_size=10, progress=False, seed=4)
    assert model.calls == 3                          # not one step more: not the end of the epoch
    # the weights are exactly those after the two finite steps: the same run stopped by on_step
    fit(twin, _x(), epochs=1, batch_size=10, progress=False, seed=4, on_step=lambda seen, m: seen >= 20)
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_command_line_writes_no_checkpoint_when_training_stops(tmp_path, monkeypatch, capsys):
    from vae_core import models as model_registry
    monkeypatch.setitem(model_registry.MODELS, "VAE", _NanAtStep)
    out = tmp_path / "run"
    assert cli_main(["--data", "digits", "--epochs", "2", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "training stopped" in err and "at step 3 of epoch 1" in err
    assert not out.exists()


def test_model_without_the_interface_is_rejected():
    with pytest.raises(TypeError, match="loss\\(batch\\)"):
        fit(nn.Linear(8, 2), _x(), epochs=1, progress=False)


def test_evaluating_restores_the_mode_and_disables_gradients():
    model = VAE(8, 2, (8,))
    model.train()
    with evaluating(model):
        assert not model.training and not torch.is_grad_enabled()
    assert model.training
    model.eval()
    with pytest.raises(RuntimeError):
        with evaluating(model):
            raise RuntimeError("boom")
    assert not model.training


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


# ------------------------------------------------------------------------ the command line

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
