"""The hand-derived VAE step (vae_core.fused): autograd's gradients, the same training, and where it applies."""
import itertools

import pytest
import torch

from vae_core import VAE, fit
from vae_core.fused import FusedVAEStep, why_not
from vae_core.models import MODELS
from vae_core.models.base import Batch
from vae_core.schedules import linear_warmup

SHAPES = [  # (input_dim, latent_dim, hidden_dims)
    (9, 3, (7,)),
    (9, 1, (6, 5)),
    (12, 4, (5, 8, 6)),
]


def _data(likelihood, n, D, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, D, generator=g, dtype=torch.float64)
    if likelihood == "bernoulli":
        x[: n // 2] = (x[: n // 2] < 0.4).double()   # binary rows and grey rows, both in [0, 1]
    else:
        x = 3.0 * torch.randn(n, D, generator=g, dtype=torch.float64)
    return x


@pytest.mark.parametrize("likelihood,activation,shape,n_samples,batch",
                         list(itertools.product(("bernoulli", "gaussian"), ("tanh", "relu"), SHAPES, (1, 4), (1, 6))))
def test_gradients_equal_autograd_in_float64(likelihood, activation, shape, n_samples, batch):
    D, d, hidden = shape
    torch.manual_seed(1)
    model = VAE(D, d, hidden, likelihood=likelihood, activation=activation).double()
    model.n_samples, model.beta = n_samples, 0.37
    with torch.no_grad():   # spread the log-variances so the soft clamp and the KL's gradient matter
        model.encoder.net[-1].bias[d:].uniform_(-4.0, 4.0)
    x = _data(likelihood, batch, D)
    ref = model.loss(Batch(x), generator=torch.Generator().manual_seed(5))
    model.zero_grad()
    ref.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    for p in model.parameters():    # the fused step must overwrite, not accumulate
        p.grad.fill_(123.0)
    out = FusedVAEStep(model)(x, torch.Generator().manual_seed(5))
    torch.testing.assert_close(out.loss, ref.loss.detach(), rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(out.elbo, ref.elbo.detach(), rtol=1e-12, atol=1e-10)
    for name in ("recon", "kl"):
        torch.testing.assert_close(out.terms[name], ref.terms[name].detach(), rtol=1e-12, atol=1e-10)
    for name, p in model.named_parameters():
        assert p.grad.abs().max() > 0 or grads[name].abs().max() == 0, name
        torch.testing.assert_close(p.grad, grads[name], rtol=1e-10, atol=1e-10, msg=f"d loss / d {name}")


def test_second_call_reuses_buffers_and_still_matches():
    """Buffers are kept per batch size: a full batch, a partial one, then the full one again."""
    torch.manual_seed(2)
    model = VAE(10, 2, (6,)).double()
    step = FusedVAEStep(model)
    for n in (8, 3, 8):
        x = _data("bernoulli", n, 10, seed=n)
        out = step(x, torch.Generator().manual_seed(n))
        fused = [p.grad.clone() for p in model.parameters()]
        ref = model.loss(Batch(x), generator=torch.Generator().manual_seed(n))
        model.zero_grad()
        ref.loss.backward()
        torch.testing.assert_close(out.loss, ref.loss.detach(), rtol=1e-12, atol=1e-12)
        for g, p in zip(fused, model.parameters()):
            torch.testing.assert_close(g, p.grad, rtol=1e-10, atol=1e-12)


def test_fit_trains_the_same_with_and_without_the_fused_step():
    """Same seed, same noise: the fused and autograd runs agree to float32 rounding after 3 epochs,
    with a beta schedule and two samples per example."""
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(300, 20, generator=g) < 0.3).float()
    runs = {}
    for fused in (False, True):
        torch.manual_seed(0)
        model = VAE(20, 3, (16,))
        hist = fit(model, x, x[:50], epochs=3, batch_size=64, progress=False, fused=fused,
                   beta=linear_warmup(3), n_samples=2)
        runs[fused] = (hist, torch.cat([p.detach().flatten() for p in model.parameters()]))
    (h0, w0), (h1, w1) = runs[False], runs[True]
    assert h0.settings["beta"] == h1.settings["beta"]
    torch.testing.assert_close(torch.tensor(h1.train_elbo), torch.tensor(h0.train_elbo), rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(torch.tensor(h1.test_elbo), torch.tensor(h0.test_elbo), rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(w1, w0, rtol=1e-3, atol=1e-4)


def _other_models():
    return [name for name in MODELS if name != "VAE"]


@pytest.mark.parametrize("name", _other_models())
def test_other_models_are_not_fused(name):
    model = MODELS[name](input_dim=12, latent_dim=2)
    assert why_not(model) is not None
    with pytest.raises(ValueError, match="does not apply"):
        FusedVAEStep(model)


def test_why_not_names_each_reason():
    assert why_not(VAE(8, 2, (4,))) is None
    assert why_not(VAE(8, 2, (4,), likelihood="gaussian", activation="relu")) is None
    m = VAE(8, 2, (4,))
    m.kl_estimator = "mc"
    assert "closed form" in why_not(m)
    assert "not tanh or relu" in why_not(VAE(8, 2, (4,), activation="elu"))
    m = VAE(8, 2, (4,))
    m.decoder.net[0].weight.requires_grad_(False)
    assert "frozen" in why_not(m)
    m = VAE(8, 2, (4,))
    m.encoder.net[0].register_forward_hook(lambda *a: None)
    assert "hook" in why_not(m)
    assert "float" in why_not(VAE(8, 2, (4,)).half())


def test_fit_fused_true_says_why_it_cannot():
    x = torch.rand(20, 8)
    with pytest.raises(ValueError, match="FreeBitsVAE is not the plain VAE"):
        fit(MODELS["FreeBitsVAE"](input_dim=8, latent_dim=2), x, epochs=1, progress=False, fused=True)
    with pytest.raises(ValueError, match="closed form"):
        fit(VAE(8, 2, (4,)), x, epochs=1, progress=False, fused=True, kl="mc")
    with pytest.raises(TypeError, match="fused must be"):
        fit(VAE(8, 2, (4,)), x, epochs=1, progress=False, fused="yes")


def test_fused_fit_rejects_bad_pixels_like_the_model_does():
    x = torch.rand(20, 8) * 2.0
    with pytest.raises(ValueError, match=r"pixels in \[0, 1\]"):
        fit(VAE(8, 2, (4,)), x, epochs=1, progress=False)
    with pytest.raises(ValueError, match="finite"):
        fit(VAE(8, 2, (4,)), torch.full((20, 8), float("nan")), epochs=1, progress=False)


def test_direct_adam_is_the_fused_adam_step_bit_for_bit():
    """fit's shortcut around torch.optim.Adam.step (the same fused kernel on the optimizer's own state)
    moves the weights exactly as opt.step() does, and leaves a true state_dict behind."""
    from vae_core.train import _DirectAdam, make_optimizer
    torch.manual_seed(0)
    a, b = VAE(10, 2, (6,)), VAE(10, 2, (6,))
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = make_optimizer(a.parameters(), lr=3e-2, weight_decay=1e-3), \
        make_optimizer(b.parameters(), lr=3e-2, weight_decay=1e-3)
    assert _DirectAdam.applies(opt_b)
    direct = _DirectAdam(opt_b)
    for step in range(6):
        for p, q in zip(a.parameters(), b.parameters()):
            p.grad = torch.randn(p.shape, generator=torch.Generator().manual_seed(step))
            q.grad = p.grad.clone()
        opt_a.step()
        direct.step()
        for p, q in zip(a.parameters(), b.parameters()):
            assert torch.equal(p, q)
    sa, sb = opt_a.state_dict()["state"], opt_b.state_dict()["state"]
    assert all(torch.equal(sa[k]["step"], sb[k]["step"]) and sb[k]["step"].item() == 6 for k in sa)
    assert all(torch.equal(sa[k]["exp_avg_sq"], sb[k]["exp_avg_sq"]) for k in sa)
    # anything but a plain fused Adam of one group takes opt.step()
    assert not _DirectAdam.applies(make_optimizer(a.parameters(), "adagrad"))
    assert not _DirectAdam.applies(torch.optim.Adam(a.parameters(), amsgrad=True, fused=True))
    assert not _DirectAdam.applies(torch.optim.Adam(a.parameters()))
