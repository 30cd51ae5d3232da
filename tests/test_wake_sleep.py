"""Wake-sleep (Hinton et al. 1995) on the VAE's networks: each phase moves only its own weights and
does what it is for, on a model whose posterior is exact; the training curve is comparable with the
VAE's (same evaluation images and noise), reproducible, and rejects bad input."""
import pytest
import torch
from torch.distributions import MultivariateNormal

from linear_gaussian import make
from vae_core import VAE, paper
from vae_core.evaluate import mean_elbo
from vae_core.models.wake_sleep import WakeSleepVAE, dream, sleep_loss, wake_loss
from vae_core.paper import evaluation_sets, train_curve, wake_sleep_curves

pytestmark = pytest.mark.usefixtures("one_thread")


def _grads(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    enc = [p.grad for p in model.encoder.parameters()]
    dec = [p.grad for p in model.decoder.parameters()]
    return enc, dec


def _is_zero(grads):
    return all(g is None or torch.count_nonzero(g) == 0 for g in grads)


def test_wake_moves_only_the_decoder_and_sleep_only_the_encoder(gen):
    torch.manual_seed(0)
    model = VAE(12, 3, (8,))
    x = torch.bernoulli(torch.full((5, 12), 0.3), generator=gen)
    enc, dec = _grads(model, wake_loss(model, x, gen).mean())
    assert _is_zero(enc) and not _is_zero(dec)
    enc, dec = _grads(model, sleep_loss(model, 7, gen).mean())
    assert not _is_zero(enc) and _is_zero(dec)


def test_wake_gradient_is_the_elbo_gradient_for_the_decoder():
    """For the same z, grad_theta log p(x|z) = grad_theta ELBO: the KL term has no theta."""
    torch.manual_seed(1)
    model = VAE(10, 2, (6,))
    x = torch.bernoulli(torch.full((4, 10), 0.5), generator=torch.Generator().manual_seed(0))
    _, dec_wake = _grads(model, wake_loss(model, x, torch.Generator().manual_seed(3)).sum())
    _, dec_elbo = _grads(model, -model.elbo(x, generator=torch.Generator().manual_seed(3)).elbo.sum())
    for a, b in zip(dec_wake, dec_elbo):
        torch.testing.assert_close(a, b)


def test_dreams_come_from_the_generative_model(gen):
    torch.manual_seed(0)
    model = VAE(6, 2, (5,))
    z, x = dream(model, 20_000, gen)
    assert z.shape == (20_000, 2) and x.shape == (20_000, 6) and not x.requires_grad
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(z.mean(0), torch.zeros(2), rtol=0, atol=0.04)
    # each pixel is a coin flip with the decoder's probability at its own z
    with torch.no_grad():
        p = torch.sigmoid(model.decode(z))
    resid = (x - p).mean(0) / (p * (1 - p)).mean(0).sqrt() * 20_000 ** 0.5
    assert resid.abs().max() < 4.5, resid


def test_sleep_phase_learns_the_exact_posterior_of_a_linear_gaussian_model():
    """The sleep phase minimises E_p(x) KL(p(z|x) || q(z|x)); with a family that contains the exact
    posterior (linear encoder, orthogonal decoder) it recovers it, and the fit on fresh dreams improves."""
    true_model, evidence = make(D=3, d=2, sigma=0.5)
    model, _ = make(D=3, d=2, sigma=0.5, encoder_shift=0.8, encoder_logvar_shift=1.0)
    x_test = evidence.sample((400,))

    def mean_kl_to_posterior():   # E_x KL(p(z|x) || q(z|x)) with the exact posterior of the decoder
        with torch.no_grad():
            mu_p, lv_p = true_model.encode(x_test)
            mu_q, lv_q = model.encode(x_test)
        p = MultivariateNormal(mu_p, torch.diag_embed(lv_p.exp()))
        q = MultivariateNormal(mu_q, torch.diag_embed(lv_q.exp()))
        return torch.distributions.kl_divergence(p, q).mean().item()

    g = torch.Generator().manual_seed(0)
    held_out = dream(model, 2000, torch.Generator().manual_seed(99))
    before_kl = mean_kl_to_posterior()
    with torch.no_grad():
        before_fit = torch.distributions.Normal(*_q(model, held_out[1])).log_prob(held_out[0]).sum(-1).mean()
    opt = torch.optim.Adam(model.encoder.parameters(), lr=0.02)
    for _ in range(800):
        opt.zero_grad()
        sleep_loss(model, 200, g).mean().backward()
        opt.step()
    after_kl = mean_kl_to_posterior()
    with torch.no_grad():
        after_fit = torch.distributions.Normal(*_q(model, held_out[1])).log_prob(held_out[0]).sum(-1).mean()
    assert before_kl > 0.5 and after_kl < 0.02, (before_kl, after_kl)
    assert after_fit > before_fit + 0.3, (before_fit, after_fit)


def _q(model, x):
    mu, logvar = model.encode(x)
    return mu, torch.exp(0.5 * logvar)


def test_wake_phase_increases_log_likelihood_under_the_encoder_samples():
    torch.manual_seed(0)
    model = VAE(20, 3, (16,))
    g = torch.Generator().manual_seed(0)
    probs = (torch.rand(2, 20, generator=g) > 0.5).float() * 0.9 + 0.05
    x = torch.bernoulli(probs.repeat(100, 1), generator=g)          # 200 images from 2 prototypes
    opt = torch.optim.Adagrad(model.decoder.parameters(), lr=0.05)

    def expected_recon():
        with torch.no_grad():
            return -torch.stack([wake_loss(model, x, torch.Generator().manual_seed(s)) for s in range(20)]).mean()

    before = expected_recon()
    for _ in range(200):
        opt.zero_grad()
        wake_loss(model, x, g).mean().backward()
        opt.step()
    after = expected_recon()
    assert after > before + 3.0, (before, after)       # nats per image, 20 pixels


def test_curve_is_reproducible_and_scored_like_the_vae_curve():
    g = torch.Generator().manual_seed(0)
    x_train = torch.bernoulli(torch.rand(300, 16, generator=g))
    x_test = torch.bernoulli(torch.rand(120, 16, generator=g))
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = WakeSleepVAE(16, 2, (8,))
        runs.append(train_curve(model, x_train, x_test, 1000, checkpoints=[200, 1000], n_eval=100))
    for key in ("samples", "train_elbo", "test_elbo"):
        assert runs[0][key] == runs[1][key]
    r = runs[0]
    assert r["samples"] == [200, 1000] and len(r["train_elbo"]) == 2 and all(map(float.__instancecheck__, r["seconds"]))
    assert all(torch.isfinite(torch.tensor(r["train_elbo"] + r["test_elbo"])))
    # scored on the same images with the same noise as paper.train_curve: after training a VAE
    # with train_curve, re-scoring the final model with this module's helpers gives its last numbers
    torch.manual_seed(0)
    vae = VAE(16, 2, (8,))
    c = paper.train_curve(vae, x_train, x_test, 500, [500], n_eval=100, seed=4)
    tr, te = evaluation_sets(x_train, x_test, n_eval=100, seed=4)
    assert mean_elbo(vae, tr, generator=torch.Generator().manual_seed(7)) == pytest.approx(c["train_elbo"][-1], abs=1e-9)
    assert mean_elbo(vae, te, generator=torch.Generator().manual_seed(7)) == pytest.approx(c["test_elbo"][-1], abs=1e-9)
    # and a wake-sleep model is scored the same way: its bound is the ELBO of its own encoder
    ws = WakeSleepVAE(16, 2, (8,))
    ws.load_state_dict(vae.state_dict())
    assert mean_elbo(ws, tr, generator=torch.Generator().manual_seed(7)) == pytest.approx(c["train_elbo"][-1], abs=1e-6)


def test_wake_sleep_improves_the_bound_of_its_encoder_on_structured_data():
    g = torch.Generator().manual_seed(1)
    protos = (torch.rand(3, 24, generator=g) > 0.5).float() * 0.9 + 0.05
    x = torch.bernoulli(protos[torch.randint(0, 3, (600,), generator=g)], generator=g)
    torch.manual_seed(0)
    r = train_curve(WakeSleepVAE(24, 2, (16,)), x[:500], x[500:], 6000, checkpoints=[100, 6000], lr=0.05,
                         n_eval=100)
    assert r["test_elbo"][-1] > r["test_elbo"][0] + 2.0, r


def test_curves_for_several_latent_sizes_have_the_result_layout():
    g = torch.Generator().manual_seed(0)
    x = torch.bernoulli(torch.rand(200, 10, generator=g))
    models = {}
    res = wake_sleep_curves(x, x[:50], latent_dims=[1, 3], hidden=6, total_samples=400, n_points=2,
                            n_eval=50, models=models, start=100)
    assert res["config"]["method"] == "WakeSleepVAE" and list(res["curves"]) == ["1", "3"]
    assert all(isinstance(m, WakeSleepVAE) for m in models.values())
    assert set(models) == {1, 3} and models[3].latent_dim == 3
    assert res["curves"]["3"]["parameters"] == sum(p.numel() for p in models[3].parameters())
    assert res["curves"]["1"]["samples"] == res["config"]["checkpoints"]


def test_bad_input_raises_clear_errors():
    torch.manual_seed(0)
    model = VAE(4, 2, (3,))
    x = torch.rand(10, 4)
    with pytest.raises(TypeError, match="vae_core.VAE"):
        wake_loss(torch.nn.Linear(2, 2), x)
    with pytest.raises(TypeError, match="torch.Tensor"):
        wake_loss(model, [[0.0] * 4])
    with pytest.raises(ValueError, match="positive int"):
        sleep_loss(model, 0)
    ws = WakeSleepVAE(4, 2, (3,))
    with pytest.raises(ValueError, match="weight_decay"):
        train_curve(ws, x, x, 20, weight_decay=-1.0)
    with pytest.raises(TypeError, match="data set"):
        train_curve(ws, "mnist", x, 20)
