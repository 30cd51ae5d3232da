"""β-VAE (chapter 9): the VAE's β = 1 is the ELBO, the capacity objective and the learned multiplier
(dual ascent) reach their rates, and "MSE + KL" is a fixed-variance Gaussian β-VAE with β = 2σ²."""
import math

import pytest
import torch

from vae_core import VAE, CapacityVAE, RateConstrainedVAE, fit, load_checkpoint, save_checkpoint
from vae_core.data import load
from vae_core.distributions import gaussian_log_prob, kl_normal_standard
from vae_core.evaluate import kl_per_dimension
from vae_core.models import Batch
from vae_core.models.beta_vae import fixed_variance_beta, fixed_variance_sigma, mse_kl_loss
from vae_core.schedules import linear_ramp

pytestmark = pytest.mark.usefixtures("one_thread")

D, d = 12, 3


def _pair(cls=VAE, seed=0, **kw):
    """A plain VAE and a model of ``cls`` with the same initial weights."""
    torch.manual_seed(seed)
    vae = VAE(D, d, hidden_dims=(16,))
    torch.manual_seed(seed)
    other = cls(D, d, hidden_dims=(16,), **kw)
    for a, b in zip(vae.parameters(), other.parameters()):
        assert torch.equal(a, b)
    return vae, other


def _x(n=32, seed=0):
    return (torch.rand(n, D, generator=torch.Generator().manual_seed(seed)) > 0.5).float()


def _gen():
    return torch.Generator().manual_seed(11)


def test_beta_one_equals_the_vae_elbo_and_loss():
    vae, bvae = _pair()
    bvae.beta = 1.0                         # the beta-VAE is the VAE with its KL weight set
    x = _x()
    a, b = vae.loss(Batch(x), generator=_gen()), bvae.loss(Batch(x), generator=_gen())
    torch.testing.assert_close(b.elbo, a.elbo, rtol=0, atol=0)
    torch.testing.assert_close(b.loss, a.loss, rtol=0, atol=0)
    torch.testing.assert_close(b.loss, -b.elbo.mean(), rtol=0, atol=0)
    # and the same gradients
    ga = torch.autograd.grad(a.loss, list(vae.parameters()))
    gb = torch.autograd.grad(b.loss, list(bvae.parameters()))
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v, rtol=0, atol=0)


def test_beta_weights_the_kl_in_the_loss_but_elbo_stays_the_true_bound():
    vae, bvae = _pair()
    bvae.beta = 4.0
    x = _x()
    a, b = vae.loss(Batch(x), generator=_gen()), bvae.loss(Batch(x), generator=_gen())
    torch.testing.assert_close(b.elbo, a.elbo, rtol=0, atol=0)           # recon - kl, whatever beta
    torch.testing.assert_close(b.elbo, b.terms["recon"] - b.terms["kl"])
    torch.testing.assert_close(b.loss, -(b.terms["recon"] - 4.0 * b.terms["kl"]).mean())
    assert b.loss.item() > a.loss.item()                                   # the KL costs four times as much
    # the closed-form KL of the encoder
    mu, logvar = bvae.encode(x)
    torch.testing.assert_close(b.terms["kl"], kl_normal_standard(mu, logvar))


def test_beta_zero_puts_no_price_on_the_kl():
    """β = 0: the loss is the reconstruction alone, an autoencoder whose noise nothing controls."""
    _, bvae = _pair()
    bvae.beta = 0.0
    out = bvae.loss(Batch(_x()), generator=_gen())
    torch.testing.assert_close(out.loss, -out.terms["recon"].mean())


def test_capacity_objective_is_gamma_times_the_distance_of_the_rate_to_c():
    vae, cap = _pair(CapacityVAE, gamma=7.0, capacity=2.5)
    out = cap.loss(Batch(_x()), generator=_gen())
    r, k = out.terms["recon"], out.terms["kl"]
    torch.testing.assert_close(out.loss, -(r.mean() - 7.0 * (k.mean() - 2.5).abs()))
    torch.testing.assert_close(out.elbo, r - k)
    torch.testing.assert_close(out.elbo, vae.loss(Batch(_x()), generator=_gen()).elbo, rtol=0, atol=0)


def test_dual_ascent_step_is_the_documented_update_and_only_in_training_mode():
    _, rate = _pair(RateConstrainedVAE, beta=2.0, target_rate=0.01, dual_step=0.1)
    x = _x()
    out = rate.loss(Batch(x), generator=_gen())
    r = out.terms["kl"].mean().item()
    assert (out.terms["beta"] == 2.0).all()
    torch.testing.assert_close(out.loss, -(out.terms["recon"] - 2.0 * out.terms["kl"]).mean())
    assert rate.beta == pytest.approx(2.0 * math.exp(0.1 * (r - 0.01)), rel=1e-12)
    assert r > 0.01 and rate.beta > 2.0                         # above the target: the multiplier grows
    rate.eval()
    before = rate.beta
    rate.loss(Batch(x), generator=_gen())
    assert rate.beta == before                                  # evaluation never moves it
    rate.train()
    rate.target_rate = 100.0                                    # far below the target: it shrinks,
    for _ in range(200):
        rate.dual_update(0.0)
    assert rate.beta == pytest.approx(1e-3)                     # down to the clip, never to 0


def test_each_model_declares_only_the_settings_it_uses():
    assert set(CapacityVAE.settings) == {"capacity", "n_samples", "kl_estimator"}
    assert set(RateConstrainedVAE.settings) == {"target_rate", "n_samples", "kl_estimator"}
    with pytest.raises(ValueError, match="beta"):               # the multiplier is learned, not scheduled
        fit(RateConstrainedVAE(D, d, hidden_dims=(16,)), _x(20), epochs=1, progress=False,
            schedules={"beta": 2.0})
    with pytest.raises(ValueError, match="beta"):               # the capacity objective has no beta
        fit(CapacityVAE(D, d, hidden_dims=(16,)), _x(20), epochs=1, progress=False, beta=2.0)


# ------------------------------------------------------------------ training to a rate (30-epoch fits, shared)

@pytest.fixture(scope="module")
def digits():
    return load("digits", "train", binarize="static").x


def _rate(model, x):
    return kl_per_dimension(model, x).sum().item()


@pytest.fixture(scope="module")
def free_rate(digits):
    """The rate an ELBO-trained VAE (beta = 1) spends on the same data and budget."""
    torch.manual_seed(0)
    free = VAE(64, 8, hidden_dims=(64,))
    fit(free, digits, epochs=30, batch_size=100, lr=3e-3, progress=False)
    free.eval()
    return _rate(free, digits)


@pytest.fixture(scope="module", params=[(1.5, 0.3), (8.0, 0.5)], ids=["target1.5", "target8"])
def dual_run(request, digits):
    """A RateConstrainedVAE trained 30 epochs towards a target rate from beta = 1, with its history
    and the stated tolerance; shared by the tests below."""
    target, tolerance = request.param
    torch.manual_seed(0)
    model = RateConstrainedVAE(64, 8, hidden_dims=(64,), beta=1.0, target_rate=target, dual_step=0.02)
    history = fit(model, digits, epochs=30, batch_size=100, lr=3e-3, progress=False)
    return model.eval(), history, target, tolerance


@pytest.mark.slow
def test_learned_multiplier_reaches_the_target_rate(digits, dual_run):
    """Dual ascent drives the rate to the target within the stated tolerance."""
    model, h, target, tolerance = dual_run
    assert abs(_rate(model, digits) - target) < tolerance
    assert abs(h.terms["kl"][-1] - target) < tolerance
    assert len(set(h.terms["beta"])) > 1                        # it moved


@pytest.mark.slow
def test_learned_multiplier_is_above_one_exactly_when_the_target_is_below_the_elbo_rate(free_rate, dual_run):
    """A target below the ELBO's own rate needs beta > 1, one above it beta < 1."""
    model, _, target, tolerance = dual_run
    assert abs(free_rate - target) > 4 * tolerance              # the constraint is active
    assert (model.beta > 1.0) == (target < free_rate)


@pytest.mark.slow
def test_capacity_schedule_drives_the_rate_to_c(digits):
    """gamma |R - C| with C ramped to 4 nats by linear_ramp: the final rate is within 0.5 nats of C."""
    capacity, tolerance = 4.0, 0.5
    torch.manual_seed(0)
    model = CapacityVAE(64, 8, hidden_dims=(64,), gamma=50.0)
    h = fit(model, digits, epochs=30, batch_size=100, lr=3e-3, progress=False,
            schedules={"capacity": linear_ramp(0.0, capacity, 15)})
    model.eval()
    assert h.settings["capacity"][:3] == [0.0, capacity / 15, 2 * capacity / 15]
    assert h.settings["capacity"][-1] == capacity and model.capacity == capacity
    assert abs(_rate(model, digits) - capacity) < tolerance


def test_fit_schedules_beta_per_epoch():
    model = VAE(D, d, hidden_dims=(16,))
    h = fit(model, _x(60), epochs=3, batch_size=20, progress=False, schedules={"beta": linear_ramp(0, 4, 2)})
    assert h.settings["beta"] == [0.0, 2.0, 4.0] and model.beta == 4.0


def test_checkpoint_keeps_the_learned_multiplier(tmp_path):
    torch.manual_seed(0)
    model = RateConstrainedVAE(D, d, hidden_dims=(16,), beta=1.0, target_rate=0.1, dual_step=0.05)
    fit(model, _x(60), epochs=2, batch_size=20, progress=False, schedules={"target_rate": 0.2})
    assert model.beta != 1.0 and model.target_rate == 0.2
    save_checkpoint(model, tmp_path / "ck")
    again, _ = load_checkpoint(tmp_path / "ck")
    assert type(again) is RateConstrainedVAE
    assert again.beta == model.beta and again.target_rate == 0.2     # the state, not the constructor's values


@pytest.mark.parametrize("cls, kwargs, error, match", [
    (RateConstrainedVAE, dict(beta=-1.0), ValueError, "beta must be a finite number > 0"),
    (RateConstrainedVAE, dict(beta="4"), TypeError, None),
    (CapacityVAE, dict(gamma=0.0), ValueError, "gamma must be a finite number > 0"),
    (CapacityVAE, dict(capacity=-1.0), ValueError, "capacity"),
    (RateConstrainedVAE, dict(dual_step=-0.1), ValueError, "dual_step"),
    (RateConstrainedVAE, dict(beta_range=(2.0, 1.0)), ValueError, "beta_range must satisfy"),
    (RateConstrainedVAE, dict(beta=1e4), ValueError, "must lie in beta_range"),
    (RateConstrainedVAE, dict(target_rate=float("nan")), ValueError, "target_rate"),
])
def test_bad_arguments_say_what_was_expected(cls, kwargs, error, match):
    if match is None:
        cls(D, d, **kwargs)              # a numeric string is accepted as a number
        return
    with pytest.raises(error, match=match):
        cls(D, d, **kwargs)


def test_settings_are_checked_when_fit_sets_them():
    with pytest.raises(ValueError, match="capacity"):
        fit(CapacityVAE(D, d, hidden_dims=(16,)), _x(20), epochs=1, progress=False, schedules={"capacity": -1.0})


# ------------------------------------------------------------------ MSE + KL = fixed-variance Gaussian β-VAE

@pytest.mark.parametrize("sigma", [0.1, 0.5 ** 0.5, 1.0, 3.0])
def test_mse_plus_kl_is_a_fixed_variance_gaussian_beta_vae(sigma):
    g = torch.Generator().manual_seed(3)
    B, P = 16, 20
    x = torch.rand(B, P, generator=g, dtype=torch.float64)
    x_mean = torch.rand(B, P, generator=g, dtype=torch.float64).requires_grad_()
    kl = torch.rand(B, generator=g, dtype=torch.float64).requires_grad_()
    logvar = torch.full_like(x, 2 * math.log(sigma))
    recon = gaussian_log_prob(x, x_mean, logvar)                 # log N(x; x_mean, sigma^2 I)
    neg_elbo = -(recon - kl)
    const = 0.5 * P * math.log(2 * math.pi * sigma ** 2)
    weight = 2 * sigma ** 2                                       # the KL weight of the recipe
    assert fixed_variance_beta(sigma, weight) == pytest.approx(1.0)
    assert fixed_variance_sigma(1.0, weight) == pytest.approx(sigma)
    mse = mse_kl_loss(x, x_mean, kl, weight)
    torch.testing.assert_close(mse / (2 * sigma ** 2) + const, neg_elbo)
    # same gradients up to the factor 2 sigma^2: the same training direction
    g1 = torch.autograd.grad(mse.sum(), [x_mean, kl])
    g2 = torch.autograd.grad(neg_elbo.sum(), [x_mean, kl])
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, 2 * sigma ** 2 * b)
    # any other weight is a beta-VAE with beta = weight / (2 sigma^2)
    w = 1.0
    beta = fixed_variance_beta(sigma, w)
    torch.testing.assert_close(mse_kl_loss(x, x_mean, kl, w) / (2 * sigma ** 2) + const, -(recon - beta * kl))
    # averaging the squared error over pixels divides the reconstruction by P: beta grows by P
    beta_mean = fixed_variance_beta(sigma, w, reduction="mean", n_pixels=P)
    assert beta_mean == pytest.approx(P * beta)
    torch.testing.assert_close(mse_kl_loss(x, x_mean, kl, w, reduction="mean") * P / (2 * sigma ** 2) + const,
                               -(recon - beta_mean * kl))


def test_mse_helpers_reject_bad_input():
    x = torch.rand(4, 5)
    with pytest.raises(ValueError, match="same shape"):
        mse_kl_loss(x, x[:, :3], torch.zeros(4), 1.0)
    with pytest.raises(ValueError, match="one value per example"):
        mse_kl_loss(x, x, torch.zeros(5), 1.0)
    with pytest.raises(ValueError, match="reduction"):
        mse_kl_loss(x, x, torch.zeros(4), 1.0, reduction="max")
    with pytest.raises(ValueError, match="n_pixels"):
        fixed_variance_beta(1.0, reduction="mean")
    with pytest.raises(ValueError, match="sigma must be a finite number > 0"):
        fixed_variance_beta(0.0)
