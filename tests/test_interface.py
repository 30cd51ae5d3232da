"""fit drives any model through the interface: labels, schedules, a discriminator; the command line."""
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from vae_core import VAE, Batch, Output, data, evaluating, fit
from vae_core.files import atomic_write
from vae_core.models.base import LatentVariableModel
from vae_core.schedules import constant, exponential_decay, linear_ramp, linear_warmup
from vae_core.train.__main__ import main as cli_main

from conftest import ROOT

pytestmark = pytest.mark.usefixtures("one_thread")


def _x(n=60, dim=8, seed=0):
    return (torch.rand(n, dim, generator=torch.Generator().manual_seed(seed)) > 0.5).float()


class WithCritic(LatentVariableModel):
    """A VAE plus a critic that learns to tell q(z|x) samples from prior samples (on detached z)."""
    schedulable = ("gamma",)

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
    with pytest.raises(ValueError, match="no attribute 'tau'.*schedules may change are \\['beta'\\]"):
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
        res = subprocess.run([sys.executable, "-m", "vae_core.train", "--model", name, "--data", "digits",
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
    monkeypatch.setattr(data, "SYSTEM_DIRS", {})
    assert cli_main(["--data", "fashion-mnist", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err and "fashion-mnist" in err.lower()
    assert cli_main(["--data", "digits", "--latent-dim", "0"]) == 2
    assert "latent_dim must be a positive int" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli_main(["--model", "NoSuchModel"])
    assert info.value.code == 2
