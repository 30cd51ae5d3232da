"""Gumbel noise, the Gumbel-max trick, Gumbel-softmax / Concrete, straight-through, and the widget's JS."""
import json
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from vae_core import estimators as E
from vae_core import gumbel as G
from vae_core.widgets import gumbel as W
from vae_core.widgets.frontend import mulberry32_uniforms

EULER_GAMMA = 0.5772156649015329
pytestmark = pytest.mark.usefixtures("one_thread")   # see conftest.py


# ------------------------------------------------------------------ Gumbel noise

def test_gumbel_noise_has_the_gumbel_law(gen):
    g = G.gumbel_sample((200_000,), generator=gen, dtype=torch.float64)
    n = g.numel()
    # mean = Euler's gamma, variance = pi^2 / 6
    assert abs(g.mean().item() - EULER_GAMMA) < 4 * math.pi / math.sqrt(6 * n)
    assert abs(g.var().item() - math.pi ** 2 / 6) < 0.03
    assert stats.kstest(g[:20_000].numpy(), stats.gumbel_r.cdf).pvalue > 1e-3


def test_gumbel_noise_is_finite_even_when_the_uniforms_hit_0_or_1(monkeypatch):
    for value in (0.0, 1.0):
        def fake_rand(shape, generator=None, dtype=None, device=None, _v=value):
            return torch.full(shape, _v, dtype=dtype)
        monkeypatch.setattr(G.torch, "rand", fake_rand)
        for dtype in (torch.float32, torch.float64):
            g = G.gumbel_sample((3,), dtype=dtype)
            assert torch.isfinite(g).all(), (value, dtype, g)
    monkeypatch.undo()
    with pytest.raises(TypeError, match="floating-point dtype"):
        G.gumbel_sample(3, dtype=torch.int64)


# ------------------------------------------------------------------ Gumbel-max

def _counts(samples: torch.Tensor, K: int) -> np.ndarray:
    return torch.bincount(samples.flatten(), minlength=K).numpy()


def test_gumbel_max_passes_a_chi_square_test_and_a_wrong_law_fails_it():
    logits = torch.tensor([1.0, 0.0, -0.5, 2.0, -3.0])
    K, n = logits.numel(), 50_000
    pi = torch.softmax(logits, -1).double().numpy()
    idx = G.gumbel_max_sample(logits, generator=torch.Generator().manual_seed(0), n_samples=n)
    assert idx.shape == (n,) and idx.dtype == torch.long
    counts = _counts(idx, K)
    assert stats.chisquare(counts, n * pi).pvalue > 1e-3
    # a wrong law: Gaussian instead of Gumbel noise (a plausible slip) is caught
    wrong = (logits + torch.randn(n, K, generator=torch.Generator().manual_seed(1))).argmax(-1)
    assert stats.chisquare(_counts(wrong, K), n * pi).pvalue < 1e-6
    # and the right samples against slightly wrong probabilities fail too
    off = pi * np.array([1.10, 1, 1, 0.95, 1])
    assert stats.chisquare(counts, n * off / off.sum()).pvalue < 1e-3


def test_gumbel_max_one_hot_and_index_outputs_agree():
    logits = torch.randn(4, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    idx = G.gumbel_max_sample(logits, generator=torch.Generator().manual_seed(3), n_samples=10)
    hot = G.gumbel_max_sample(logits, generator=torch.Generator().manual_seed(3), n_samples=10, one_hot=True)
    assert idx.shape == (10, 4) and hot.shape == (10, 4, 6) and hot.dtype == torch.float64
    assert torch.equal(hot.argmax(-1), idx) and torch.equal(hot.sum(-1), torch.ones(10, 4, dtype=torch.float64))
    # given noise: exactly argmax(logits + noise)
    noise = G.gumbel_sample((4, 6), generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    assert torch.equal(G.gumbel_max_sample(logits, noise=noise), (logits + noise).argmax(-1))


# ------------------------------------------------------------------ Gumbel-softmax

def test_gumbel_softmax_is_the_tempered_softmax_of_perturbed_logits():
    logits = torch.tensor([[0.3, -1.2, 2.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    noise = G.gumbel_sample((2, 3), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    for tau in (0.1, 0.7, 3.0):
        y = G.gumbel_softmax(logits, tau, noise=noise)
        torch.testing.assert_close(y, torch.softmax((logits + noise) / tau, -1))
    # the argmax of a relaxed sample is the Gumbel-max sample drawn from the same generator state
    y = G.gumbel_softmax(logits, 0.5, generator=torch.Generator().manual_seed(6), n_samples=100)
    c = G.gumbel_max_sample(logits, generator=torch.Generator().manual_seed(6), n_samples=100)
    assert torch.equal(y.argmax(-1), c)
    torch.testing.assert_close(y.sum(-1), torch.ones(100, 2, dtype=torch.float64))


def test_temperature_limits():
    logits = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)
    noise = G.gumbel_sample((10_000, 3), generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    hard = torch.nn.functional.one_hot((logits + noise).argmax(-1), 3).double()
    # tau -> 0: one-hot (the Gumbel-max sample); only near-ties of the perturbed logits lag behind
    err = (G.gumbel_softmax(logits, 1e-4, noise=noise) - hard).abs().amax(-1)
    assert (err < 1e-6).double().mean() > 0.99
    assert (G.gumbel_softmax(logits, 1e-3, noise=noise) - hard).abs().amax(-1).mean() < \
        (G.gumbel_softmax(logits, 1e-1, noise=noise) - hard).abs().amax(-1).mean()
    # tau -> infinity: the centre of the simplex, with error O(1/tau)
    for tau in (1e2, 1e4):
        dev = (G.gumbel_softmax(logits, tau, noise=noise) - 1 / 3).abs().max().item()
        assert dev < 20 / tau


@pytest.mark.parametrize("tau", [0.0, -1.0, float("nan"), float("inf"), torch.tensor([0.5, 1.0])])
def test_non_positive_temperature_raises(tau):
    with pytest.raises(ValueError, match="tau must be"):
        G.gumbel_softmax(torch.zeros(3), tau)


def test_temperature_error_says_it_must_be_positive():
    with pytest.raises(ValueError, match="tau must be > 0"):
        G.gumbel_softmax(torch.zeros(3), 0)
    with pytest.raises(ValueError, match="tau must be > 0"):
        G.concrete_log_prob(torch.full((3,), 1 / 3), torch.zeros(3), -0.5)
    with pytest.raises(TypeError, match="tau must be a number"):
        G.gumbel_softmax(torch.zeros(3), "hot")


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("tau", [1e-3, 1.0, 1e3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_logits_and_temperatures_stay_finite(hard, tau, dtype):
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]], dtype=dtype,
                          requires_grad=True)
    y = G.gumbel_softmax(logits, tau, hard=hard, generator=torch.Generator().manual_seed(8), n_samples=50)
    assert torch.isfinite(y).all()
    weights = torch.tensor([0.3, -1.0, 2.0], dtype=dtype)
    ((y * weights).sum(-1) ** 2).sum().backward()
    assert torch.isfinite(logits.grad).all()
    # the score-function estimator too
    g = E.categorical_score_function_grad(lambda c: c @ weights, logits.detach(), 20, baseline="loo",
                                          generator=torch.Generator().manual_seed(9))
    assert torch.isfinite(g).all()


# ------------------------------------------------------------------ straight-through

def test_straight_through_is_exactly_one_hot_forward_and_soft_backward():
    logits = torch.randn(200, 5, generator=torch.Generator().manual_seed(10), requires_grad=True)
    noise = G.gumbel_sample((200, 5), generator=torch.Generator().manual_seed(11))
    weights = torch.randn(5, generator=torch.Generator().manual_seed(12))
    tau = 0.7
    y_hard = G.gumbel_softmax(logits, tau, hard=True, noise=noise)
    expected = torch.nn.functional.one_hot((logits + noise).argmax(-1), 5).float()
    assert torch.equal(y_hard, expected)  # exactly one-hot: values are 0.0 and 1.0, no rounding
    # backward: the gradient of the soft sample, for the same upstream gradient
    upstream = torch.randn(200, 5, generator=torch.Generator().manual_seed(13))
    (g_hard,) = torch.autograd.grad((y_hard * upstream).sum(), logits, retain_graph=True)
    y_soft = G.gumbel_softmax(logits, tau, noise=noise)
    (g_soft,) = torch.autograd.grad((y_soft * upstream).sum(), logits, retain_graph=True)
    torch.testing.assert_close(g_hard, g_soft)
    # for a loss evaluated at the hard sample, the chain rule uses dL/dy at the hard point
    (g_st,) = torch.autograd.grad(((y_hard @ weights) ** 2).sum(), logits)
    dl_dy = (2 * (expected @ weights)).unsqueeze(-1) * weights
    (g_ref,) = torch.autograd.grad((y_soft * dl_dy).sum(), logits)
    torch.testing.assert_close(g_st, g_ref)


def test_straight_through_helper():
    y = torch.softmax(torch.randn(10_000, 7, generator=torch.Generator().manual_seed(14)), -1).requires_grad_()
    hard = torch.nn.functional.one_hot(y.argmax(-1), 7).to(y.dtype)
    st = G.straight_through(y)
    assert torch.equal(st, hard)
    upstream = torch.randn(10_000, 7, generator=torch.Generator().manual_seed(15))
    (g,) = torch.autograd.grad((st * upstream).sum(), y)
    assert torch.equal(g, upstream)  # the identity Jacobian
    # an explicit index chooses the hot entry
    assert torch.equal(G.straight_through(y, index=torch.zeros(10_000, dtype=torch.long))[:, 0],
                       torch.ones(10_000))


# ------------------------------------------------------------------ Concrete density

def test_concrete_density_matches_torch_and_closed_form():
    logits = torch.tensor([0.3, -1.0, 0.5], dtype=torch.float64)
    y = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    for tau in (0.3, 0.7, 2.0):
        ref = torch.distributions.RelaxedOneHotCategorical(torch.tensor(tau, dtype=torch.float64),
                                                           logits=logits).log_prob(y)
        torch.testing.assert_close(G.concrete_log_prob(y, logits, tau), ref)
        torch.testing.assert_close(G.concrete_log_prob(y.log(), logits, tau, log_input=True), ref)
    # shifting the logits by a constant does not change the law
    torch.testing.assert_close(G.concrete_log_prob(y, logits + 5, 0.7), G.concrete_log_prob(y, logits, 0.7))


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_concrete_density_integrates_to_one_and_matches_samples(tau):
    logits = torch.tensor([0.8, -0.4], dtype=torch.float64)

    def density(y1):
        y = torch.tensor([y1, 1 - y1], dtype=torch.float64)
        return G.concrete_log_prob(y, logits, tau).exp().item()

    total, _ = integrate.quad(density, 0, 1, limit=200)
    assert total == pytest.approx(1.0, abs=1e-5)
    # P(y1 < 0.3) from the density against the fraction of samples
    p, _ = integrate.quad(density, 0, 0.3, limit=200)
    y = G.gumbel_softmax(logits, tau, generator=torch.Generator().manual_seed(15), n_samples=100_000)
    frac = (y[:, 0] < 0.3).double().mean().item()
    assert abs(frac - p) < 4.5 * math.sqrt(p * (1 - p) / 100_000)


def test_concrete_density_on_the_3_simplex_integrates_to_one():
    logits = torch.tensor([0.5, 0.0, -0.7], dtype=torch.float64)
    tau = 1.5
    m = 600
    h = 1.0 / m
    # midpoint rule on the triangle y1, y2 > 0, y1 + y2 < 1 (cells cut by the diagonal are halved)
    c = (torch.arange(m, dtype=torch.float64) + 0.5) * h
    y1, y2 = torch.meshgrid(c, c, indexing="ij")
    inside = (y1 + y2) < 1
    pts = torch.stack([y1[inside], y2[inside], 1 - y1[inside] - y2[inside]], -1)
    total = G.concrete_log_prob(pts, logits, tau).exp().sum().item() * h * h
    assert total == pytest.approx(1.0, abs=0.02)


def test_concrete_bad_input():
    with pytest.raises(ValueError, match="probability simplex"):
        G.concrete_log_prob(torch.tensor([0.5, 0.7]), torch.zeros(2), 1.0)
    with pytest.raises(ValueError, match="K >= 2"):
        G.concrete_log_prob(torch.tensor([1.0]), torch.zeros(1), 1.0)


# ------------------------------------------------------------------ relaxed gradients: bias and variance against tau

def test_relaxed_gradient_bias_shrinks_and_variance_grows_as_tau_falls():
    theta = torch.tensor([0.5, -0.3, 0.2, -0.6], dtype=torch.float64)
    v, t = torch.arange(4, dtype=torch.float64), 1.4
    pi = theta.softmax(-1)
    fk = (v - t) ** 2
    exact = pi * (fk - (pi * fk).sum())
    n = 40_000

    def stats_at(tau):
        th = theta.expand(n, 4).clone().requires_grad_(True)
        y = G.gumbel_softmax(th, tau, generator=torch.Generator().manual_seed(16))
        ((y @ v - t) ** 2).sum().backward()
        g = th.grad
        bias2 = ((g.mean(0) - exact) ** 2).sum() - g.var(0).sum() / n  # unbiased estimate of |bias|^2
        return bias2.item(), g.var(0).sum().item()

    b_small, v_small = stats_at(0.1)
    b_large, v_large = stats_at(2.0)
    assert b_large > 0.1 and b_small < 0.2 * b_large
    assert v_small > 20 * v_large


# ------------------------------------------------------------------ the widget, and its JavaScript under node

def test_widget_python_samples_match_torch_gumbel_softmax():
    w = W.GumbelSoftmaxExplorer(logits=(1.0, 0.0, -1.0), tau=0.3, n_points=200, seed=5)
    y, hard = w.samples()
    g = W.gumbel_from_uniform(mulberry32_uniforms(5, 600)).reshape(200, 3)
    ref = G.gumbel_softmax(torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64), 0.3,
                           noise=torch.from_numpy(g))
    np.testing.assert_allclose(y, ref.numpy(), rtol=1e-10, atol=1e-12)
    assert np.array_equal(hard, ref.argmax(-1).numpy())
    # the noise really is uniform -> Gumbel
    u = mulberry32_uniforms(123, 20_000)
    assert stats.kstest(u, "uniform").pvalue > 1e-3


def test_widget_rejects_bad_settings():
    with pytest.raises(ValueError, match="3 finite numbers"):
        W.GumbelSoftmaxExplorer(logits=(1.0, 0.0))
    with pytest.raises(ValueError, match="tau must be > 0"):
        W.GumbelSoftmaxExplorer(tau=0.0)
    with pytest.raises(ValueError, match="tau must lie in tau_range"):
        W.GumbelSoftmaxExplorer(tau=50.0)
    with pytest.raises(ValueError, match="n_points"):
        W.GumbelSoftmaxExplorer(n_points=0)


def test_js_maths_equals_python(run_js):
    logits = [0.7, -1.3, 2.1]
    noise = [0.25, -0.4, 1.9]
    taus = [1e-3, 0.05, 0.5, 3.0, 1e3]
    res = run_js("gumbel_explorer.js", f"""
const logits = {json.dumps(logits)}, noise = {json.dumps(noise)}, taus = {json.dumps(taus)};
const big = [1e4, -1e4, 0];
const G = M, s = G.relaxedSamples([1, 0, -1], 0.3, 5, 200);
return {{
  gs: taus.map((t) => G.gumbelSoftmax(logits, noise, t)),
  big: G.gumbelSoftmax(big, noise, 1e-3),
  u: Array.from(G.uniforms(42, 1000)),
  g: [0, 1e-20, 0.3, 0.999, 1].map(G.gumbelFromUniform),
  samples: s.y, hard: Array.from(s.hard),
  summary: G.summarize([1, 0, -1], s),
  xy: G.simplexXY([0.2, 0.3, 0.5], [[0, 0], [1, 0], [0, 1]]),
}};""")
    lt = torch.tensor(logits, dtype=torch.float64)
    nt = torch.tensor(noise, dtype=torch.float64)
    for tau, js in zip(taus, res["gs"]):
        np.testing.assert_allclose(js, G.gumbel_softmax(lt, tau, noise=nt).numpy(), rtol=1e-9, atol=1e-12)
    big = G.gumbel_softmax(torch.tensor([1e4, -1e4, 0.0], dtype=torch.float64), 1e-3, noise=nt).numpy()
    np.testing.assert_allclose(res["big"], big, atol=1e-12)
    assert np.all(np.isfinite(res["big"]))
    np.testing.assert_array_equal(res["u"], mulberry32_uniforms(42, 1000))  # bit for bit
    np.testing.assert_allclose(res["g"], W.gumbel_from_uniform([0, 1e-20, 0.3, 0.999, 1]), rtol=1e-12)
    y, hard = W.relaxed_samples([1, 0, -1], 0.3, 5, 200)
    np.testing.assert_allclose(res["samples"], y, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(res["hard"], hard)
    summ = res["summary"]
    np.testing.assert_allclose(summ["probs"], torch.softmax(torch.tensor([1.0, 0, -1], dtype=torch.float64),
                                                            -1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(summ["freq"], np.bincount(hard, minlength=3) / 200, atol=1e-12)
    np.testing.assert_allclose(summ["mean"], y.mean(0), rtol=1e-9)
    np.testing.assert_allclose(summ["maxMean"], y.max(1).mean(), rtol=1e-9)
    np.testing.assert_allclose(res["xy"], [0.3, 0.5])


def test_js_rejects_non_positive_tau(run_js):
    res = run_js("gumbel_explorer.js", """
let msg = "";
try { M.gumbelSoftmax([0, 0, 0], [0, 0, 0], 0); } catch (e) { msg = e.message; }
return {msg};""")
    assert "tau must be > 0" in res["msg"]
