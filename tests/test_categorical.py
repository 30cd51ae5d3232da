"""Chapter 12: the categorical KL, and the categorical VAE checked against exact enumeration of its codes."""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from vae_core import Batch, fit, log_marginal
from vae_core.distributions import kl_categorical, kl_categorical_uniform
from vae_core.models import MODELS, CategoricalVAE, ScoreFunctionCategoricalVAE
from vae_core.schedules import exponential_decay

pytestmark = pytest.mark.usefixtures("one_thread")


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------ the KL to a uniform prior

def test_kl_uniform_is_log_k_minus_entropy_and_matches_other_routes():
    logits = torch.randn(50, 20, 10, generator=_gen(0), dtype=torch.float64) * 3
    q = torch.softmax(logits, -1)
    entropy = -(q * q.log()).sum(-1)
    kl = kl_categorical_uniform(logits)
    assert kl.shape == (50, 20)
    torch.testing.assert_close(kl, math.log(10) - entropy)
    torch.testing.assert_close(kl, kl_categorical(logits))
    uniform = torch.distributions.Categorical(logits=torch.zeros_like(logits))
    torch.testing.assert_close(kl, torch.distributions.kl_divergence(torch.distributions.Categorical(logits=logits),
                                                                     uniform))
    assert (kl >= 0).all() and (kl <= math.log(10) + 1e-12).all()


def test_kl_uniform_limits_and_invariance():
    K = 7
    assert kl_categorical_uniform(torch.zeros(3, K)).abs().max() < 1e-6           # q uniform: 0
    torch.testing.assert_close(kl_categorical_uniform(torch.full((3, K), 4.2)), torch.zeros(3))
    one_hot = torch.full((2, K), -60.0, dtype=torch.float64)
    one_hot[:, 3] = 60.0
    torch.testing.assert_close(kl_categorical_uniform(one_hot), torch.full((2,), math.log(K), dtype=torch.float64))
    logits = torch.randn(4, K, generator=_gen(1))
    torch.testing.assert_close(kl_categorical_uniform(logits), kl_categorical_uniform(logits + 11.0))


def test_kl_uniform_is_never_negative_even_near_uniform():
    for scale in (1e-8, 1e-4, 1e-1, 10.0, 1e3):
        logits = torch.randn(1000, 10, generator=_gen(2)) * scale
        assert (kl_categorical_uniform(logits) >= 0).all(), scale


def test_kl_uniform_equals_monte_carlo():
    logits = torch.randn(10, generator=_gen(3), dtype=torch.float64) * 2
    c = torch.distributions.Categorical(logits=logits).sample((200_000,))
    log_ratio = torch.log_softmax(logits, -1)[c] + math.log(10)            # log q(c) - log p(c)
    se = log_ratio.std() / math.sqrt(len(c))
    assert abs(log_ratio.mean() - kl_categorical_uniform(logits)) < 4 * se


def test_kl_uniform_bad_input():
    with pytest.raises(TypeError, match="torch.Tensor"):
        kl_categorical_uniform([0.1, 0.2])
    with pytest.raises(TypeError, match="floating-point"):
        kl_categorical_uniform(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="at least one category"):
        kl_categorical_uniform(torch.zeros(3, 0))


# ------------------------------------------------------------------------ a model small enough to enumerate

N, K, D = 2, 3, 6


def tiny(cls=CategoricalVAE, sharpen=6.0, **kw):
    torch.manual_seed(0)
    model = cls(D, N, n_categories=K, hidden_dims=(8,), **kw).double()
    with torch.no_grad():   # make q(c|x) far from uniform so that the checks have something to see
        model.encoder[-1].weight.mul_(sharpen)
    return model


def data(n=4):
    return (torch.rand(n, D, generator=_gen(4), dtype=torch.float64) > 0.5).double()


def all_codes():
    """Every one of the K^N one-hot codes, shape (K^N, N, K)."""
    idx = torch.tensor(list(itertools.product(range(K), repeat=N)))
    return F.one_hot(idx, K).double()


def exact(model, x):
    """Exact log p(x) and exact ELBO by summing over all codes."""
    codes = all_codes()[:, None]                                     # (C, 1, N, K)
    log_px_c = model.log_likelihood(x, codes)                        # (C, B)
    log_joint = log_px_c + model.prior.log_prob(codes)
    log_px = torch.logsumexp(log_joint, 0)
    log_q = model.posterior_log_prob(codes, model.encode(x))         # (C, B)
    q = log_q.exp()
    elbo = (q * (log_joint - log_q)).sum(0)
    recon = (q * log_px_c).sum(0)
    return log_px, elbo, recon


def test_enumeration_sanity():
    model, x = tiny(), data()
    with torch.no_grad():
        log_q = model.posterior_log_prob(all_codes()[:, None], model.encode(x))
        torch.testing.assert_close(log_q.exp().sum(0), torch.ones(len(x), dtype=torch.float64))
        log_px, elbo, recon = exact(model, x)
        torch.testing.assert_close(recon - model.kl(model.encode(x)), elbo)  # the closed-form KL is the KL
    assert (elbo < log_px).all()


def test_reported_elbo_is_unbiased_for_the_exact_discrete_elbo():
    for cls, kw in ((CategoricalVAE, dict(hard=False)), (CategoricalVAE, dict(hard=True)),
                    (ScoreFunctionCategoricalVAE, {})):
        model, x = tiny(cls, **kw), data()
        with torch.no_grad():
            _, elbo, _ = exact(model, x)
            reps = 4000
            out = model.loss(Batch(x.repeat(reps, 1)), generator=_gen(5))
            draws = out.elbo.view(reps, len(x))
        se = draws.std(0) / math.sqrt(reps)
        assert ((draws.mean(0) - elbo).abs() < 4 * se + 1e-9).all(), (cls, kw)


def test_log_weights_give_the_exact_log_marginal():
    model, x = tiny(sharpen=2.0), data()
    with torch.no_grad():
        log_px, elbo, _ = exact(model, x)
        log_w = model.log_weights(Batch(x), 50_000, generator=_gen(6))
    # E[w] = p(x) exactly: the weights are those of the discrete model
    torch.testing.assert_close(torch.logsumexp(log_w, 0) - math.log(50_000), log_px, atol=0.02, rtol=0)
    # and E[log w] is the ELBO
    se = log_w.std(0) / math.sqrt(log_w.shape[0])
    assert ((log_w.mean(0) - elbo).abs() < 4 * se).all()
    est = log_marginal(model, x, n_samples=2000, generator=_gen(7))
    assert ((est - log_px).abs() < 0.05).all() and (est > elbo).all()


def _flat_grad(model, loss):
    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    return torch.cat([torch.zeros_like(p).flatten() if g is None else g.flatten()
                      for g, p in zip(grads, model.parameters())])


def test_score_function_gradient_is_unbiased():
    """With many codes per example the estimator's gradient equals the exact ELBO gradient."""
    model, x = tiny(ScoreFunctionCategoricalVAE), data(2)
    _, elbo, _ = exact(model, x)
    exact_grad = _flat_grad(model, -elbo.mean())
    model.n_samples = 200_000
    est = _flat_grad(model, model.loss(Batch(x), generator=_gen(8)).loss)
    err = (est - exact_grad).norm() / exact_grad.norm()
    assert err < 0.03, err


def test_score_function_loss_value_is_the_negative_elbo():
    model, x = tiny(ScoreFunctionCategoricalVAE), data()
    out = model.loss(Batch(x), generator=_gen(9))
    torch.testing.assert_close(out.loss, -out.elbo.mean())


def test_leave_one_out_baseline_reduces_variance_without_bias():
    x = data(2)
    grads = {}
    for baseline in ("loo", None):
        model = tiny(ScoreFunctionCategoricalVAE, baseline=baseline)
        enc = list(model.encoder.parameters())
        per_call = []
        for i in range(300):
            out = model.loss(Batch(x), generator=_gen(100 + i))
            per_call.append(torch.cat([g.flatten() for g in torch.autograd.grad(out.loss, enc)]))
        grads[baseline] = torch.stack(per_call)
    var = {b: g.var(0).sum().item() for b, g in grads.items()}
    assert var["loo"] < 0.5 * var[None], var
    mean_diff = grads["loo"].mean(0) - grads[None].mean(0)
    se = torch.sqrt(grads["loo"].var(0) / 300 + grads[None].var(0) / 300)
    assert (mean_diff.abs() < 5 * se + 1e-9).float().mean() > 0.97


def test_gumbel_relaxation_tends_to_the_discrete_code_as_tau_falls():
    model, x = tiny(), data(64)
    gaps = []
    for tau in (5.0, 1.0, 0.1, 0.01):
        model.tau = tau
        with torch.no_grad():
            out = model.loss(Batch(x), generator=_gen(10))
        gaps.append((out.terms["relaxed_recon"] - out.terms["recon"]).abs().mean().item())
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 0.05 * gaps[0], gaps


def test_straight_through_decodes_the_exact_code_and_still_trains_the_encoder():
    model, x = tiny(hard=True), data()
    out = model.loss(Batch(x), generator=_gen(11))
    torch.testing.assert_close(out.terms["relaxed_recon"], out.terms["recon"], rtol=0, atol=0)
    torch.testing.assert_close(out.loss, -out.elbo.mean())
    g = torch.autograd.grad(out.loss, model.encoder[0].weight)[0]
    assert g.abs().sum() > 0


def test_prior_samples_are_uniform_one_hot_codes():
    model = CategoricalVAE(D, 4, n_categories=5)
    c = model.prior.sample(20_000, generator=_gen(12))
    assert c.shape == (20_000, 4, 5) and (c.sum(-1) == 1).all()
    freq = c.mean(0)                                      # each class 1/5; sd sqrt(.16/20000) = .0028
    assert (freq - 0.2).abs().max() < 0.012
    torch.testing.assert_close(model.prior.log_prob(c[:3]), torch.full((3,), -4 * math.log(5)))
    s = model.sample(3, generator=_gen(12))
    assert s.shape == (3, D) and ((s >= 0) & (s <= 1)).all()
    torch.testing.assert_close(s, model.decode_mean(model.prior.sample(3, generator=_gen(12))))


def test_fit_anneals_tau_with_the_schedule_and_learns():
    torch.manual_seed(0)
    protos = (torch.rand(4, 16, generator=_gen(13)) > 0.5).float()
    x = protos[torch.randint(0, 4, (400,), generator=_gen(14))]
    model = CategoricalVAE(16, 2, n_categories=4, hidden_dims=(32,))
    schedule = exponential_decay(2.0, 0.5, 0.7)
    h = fit(model, x, x[:100], epochs=6, batch_size=50, lr=1e-2, progress=False, schedules={"tau": schedule})
    assert h.settings["tau"] == schedule.values(6) and model.tau == schedule(6)
    assert h.test_elbo[-1] > h.test_elbo[0] + 2
    assert set(h.terms) == {"recon", "kl", "relaxed_recon"}


def test_settings_and_constructor_errors():
    with pytest.raises(ValueError, match="n_categories must be at least 2"):
        CategoricalVAE(D, N, n_categories=1)
    with pytest.raises(TypeError, match="hard must be True"):
        CategoricalVAE(D, N, hard="yes")
    with pytest.raises(ValueError, match="baseline must be"):
        ScoreFunctionCategoricalVAE(D, N, baseline="mean")
    with pytest.raises(ValueError, match="tau must be > 0"):
        CategoricalVAE(D, N, tau=0.0)
    model = CategoricalVAE(D, N)
    with pytest.raises(ValueError, match="tau must be > 0"):
        model.tau = -1
    with pytest.raises(ValueError, match=r"codes must have shape \(\.\.\., 2, 10\)"):
        model.decode(torch.zeros(3, 20))
    assert MODELS["CategoricalVAE"] is CategoricalVAE
    assert MODELS["ScoreFunctionCategoricalVAE"] is ScoreFunctionCategoricalVAE


def test_each_estimator_declares_only_its_settings():
    assert CategoricalVAE.settings == {"tau": 1.0, "n_samples": 1}
    sf = ScoreFunctionCategoricalVAE(D, N)
    assert sf.settings == {"n_samples": 2} and sf.n_samples == 2 and not hasattr(sf, "tau")
    with pytest.raises(ValueError, match="tau"):        # the score function has no temperature
        fit(sf, data(8).float(), epochs=1, progress=False, schedules={"tau": 0.5})
    sf.n_samples = 1                                     # the leave-one-out baseline needs two codes
    with pytest.raises(ValueError, match="n_samples >= 2"):
        sf.loss(Batch(data(4).float()))
    plain = ScoreFunctionCategoricalVAE(D, N, baseline=None)
    plain.n_samples = 1                                  # without a baseline, one code is enough
    assert torch.isfinite(plain.loss(Batch(data(4).float())).loss)
    with pytest.raises(ValueError, match="n_samples"):
        sf.n_samples = 0


def test_mean_decoder_is_the_decoder_on_flattened_codes():
    model = tiny()
    net, output = model.mean_decoder()
    c = all_codes()
    with torch.no_grad():
        torch.testing.assert_close(torch.sigmoid(net(c.flatten(1).float())).double(), model.decode_mean(c),
                                   atol=1e-6, rtol=0)
    assert output == "sigmoid"


# ------------------------------------------------------------------------ what Jang et al. report, and the effect

def test_multi_sample_bound_of_exact_codes_lies_between_elbo_and_log_px():
    """Jang et al. (2017, §4.2) evaluate with discretized codes and a multi-sample bound (m = 1000): with
    exact codes from q, E[L_K] is the ELBO at K = 1, grows with K and stays below log p(x) (enumeration)."""
    model, x = tiny(sharpen=2.0), data()
    with torch.no_grad():
        log_px, elbo, _ = exact(model, x)
        means, ses = [], []
        for k in (1, 10, 100):
            reps = 2000
            log_w = model.log_weights(Batch(x), k * reps, generator=_gen(30 + k)).view(reps, k, len(x))
            bound = torch.logsumexp(log_w, 1) - math.log(k)                     # (reps, B) draws of L_K
            means.append(bound.mean(0))
            ses.append(bound.std(0) / math.sqrt(reps))
    assert ((means[0] - elbo).abs() < 4 * ses[0]).all()                         # L_1 is the ELBO
    for lo, hi, se in zip(means, means[1:], ses[1:]):
        assert (hi > lo - 4 * se).all()                                          # non-decreasing in K
    assert (means[-1] < log_px + 4 * ses[-1]).all() and (means[-1] > elbo).all()


def test_gumbel_softmax_trades_bias_for_variance_as_tau_falls():
    """The chapter's effect, exactly: against the ELBO gradient by enumeration, the Gumbel-softmax gradient's
    bias falls and its variance rises as tau falls."""
    model, x = tiny(), data(2)
    enc = list(model.encoder.parameters())
    _, elbo, _ = exact(model, x)
    g_exact = torch.cat([g.flatten() for g in torch.autograd.grad(-elbo.mean(), enc)])
    bias, noise, var = [], [], []
    reps = 5000
    for tau in (5.0, 1.0, 0.2):
        model.tau = tau
        out = model.loss(Batch(x.repeat(reps, 1)), generator=_gen(20))          # the mean of `reps` draws
        g_mean = torch.cat([g.flatten() for g in torch.autograd.grad(out.loss, enc)])
        draws = torch.stack([torch.cat([g.flatten() for g in torch.autograd.grad(
            model.loss(Batch(x), generator=_gen(300 + i)).loss, enc)]) for i in range(100)])
        var.append(draws.var(0).sum().item())
        bias.append((g_mean - g_exact).norm().item() / g_exact.norm().item())
        noise.append(math.sqrt(var[-1] / reps) / g_exact.norm().item())
    assert bias[0] > 2 * bias[1] and bias[1] > bias[2] + 3 * noise[2], (bias, noise)
    assert var[0] < var[1] < var[2] and var[2] > 100 * var[0], var
