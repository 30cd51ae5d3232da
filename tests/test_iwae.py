"""The importance-weighted bound and the IWAE: the maths checked numerically.

* ``iwae_bound`` is logsumexp - log k, and with k = 1 it is the single-sample ELBO on the same noise;
* for fixed samples, L_k is at least the average of the bounds of any equal split of the samples
  (the step of Burda et al.'s proof), so E[L_k] cannot decrease with k;
* on the exact linear-Gaussian model: L_k = log p(x) for every draw when q is the posterior, and with
  a mismatched q the mean of L_k climbs with k, stays below log p(x) and approaches it;
* the gradient of L_k with respect to the log-weights is the vector of normalised weights.
"""
import math

import pytest
import torch

from linear_gaussian import make
from vae_core import VAE, Batch, fit
from vae_core.models import IWAE, MODELS
from vae_core.objectives import iwae_bound, log_mean_exp
from vae_core.exact import LinearGaussian

pytestmark = pytest.mark.usefixtures("one_thread")


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------ iwae_bound itself

def test_iwae_bound_is_log_mean_exp_over_the_sample_dimension():
    log_w = torch.randn(7, 5, generator=_g(), dtype=torch.float64) * 3 - 100
    by_hand = torch.log(torch.exp(log_w + 100).mean(0)) - 100
    torch.testing.assert_close(iwae_bound(log_w), by_hand)
    torch.testing.assert_close(iwae_bound(log_w.T, dim=1), by_hand)
    torch.testing.assert_close(iwae_bound(log_w), log_mean_exp(log_w, 0))
    torch.testing.assert_close(iwae_bound(log_w[:1]), log_w[0])           # k = 1: the log-weight itself


def test_iwae_bound_is_stable_for_very_negative_log_weights():
    log_w = torch.tensor([[-1e4], [-1e4 + math.log(3.0)]])
    out = iwae_bound(log_w)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.tensor([-1e4 + math.log(2.0)]))


def test_iwae_bound_rejects_bad_input():
    with pytest.raises(TypeError, match="torch.Tensor"):
        iwae_bound([[0.0, 1.0]])
    with pytest.raises(TypeError, match="floating-point"):
        iwae_bound(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="no samples"):
        iwae_bound(torch.zeros(0, 4))
    with pytest.raises(ValueError, match="dim=2 is not a dimension"):
        iwae_bound(torch.zeros(3, 4), dim=2)


def test_split_inequality_for_fixed_samples():
    """log of a mean >= mean of the logs of block means (Jensen): the heart of E[L_k] <= E[L_2k]."""
    log_w = torch.randn(12, 50, generator=_g(1), dtype=torch.float64) * 2
    full = iwae_bound(log_w)
    for m in (1, 2, 3, 4, 6):
        blocks = iwae_bound(log_w.view(12 // m, m, 50), dim=1).mean(0)     # average L_m over the blocks
        assert (full >= blocks - 1e-12).all()
        assert (full > blocks + 1e-6).any()                                # strict: the weights differ


def test_gradient_wrt_log_weights_is_the_normalised_weights():
    log_w = torch.randn(9, 4, generator=_g(2), dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(iwae_bound(log_w).sum(), log_w)
    torch.testing.assert_close(grad, torch.softmax(log_w.detach(), 0))
    torch.testing.assert_close(grad.sum(0), torch.ones(4, dtype=torch.float64))


# ------------------------------------------------------------------------------ the IWAE model

def _pair(k=5, seed=0):
    torch.manual_seed(seed)
    vae = VAE(12, 3, hidden_dims=(16,))
    iwae = IWAE(12, 3, hidden_dims=(16,), k=k)
    iwae.load_state_dict(vae.state_dict())
    x = (torch.rand(20, 12, generator=_g(3)) > 0.5).float()
    return vae, iwae, x


def test_k_equals_1_is_the_single_sample_elbo_on_the_same_noise():
    vae, iwae, x = _pair(k=1)
    out = iwae.loss(Batch(x), generator=_g(4))
    elbo_mc = vae.elbo(x, n_samples=1, kl="mc", generator=_g(4))          # the same z
    torch.testing.assert_close(out.elbo, elbo_mc.elbo)
    torch.testing.assert_close(out.terms["recon"], elbo_mc.recon)
    torch.testing.assert_close(out.terms["kl_mc"], elbo_mc.kl)
    torch.testing.assert_close(out.elbo, vae.log_weights(x, 1, generator=_g(4))[0])
    # the closed-form KL term is that of the same q, and L_1 estimates the analytic-KL ELBO too
    torch.testing.assert_close(out.terms["kl"], vae.elbo(x, n_samples=1, generator=_g(4)).kl)
    torch.testing.assert_close(out.terms["ess"], torch.ones(20))


def test_bound_uses_the_models_own_log_weights_and_is_above_their_mean():
    _, iwae, x = _pair(k=6)
    out = iwae.loss(Batch(x), generator=_g(5))
    log_w = iwae.log_weights(Batch(x), 6, generator=_g(5))                # the same z again
    torch.testing.assert_close(out.elbo, torch.logsumexp(log_w, 0) - math.log(6))
    torch.testing.assert_close(out.terms["recon"] - out.terms["kl_mc"], log_w.mean(0))
    assert (out.elbo >= log_w.mean(0) - 1e-5).all()
    assert ((out.terms["ess"] >= 1 - 1e-5) & (out.terms["ess"] <= 6 + 1e-5)).all()
    torch.testing.assert_close(out.loss, -out.elbo.mean())


def test_the_bound_is_not_built_with_the_analytic_kl():
    """For k > 1, log-mean-exp of (log p(x|z_i) - KL) is a different number: the model must not use it."""
    _, iwae, x = _pair(k=8)
    out = iwae.loss(Batch(x), generator=_g(6))
    t = iwae.iwae_terms(x, generator=_g(6))
    wrong = iwae_bound(t.log_px_z - out.terms["kl"])
    assert (out.elbo - wrong).abs().max() > 1e-3
    torch.testing.assert_close(out.elbo, t.bound)


def test_gradient_is_the_weighted_sum_of_log_weight_gradients():
    """grad L_k = sum_i w~_i grad log w_i (normalised weights held fixed)."""
    _, iwae, x = _pair(k=4)
    params = list(iwae.parameters())
    grads = torch.autograd.grad(iwae.loss(Batch(x), generator=_g(7)).loss, params)
    t = iwae.iwae_terms(x, generator=_g(7))
    surrogate = -(torch.softmax(t.log_w, 0).detach() * t.log_w).sum(0).mean()
    for a, b in zip(grads, torch.autograd.grad(surrogate, params)):
        torch.testing.assert_close(a, b)


def test_the_compute_matched_vae_differs_from_the_iwae_only_in_the_objective():
    """Burda et al.'s control (chapter 11, §11.4): VAE(n_samples=k) and IWAE(k) from the same weights draw the
    same k samples; the VAE averages their log-weights (its ELBO estimate, here with the Monte-Carlo KL), the
    IWAE takes the log of their average weight, which is never smaller (Jensen), and their gradients differ."""
    vae, iwae, x = _pair(k=5)
    vae.n_samples = 5
    vae.kl_estimator = "mc"
    out_vae = vae.loss(Batch(x), generator=_g(8))
    out_iwae = iwae.loss(Batch(x), generator=_g(8))
    log_w = iwae.log_weights(Batch(x), 5, generator=_g(8))                  # the same five z per image
    torch.testing.assert_close(out_vae.elbo, log_w.mean(0))
    torch.testing.assert_close(out_iwae.elbo, iwae_bound(log_w))
    assert (out_iwae.elbo >= out_vae.elbo - 1e-5).all() and (out_iwae.elbo > out_vae.elbo + 1e-3).any()
    g_vae = torch.autograd.grad(out_vae.loss, list(vae.parameters()))
    g_iwae = torch.autograd.grad(out_iwae.loss, list(iwae.parameters()))
    assert max((a - b).abs().max().item() for a, b in zip(g_vae, g_iwae)) > 1e-4
    # with the analytic KL (the library's default) the VAE's bound is the same in expectation, not per draw
    vae.kl_estimator = "analytic"
    draws = torch.stack([vae.loss(Batch(x), generator=_g(100 + i)).elbo for i in range(400)]).double()
    mc = torch.stack([vae.log_weights(Batch(x), 5, generator=_g(900 + i)).mean(0) for i in range(400)]).double()
    diff = draws.mean(0) - mc.mean(0)
    se = (draws.var(0) / 400 + mc.var(0) / 400).sqrt()
    assert (diff.abs() < 4.5 * se + 1e-6).all()


def test_k_is_the_one_setting_and_beta_cannot_be_set():
    m = IWAE(12, 3, k=7)
    assert m.k == 7 and m.config["k"] == 7 and "IWAE" in MODELS and set(IWAE.settings) == {"k"}
    with pytest.raises(ValueError, match="no setting 'beta'"):
        fit(m, torch.zeros(4, 12), epochs=1, progress=False, beta=2.0)
    with pytest.raises(ValueError, match="no setting 'kl_estimator'"):
        fit(m, torch.zeros(4, 12), epochs=1, progress=False, kl="nonsense")
    with pytest.raises(ValueError, match="k must be a positive int"):
        m.k = 0
    with pytest.raises(ValueError, match="k must be a positive int"):
        IWAE(12, 3, k=0)
    with pytest.raises(TypeError, match="k must be a positive int"):
        IWAE(12, 3, k=2.5)


# ------------------------------------------------------------------------------ the exact model

def _exact(shift):
    model, evidence = make(D=3, d=2, sigma=0.5, encoder_shift=shift, encoder_logvar_shift=-0.7 if shift else 0.0)
    iwae = IWAE(3, 2, hidden_dims=(), likelihood="gaussian", k=1)
    iwae.load_state_dict(model.state_dict())
    x = evidence.sample(torch.Size([6]))
    return iwae, evidence, x


def test_exact_posterior_gives_log_px_for_every_k_and_every_draw():
    torch.manual_seed(0)
    iwae, evidence, x = _exact(0.0)
    log_px = evidence.log_prob(x)
    for k in (1, 3, 50):
        bound = iwae.iwae_terms(x, k=k, generator=_g(k)).bound
        torch.testing.assert_close(bound, log_px, atol=2e-4, rtol=0)


def test_mean_bound_climbs_with_k_towards_the_exact_log_px():
    torch.manual_seed(1)
    iwae, evidence, x = _exact(0.6)      # a shifted and too narrow q: a real gap
    log_px = evidence.log_prob(x).double()
    ks = (1, 2, 5, 20, 100, 1000)
    means, ses = [], []
    with torch.no_grad():
        mu, logvar = iwae.encode(x)
        for k in ks:
            repeats = max(100, 4000 // k)          # independent draws of L_k, k samples each
            log_w = iwae.iwae_terms(x, k=k * repeats, generator=_g(k)).log_w.double()
            draws = iwae_bound(log_w.view(repeats, k, -1), dim=1)
            means.append(draws.mean(0))
            ses.append(draws.std(0) / math.sqrt(repeats))
    # k = 1: the closed-form ELBO of this linear-Gaussian model
    dec = iwae.decoder.net[0]
    W, b = dec.weight[:3].double(), dec.bias[:3].double()
    exact_elbo = LinearGaussian(W, b, sigma=0.5).elbo(x.double(), mu.double(), logvar.double())
    assert ((means[0] - exact_elbo).abs() < 4 * ses[0] + 1e-3).all()
    gap0 = log_px - means[0]
    assert (gap0 > 0.2).all()
    for lo, hi, s_lo, s_hi in zip(means, means[1:], ses, ses[1:]):
        assert (hi - lo > -4 * (s_lo ** 2 + s_hi ** 2).sqrt()).all()    # non-decreasing, within noise
        assert (hi.mean() > lo.mean())                                  # and rising on average
    assert (means[-1] < log_px + 4 * ses[-1] + 1e-4).all()               # below log p(x)
    assert ((log_px - means[-1]) < 0.25 * gap0).all()                    # most of the gap closed
