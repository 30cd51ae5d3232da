"""fit drives any model through the interface: reproducible, learns, validates its input; labels,
declared settings and schedules, a discriminator, and a stop at the first non-finite loss."""
import pytest
import torch
from torch import nn

from vae_core import VAE, Batch, Output, fit
from vae_core.models.base import LatentVariableModel
from vae_core.schedules import constant, exponential_decay, linear_ramp, linear_warmup

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
    # (by autograd, as the subclass is trained: the fused step of the plain VAE rounds differently)
    fit(twin, _x(), epochs=1, batch_size=10, progress=False, seed=4, on_step=lambda seen, m: seen >= 20,
        fused=False)
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_model_without_the_interface_is_rejected():
    with pytest.raises(TypeError, match="loss\\(batch\\)"):
        fit(nn.Linear(8, 2), _x(), epochs=1, progress=False)


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


class _Recorder(LatentVariableModel):
    """A VAE that keeps a copy of every training batch it is given."""

    def __init__(self, dim):
        super().__init__()
        self.vae = VAE(dim, 2, (8,))
        self.input_dim, self.latent_dim = dim, 2
        self.batches = []

    def loss(self, batch, generator=None):
        self.batches.append(batch.x.clone())
        return self.vae.loss(batch, generator)


def test_dynamic_binarization_is_drawn_batch_by_batch(monkeypatch):
    from vae_core import data
    grey = torch.rand(90, 12, generator=torch.Generator().manual_seed(0))
    ds = data.Dataset(x=grey, y=None, image_shape=None, name="toy", split="train", binarize="dynamic")
    model = _Recorder(12)
    fit(model, ds, epochs=40, batch_size=30, progress=False)
    seen = torch.stack(model.batches)                       # 40 epochs x 3 batches of 30
    assert set(seen.unique().tolist()) == {0.0, 1.0}        # binary pixels, never grey levels
    # every image is seen once per epoch, so the mean over batches per epoch is its grey mean, and
    # across 40 epochs each pixel's frequency is near its grey level (binomial sd <= 0.08)
    per_epoch = seen.view(40, 90, 12)
    assert torch.allclose(per_epoch.mean((1, 2)), grey.mean().expand(40), atol=0.05)
    assert not torch.equal(per_epoch[0], per_epoch[1])       # a fresh sample every epoch (and shuffle)
    # a run stopped early by on_step never binarizes the whole set at once
    monkeypatch.setattr(data.Dataset, "epoch_data", lambda *a, **k: pytest.fail("epoch_data was called"))
    stopped = _Recorder(12)
    hist = fit(stopped, ds, epochs=5, batch_size=30, progress=False, on_step=lambda n, m: n >= 60)
    assert hist.examples_seen == [60] and len(stopped.batches) == 2


def test_dynamic_binarization_frequencies_match_the_grey_levels():
    from vae_core import data
    grey = torch.linspace(0, 1, 11).repeat(4, 1)             # 4 images, pixels 0, 0.1, ..., 1
    ds = data.Dataset(x=grey, y=None, image_shape=None, name="toy", split="train", binarize="dynamic")
    model = _Recorder(11)
    fit(model, ds, epochs=500, batch_size=4, progress=False)
    freq = torch.cat(model.batches).mean(0)                   # 2,000 draws per pixel: sd <= 0.012
    assert freq[0] == 0 and freq[-1] == 1                     # p = 0 and p = 1 are exact
    assert torch.allclose(freq, grey[0], atol=0.05)


def test_make_optimizer_adagrad_is_adagrad_with_the_weight_decay_by_hand():
    from vae_core.train import make_optimizer
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(6, 5, dtype=torch.float64))
    hand, sums = w.detach().clone(), torch.zeros(6, 5, dtype=torch.float64)
    opt = make_optimizer([w], "adagrad", lr=0.1, weight_decay=0.3)
    for _ in range(4):
        g = torch.randn(6, 5, dtype=torch.float64)
        w.grad = g.clone()
        opt.step()
        g = g + 0.3 * hand
        sums += g * g
        hand -= 0.1 * g / (sums.sqrt() + 1e-10)
    torch.testing.assert_close(w.detach(), hand, rtol=1e-12, atol=1e-12)
