"""Score-function and reparameterization gradient estimators: unbiased, and their variances.

Every mean is compared with a closed-form gradient within a few Monte-Carlo standard errors.
"""
import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from vae_core.widgets import gradients as W
from vae_core import estimators as E
from vae_core.distributions import gaussian_log_prob

N_SE = 4.5  # a few standard errors; with ~20 coordinates per test a false alarm is rare (and seeded)
pytestmark = pytest.mark.usefixtures("one_thread")   # see conftest.py


def assert_unbiased(per_sample: torch.Tensor, exact: torch.Tensor, n_se: float = N_SE):
    """Every coordinate of the mean of the per-sample estimates lies within n_se standard errors."""
    per_sample = per_sample.double()
    mean = per_sample.mean(0)
    se = per_sample.std(0) / per_sample.shape[0] ** 0.5
    err = (mean - exact.double()).abs()
    assert (err <= n_se * se + 1e-9).all(), f"mean {mean} vs exact {exact} (se {se})"


# ------------------------------------------------------------------ closed-form test problems

MU = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
LOGVAR = torch.tensor([0.0, -0.7, 0.4], dtype=torch.float64)
C = 1.0  # f(z) = sum_j (z_j - C)^2
A = torch.tensor([0.5, -0.8, 0.3], dtype=torch.float64)  # f(z) = sum_j exp(a_j z_j)


def quadratic(z):
    return ((z - C) ** 2).sum(-1)


def quadratic_exact(mu, logvar):
    # E[(z - c)^2] = (mu - c)^2 + sigma^2 -> d/dmu = 2 (mu - c), d/dlogvar = sigma^2
    return 2 * (mu - C), logvar.exp()


def exponential(z):
    return torch.exp(A * z).sum(-1)


def exponential_exact(mu, logvar):
    # E[exp(a z)] = exp(a mu + a^2 sigma^2 / 2)
    m = torch.exp(A * mu + 0.5 * A ** 2 * logvar.exp())
    return A * m, 0.5 * A ** 2 * logvar.exp() * m


PROBLEMS = [(quadratic, quadratic_exact), (exponential, exponential_exact)]


@pytest.mark.parametrize("f, exact_fn", PROBLEMS, ids=["quadratic", "exp"])
def test_both_estimators_are_unbiased(f, exact_fn):
    n = 200_000
    exact_mu, exact_lv = exact_fn(MU, LOGVAR)
    sf = E.gaussian_score_function_grad(f, MU, LOGVAR, n, generator=torch.Generator().manual_seed(0),
                                        per_sample=True)
    rp = E.gaussian_reparam_grad(f, MU, LOGVAR, n, generator=torch.Generator().manual_seed(1),
                                 per_sample=True)
    for (g_mu, g_lv) in (sf, rp):
        assert g_mu.shape == (n, 3) and g_lv.shape == (n, 3)
        assert_unbiased(g_mu, exact_mu)
        assert_unbiased(g_lv, exact_lv)


@pytest.mark.parametrize("f", [quadratic, exponential], ids=["quadratic", "exp"])
def test_score_function_variance_exceeds_reparameterization_variance(f):
    n = 50_000
    sf = E.gaussian_score_function_grad(f, MU, LOGVAR, n, generator=torch.Generator().manual_seed(2),
                                        per_sample=True)
    rp = E.gaussian_reparam_grad(f, MU, LOGVAR, n, generator=torch.Generator().manual_seed(3),
                                 per_sample=True)
    for g_sf, g_rp in zip(sf, rp):
        assert (g_sf.var(0) > 2 * g_rp.var(0)).all(), (g_sf.var(0), g_rp.var(0))


def test_quadratic_variances_match_their_closed_forms():
    # one coordinate, a = mu - c: the score-function estimate f(z)(z-mu)/sigma^2 has
    # E[g^2] = (a^4 + 18 a^2 s^2 + 15 s^4) / s^2; the pathwise one 2(z - c) has variance 4 s^2.
    mu, logvar = torch.tensor([2.0], dtype=torch.float64), torch.tensor([-0.5], dtype=torch.float64)
    a, s2 = mu.item() - C, math.exp(logvar.item())
    n = 400_000
    g_sf, _ = E.gaussian_score_function_grad(quadratic, mu, logvar, n, per_sample=True,
                                             generator=torch.Generator().manual_seed(4))
    g_rp, _ = E.gaussian_reparam_grad(quadratic, mu, logvar, n, per_sample=True,
                                      generator=torch.Generator().manual_seed(5))
    var_sf = (a ** 4 + 18 * a ** 2 * s2 + 15 * s2 ** 2) / s2 - 4 * a ** 2
    assert g_sf.var().item() == pytest.approx(var_sf, rel=0.05)
    assert g_rp.var().item() == pytest.approx(4 * s2, rel=0.02)


def test_score_function_variance_grows_with_dimension_and_reparameterization_does_not():
    # f = sum_j (z_j - 1)^2, q = N(0, I_d), a = mu - c = -1: the chapter's closed forms
    n = 20_000
    for d in (1, 8, 64):
        mu, lv = torch.zeros(d, dtype=torch.float64), torch.zeros(d, dtype=torch.float64)
        g, _ = E.gaussian_score_function_grad(quadratic, mu, lv, n, per_sample=True,
                                              generator=torch.Generator().manual_seed(d))
        gb, _ = E.gaussian_score_function_grad(quadratic, mu, lv, n, per_sample=True, baseline=2.0 * d,
                                               generator=torch.Generator().manual_seed(d + 1))
        h, _ = E.gaussian_reparam_grad(quadratic, mu, lv, n, per_sample=True,
                                       generator=torch.Generator().manual_seed(d + 2))
        assert g[:, 0].var().item() == pytest.approx(30 + 22 * (d - 1) + 4 * (d - 1) ** 2, rel=0.15)
        assert gb[:, 0].var().item() == pytest.approx(18 + 6 * (d - 1), rel=0.15)
        assert h[:, 0].var().item() == pytest.approx(4.0, rel=0.05)


def test_inline_formulas_equal_the_library():
    n = 1000
    mu, lv = MU.float(), LOGVAR.float()
    g_mu, g_lv = E.gaussian_score_function_grad(quadratic, mu, lv, n, per_sample=True, baseline=3.0,
                                                generator=torch.Generator().manual_seed(6))
    z = E.reparameterize(mu, lv, n_samples=n, generator=torch.Generator().manual_seed(6))
    var = lv.exp()
    w = (quadratic(z) - 3.0).unsqueeze(-1)
    torch.testing.assert_close(g_mu, w * (z - mu) / var)
    torch.testing.assert_close(g_lv, w * 0.5 * ((z - mu) ** 2 / var - 1))
    r_mu, r_lv = E.gaussian_reparam_grad(quadratic, mu, lv, n, per_sample=True,
                                         generator=torch.Generator().manual_seed(6))
    eps = (z - mu) / var.sqrt()
    torch.testing.assert_close(r_mu, 2 * (z - C))
    torch.testing.assert_close(r_lv, 2 * (z - C) * 0.5 * var.sqrt() * eps)
    # the mean is the average of the per-sample estimates
    m_mu, _ = E.gaussian_score_function_grad(quadratic, mu, lv, n, baseline=3.0,
                                             generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(m_mu, g_mu.mean(0))


def test_baselines_reduce_variance_and_keep_the_estimator_unbiased():
    n = 100_000
    mu, lv = torch.full((4,), 1.5, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
    exact_mu, _ = quadratic_exact(mu, lv)
    expected_f = ((mu - C) ** 2 + lv.exp()).sum().item()
    plain, _ = E.gaussian_score_function_grad(quadratic, mu, lv, n, per_sample=True,
                                              generator=torch.Generator().manual_seed(7))
    const, _ = E.gaussian_score_function_grad(quadratic, mu, lv, n, per_sample=True, baseline=expected_f,
                                              generator=torch.Generator().manual_seed(8))
    loo, _ = E.gaussian_score_function_grad(quadratic, mu, lv, n, per_sample=True, baseline="loo",
                                            generator=torch.Generator().manual_seed(9))
    for g in (plain, const, loo):
        assert_unbiased(g, exact_mu)
    v = plain.var(0).sum()
    assert const.var(0).sum() < 0.5 * v
    assert loo.var(0).sum() < 0.5 * v


def test_a_baseline_that_sees_its_own_sample_is_biased_and_leave_one_out_is_not():
    # b = mean of all n samples (including z_i) shrinks the estimate by the factor (1 - 1/n)
    n, reps = 4, 100_000
    mu, lv = torch.tensor([1.0], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)
    f = lambda z: ((z + 1.0) ** 2).sum(-1)  # noqa: E731  d/dmu E f = 2 (mu + 1) = 4
    exact = 4.0
    g = torch.Generator().manual_seed(10)
    mus = mu.expand(reps, 1)
    lvs = lv.expand(reps, 1)
    z = E.reparameterize(mus, lvs, n_samples=n, generator=g)  # (n, reps, 1)
    fz = f(z)  # (n, reps)
    score = (z - mus).squeeze(-1)  # sigma = 1
    naive = ((fz - fz.mean(0, keepdim=True)) * score).mean(0)
    loo = ((fz - (fz.sum(0, keepdim=True) - fz) / (n - 1)) * score).mean(0)
    se = naive.std() / reps ** 0.5
    assert abs(naive.mean().item() - exact * (1 - 1 / n)) < N_SE * se
    assert abs(naive.mean().item() - exact) > 10 * se
    assert abs(loo.mean().item() - exact) < N_SE * loo.std() / reps ** 0.5
    # and the library's "loo" is that formula
    lib, _ = E.gaussian_score_function_grad(f, mu, lv, n, baseline="loo", per_sample=True,
                                            generator=torch.Generator().manual_seed(11))
    z1 = E.reparameterize(mu, lv, n_samples=n, generator=torch.Generator().manual_seed(11))
    f1 = f(z1)
    torch.testing.assert_close(lib[:, 0], (f1 - (f1.sum() - f1) / (n - 1)) * (z1 - mu)[:, 0])


def test_step_function_breaks_reparameterization_but_not_the_score_function():
    # f(z) = 1[z > 0]: E f = Phi(mu / sigma), d/dmu = phi(mu / sigma) / sigma
    mu, lv = torch.tensor([0.3], dtype=torch.float64), torch.tensor([math.log(0.5 ** 2)], dtype=torch.float64)
    sigma = 0.5
    exact = math.exp(-0.5 * (0.3 / sigma) ** 2) / math.sqrt(2 * math.pi) / sigma
    step = lambda z: (z > 0).to(z.dtype).sum(-1)  # noqa: E731
    n = 200_000
    rp_mu, rp_lv = E.gaussian_reparam_grad(step, mu, lv, n, per_sample=True,
                                           generator=torch.Generator().manual_seed(12))
    assert torch.count_nonzero(rp_mu) == 0 and torch.count_nonzero(rp_lv) == 0
    sf_mu, _ = E.gaussian_score_function_grad(step, mu, lv, n, per_sample=True, baseline="loo",
                                              generator=torch.Generator().manual_seed(13))
    assert_unbiased(sf_mu, torch.tensor([exact]))
    # a differentiable spelling (sign has derivative 0 a.e.) gives autograd zeros too
    sign_step = lambda z: (0.5 * (1 + torch.sign(z))).sum(-1)  # noqa: E731
    g, _ = E.gaussian_reparam_grad(sign_step, mu, lv, 1000, generator=torch.Generator().manual_seed(14))
    assert g.item() == 0.0


def test_lipschitz_kink_is_fine_for_reparameterization():
    # f(z) = |z|: differentiable a.e. and Lipschitz, so the exchange holds.
    # E|z| = sigma sqrt(2/pi) exp(-mu^2/2s^2) + mu (1 - 2 Phi(-mu/s)) -> d/dmu = 1 - 2 Phi(-mu/s)
    mu, lv = torch.tensor([0.4], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)
    exact = 1 - 2 * 0.5 * math.erfc(0.4 / math.sqrt(2))
    g, _ = E.gaussian_reparam_grad(lambda z: z.abs().sum(-1), mu, lv, 200_000, per_sample=True,
                                   generator=torch.Generator().manual_seed(15))
    assert_unbiased(g, torch.tensor([exact]))


def test_categorical_score_function_matches_enumeration():
    theta = torch.tensor([0.5, -0.3, 0.2, -0.6], dtype=torch.float64)
    values = torch.tensor([1.96, 0.16, 0.36, 2.56], dtype=torch.float64)  # (k - 1.4)^2
    pi = theta.softmax(-1)
    loss = (pi * values).sum()
    exact = pi * (values - loss)  # d/dtheta_j sum_k pi_k f_k = pi_j (f_j - L)
    f = lambda c: c @ values  # noqa: E731  (one-hot samples)
    n = 200_000
    plain = E.categorical_score_function_grad(f, theta, n, per_sample=True,
                                              generator=torch.Generator().manual_seed(16))
    loo = E.categorical_score_function_grad(f, theta, n, baseline="loo", per_sample=True,
                                            generator=torch.Generator().manual_seed(17))
    assert plain.shape == (n, 4)
    assert_unbiased(plain, exact)
    assert_unbiased(loo, exact)
    assert loo.var(0).sum() < 0.5 * plain.var(0).sum()


def test_generic_api_on_an_exponential_distribution():
    # q = Exponential(rate lam): E[z^2] = 2 / lam^2, d/dlam = -4 / lam^3
    lam = torch.tensor([1.7], dtype=torch.float64)
    exact = torch.tensor([-4 / 1.7 ** 3], dtype=torch.float64)

    def noise(n_samples, generator):
        return torch.empty(n_samples, 1, dtype=torch.float64).exponential_(1.0, generator=generator)

    def sample(lam_, n_samples, generator):
        return noise(n_samples, generator) / lam_

    def log_prob(z, lam_):
        return (torch.log(lam_) - lam_ * z).sum(-1)

    f = lambda z: (z ** 2).sum(-1)  # noqa: E731
    (g_sf,) = E.score_function_grad(f, sample, log_prob, (lam,), 200_000, per_sample=True, baseline="loo",
                                    generator=torch.Generator().manual_seed(18))
    (g_rp,) = E.reparam_grad(f, lambda eps, lam_: eps / lam_, noise, (lam,), 200_000, per_sample=True,
                             generator=torch.Generator().manual_seed(19))
    assert_unbiased(g_sf, exact)
    assert_unbiased(g_rp, exact)
    assert g_sf.var() > g_rp.var()


def test_batched_parameters_and_reproducibility():
    mu, lv = torch.zeros(5, 3), torch.zeros(5, 3)
    a = E.gaussian_score_function_grad(quadratic, mu, lv, 7, generator=torch.Generator().manual_seed(0))
    b = E.gaussian_score_function_grad(quadratic, mu, lv, 7, generator=torch.Generator().manual_seed(0))
    assert a[0].shape == (5, 3) and a[1].shape == (5, 3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    per = E.gaussian_reparam_grad(quadratic, mu, lv, 7, per_sample=True, generator=torch.Generator().manual_seed(0))
    assert per[0].shape == (7, 5, 3)
    # the caller's tensors are left alone
    assert mu.grad is None and not mu.requires_grad


def test_bad_input_messages():
    mu, lv = torch.zeros(2), torch.zeros(2)
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        E.gaussian_score_function_grad(quadratic, mu, lv, 0)
    with pytest.raises(ValueError, match="baseline must be None, a number, a tensor, or 'loo'"):
        E.gaussian_score_function_grad(quadratic, mu, lv, 4, baseline="mean")
    with pytest.raises(ValueError, match="leave-one-out baseline needs n_samples >= 2"):
        E.gaussian_score_function_grad(quadratic, mu, lv, 1, baseline="loo")
    with pytest.raises(ValueError, match="one value per sample"):
        E.gaussian_score_function_grad(lambda z: z.sum(), mu, lv, 4)
    with pytest.raises(TypeError, match="params must be a tuple or list of tensors"):
        E.score_function_grad(quadratic, None, None, mu, 4)
    with pytest.raises(ValueError, match="shapes do not match"):
        E.gaussian_reparam_grad(quadratic, torch.zeros(2), torch.zeros(3), 4)
    with pytest.raises(ValueError, match="must broadcast"):
        E.gaussian_score_function_grad(quadratic, mu, lv, 4, baseline=torch.zeros(3))


def test_log_prob_used_by_the_gaussian_wrapper_is_the_diagonal_gaussian():
    # the per-sample score equals autograd of gaussian_log_prob at one sample
    mu = torch.tensor([0.2, -0.4], requires_grad=True)
    lv = torch.tensor([0.1, 0.3], requires_grad=True)
    z = E.reparameterize(mu.detach(), lv.detach(), n_samples=1, generator=torch.Generator().manual_seed(3))
    gaussian_log_prob(z[0], mu, lv).backward()
    one = lambda z: torch.ones(z.shape[:-1], dtype=z.dtype)  # noqa: E731  f = 1 isolates the score
    g_mu, g_lv = E.gaussian_score_function_grad(one, mu.detach(), lv.detach(), 1,
                                                generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(g_mu, mu.grad)
    torch.testing.assert_close(g_lv, lv.grad)


# ------------------------------------------------------------------ the estimator explorer and its JavaScript

SETTINGS = [("quadratic", 0.4, 1.3, 1.0), ("exp", 0.3, 0.8, 0.7), ("cos", 0.5, 1.0, 2.0), ("step", 0.3, 0.5, 0.1)]


def test_explorer_noise_is_standard_normal():
    eps = W.normals(7, 20_000)
    assert stats.kstest(eps, "norm").pvalue > 1e-3


@pytest.mark.parametrize("name, mu, sigma, k", SETTINGS)
def test_explorer_exact_gradients_match_both_estimators(name, mu, sigma, k):
    eps = W.normals(11, 20_000)
    exact = W.exact_gradient(name, mu, sigma, k)
    b = W.optimal_baseline(name, mu, sigma, k, W.normals(12, 5000))
    sf, rp = W.estimator_samples(name, mu, sigma, k, b, eps)
    assert_unbiased(torch.from_numpy(sf).unsqueeze(-1), torch.tensor([exact]))
    if name == "step":
        assert np.all(rp == 0)   # the reparameterization estimate autograd would give
    else:
        assert_unbiased(torch.from_numpy(rp).unsqueeze(-1), torch.tensor([exact]))


@pytest.mark.parametrize("name, mu, sigma, k", SETTINGS[:3])
def test_explorer_estimates_equal_the_library_on_the_same_noise(name, mu, sigma, k):
    eps = torch.from_numpy(W.normals(3, 500)).unsqueeze(-1)
    sf, rp = W.estimator_samples(name, mu, sigma, k, 0.7, eps[:, 0].numpy())
    f_torch = {"quadratic": lambda z: ((z - k) ** 2).sum(-1), "exp": lambda z: torch.exp(k * z).sum(-1),
               "cos": lambda z: torch.cos(k * z).sum(-1)}[name]
    mu_t = torch.tensor([mu], dtype=torch.float64)
    (g_sf,) = E.score_function_grad(
        f_torch, lambda m, n_samples, generator: m + sigma * eps,
        lambda z, m: (-0.5 * (z - m) ** 2 / sigma ** 2).sum(-1), (mu_t,), 500, baseline=0.7, per_sample=True)
    (g_rp,) = E.reparam_grad(f_torch, lambda e, m: m + sigma * e, lambda n_samples, generator: eps, (mu_t,), 500,
                             per_sample=True)
    np.testing.assert_allclose(sf, g_sf[:, 0].numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rp, g_rp[:, 0].numpy(), rtol=1e-10, atol=1e-12)


def test_explorer_optimal_baseline_minimises_the_variance():
    eps = W.normals(5, 20_000)
    name, mu, sigma, k = "quadratic", 2.0, 1.0, 1.0
    b_star = W.optimal_baseline(name, mu, sigma, k, eps)
    assert b_star == pytest.approx(4.0, abs=0.15)          # E[(a + e)^2 e^2] = a^2 + 3 with a = 1
    var = lambda b: W.estimator_samples(name, mu, sigma, k, b, eps)[0].var()  # noqa: E731
    assert var(b_star) < var(0.0) and var(b_star) < var(2.0)
    assert var(b_star) <= min(var(b_star + 0.3), var(b_star - 0.3))


def test_explorer_rejects_bad_settings():
    with pytest.raises(ValueError, match="function must be one of"):
        W.EstimatorExplorer(function="sin")
    with pytest.raises(ValueError, match="sigma must be > 0"):
        W.EstimatorExplorer(sigma=0.0)
    with pytest.raises(ValueError, match="n_samples"):
        W.EstimatorExplorer(n_samples=1)
    w = W.EstimatorExplorer(function="cos", k=2.0, mu=0.5, n_samples=300, seed=4)
    sf, rp = w.samples()
    assert sf.shape == rp.shape == (300,)


def test_explorer_js_maths_equals_python(run_js):
    settings = json.dumps(SETTINGS)
    res = run_js("estimator_explorer.js", f"""
const X = M, eps = Array.from(X.normals(9, 400));
const out = {{eps, cases: []}};
for (const [name, mu, sigma, k] of {settings}) {{
  const e = X.estimates(name, mu, sigma, k, 0.5, eps);
  out.cases.push({{sf: Array.from(e.sf), rp: Array.from(e.rp), exact: X.exactGradient(name, mu, sigma, k),
                  best: X.optimalBaseline(name, mu, sigma, k, eps), summary: X.summary(e.sf)}});
}}
out.ticks = [X.niceTicks(-1, 1), X.niceTicks(-8.77, 10.2), X.niceTicks(0.001, 0.0042)];
return out;""")
    eps = W.normals(9, 400)
    np.testing.assert_allclose(res["eps"], eps, rtol=1e-12, atol=1e-12)
    assert res["ticks"] == [[-1, -0.5, 0, 0.5, 1], [-5, 0, 5, 10], [0.001, 0.002, 0.003, 0.004]]
    for (name, mu, sigma, k), case in zip(SETTINGS, res["cases"]):
        sf, rp = W.estimator_samples(name, mu, sigma, k, 0.5, eps)
        np.testing.assert_allclose(case["sf"], sf, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(case["rp"], rp, rtol=1e-10, atol=1e-12)
        assert case["exact"] == pytest.approx(W.exact_gradient(name, mu, sigma, k), rel=1e-12)
        assert case["best"] == pytest.approx(W.optimal_baseline(name, mu, sigma, k, eps), rel=1e-10)
        assert case["summary"]["mean"] == pytest.approx(sf.mean(), rel=1e-10, abs=1e-12)
        assert case["summary"]["variance"] == pytest.approx(sf.var(ddof=1), rel=1e-10)
        assert case["summary"]["se"] == pytest.approx(sf.std(ddof=1) / 20, rel=1e-10)
