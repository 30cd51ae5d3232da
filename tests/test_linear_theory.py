"""Part IV's exact effects (vae_core.linear_theory), each closed form against an independent computation.

* ch. 9: the β-VAE rate per direction ½log(λ/βσ²)₊ against an L-BFGS optimum of the β-objective written
  out term by term; the R–D slope −β, the switch-off points λ/σ², the capacity schedule;
* ch. 11: the weight moments and the gap law Var[w]/(2k p²) against quadrature and Monte Carlo; the SNR
  law of Rainforth et al. (2018) with DReG (Tucker et al. 2018), gradients checked against autograd;
* ch. 15: top-down vs bottom-up inference in a two-layer linear-Gaussian hierarchy, closed-form best gaps
  against L-BFGS optimisation of the ELBO.
"""
import math

import pytest
import torch

from conftest import mc_close
from vae_core import exact
from vae_core import linear_theory as lt

F64 = torch.float64

pytestmark = pytest.mark.usefixtures("one_thread")   # see conftest.py


# ============================================================== chapter 9: the linear-Gaussian β-VAE

LAM = torch.tensor([4.0, 2.0, 1.0, 0.5], dtype=F64)
SIGMA = 0.5                                                  # switch-off points λ/σ² = 16, 8, 4, 2


def _rotated_cov(lam, seed=0):
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(len(lam), len(lam), generator=g, dtype=F64))
    return U @ torch.diag(lam) @ U.T, U


SIGMA_X, U_X = _rotated_cov(LAM)                            # a data covariance that is not diagonal
# every switch-off point bracketed from both sides: 0.9·λ_i/σ² (i on) and 1.1·λ_i/σ² (i off)
SWEEP = [f * t for t in (16.0, 8.0, 4.0, 2.0) for f in (0.9, 1.1)]


@pytest.fixture(scope="module")
def sweep():
    return {beta: lt.fit_linear_beta_vae(SIGMA_X, SIGMA, beta, steps=150, seed=1) for beta in SWEEP}


def test_rate_per_direction_matches_numerical_optimum(sweep):
    for beta, fit in sweep.items():
        assert fit.grad_norm < 1e-4, (beta, fit.grad_norm)
        rates = lt.beta_vae_rates(LAM, SIGMA, beta)
        torch.testing.assert_close(fit.unit_rates, rates, rtol=0, atol=1e-5)
        assert abs(fit.rate - lt.beta_vae_rate(LAM, SIGMA, beta)) < 1e-5
        assert abs(fit.distortion - lt.beta_vae_distortion(LAM, SIGMA, beta)) < 1e-5


def test_each_direction_switches_off_at_lambda_over_sigma2(sweep):
    thresholds = lt.switch_off_betas(LAM, SIGMA)
    torch.testing.assert_close(thresholds, torch.tensor([16.0, 8.0, 4.0, 2.0], dtype=F64))
    for i, t in enumerate(thresholds.tolist()):
        below, above = sweep[0.9 * t], sweep[1.1 * t]
        assert below.unit_rates[i] > 0.04 and above.unit_rates[i] < 1e-7
        assert int((below.unit_rates > 1e-6).sum()) == i + 1 and int((above.unit_rates > 1e-6).sum()) == i


def test_active_units_encode_the_largest_variance_directions(sweep):
    # the decoder columns of the active units span the top-m eigenvectors of the data covariance
    for beta, fit in sweep.items():
        m = int((lt.beta_vae_rates(LAM, SIGMA, beta) > 0).sum())
        W = fit.model.decoder.W
        off = U_X[:, m:].T @ W                                  # components along the weaker directions
        assert off.numel() == 0 or off.abs().max() < 1e-4, (beta, off.abs().max())
        if m:
            col_norms = torch.sort((W ** 2).sum(0), descending=True).values
            torch.testing.assert_close(col_norms[:m], LAM[:m] - beta * SIGMA ** 2, rtol=0, atol=1e-5)


def test_optimum_in_closed_form_has_the_numerical_objective():
    beta = 3.0
    opt = lt.optimal_linear_beta_vae(SIGMA_X, SIGMA, beta)
    rates, dist = lt.linear_beta_vae_terms(SIGMA_X, opt.decoder.W, opt.decoder.b, opt.A, opt.c, opt.logvar, SIGMA)
    fit = lt.fit_linear_beta_vae(SIGMA_X, SIGMA, beta, steps=200, seed=2, encoder="free")   # all parameters
    assert abs((dist + beta * rates.sum()).item() - fit.objective) < 1e-7
    torch.testing.assert_close(fit.unit_rates, lt.beta_vae_rates(LAM, SIGMA, beta), rtol=0, atol=1e-5)
    assert abs(rates.sum().item() - lt.beta_vae_rate(LAM, SIGMA, beta)) < 1e-12


def test_rate_distortion_slope_is_minus_beta():
    """dD/dR = −β (distortion = −E log p(x|z) in nats, objective D + βR), by a central difference of two
    *numerical* optima; away from switch-off points the chord error is O(δ²)."""
    for beta in (3.0, 10.0):
        lo = lt.fit_linear_beta_vae(SIGMA_X, SIGMA, beta * 0.99, steps=150, seed=3)
        hi = lt.fit_linear_beta_vae(SIGMA_X, SIGMA, beta * 1.01, steps=150, seed=4)
        slope = (hi.distortion - lo.distortion) / (hi.rate - lo.rate)
        assert abs(slope + beta) < 1e-3 * beta, (beta, slope)
    # the closed-form curve, finely: the same slope on every piece
    R, D = lt.beta_vae_rd_curve(LAM, SIGMA, [2.5, 2.5001, 12.0, 12.001])
    assert abs((D[1] - D[0]) / (R[1] - R[0]) + 2.50005) < 1e-3
    assert abs((D[3] - D[2]) / (R[3] - R[2]) + 12.0005) < 1e-2


def test_capacity_schedule_switches_units_on_one_by_one(sweep):
    switch_on = lt.capacity_switch_on(LAM)
    assert switch_on[0] == 0 and bool((switch_on[1:] > switch_on[:-1]).all())
    for i in range(4):   # C_i is the total rate at the switch-off point of direction i
        assert abs(switch_on[i].item() - lt.beta_vae_rate(LAM, SIGMA, LAM[i].item() / SIGMA ** 2)) < 1e-12
    # the β that the capacity constraint R = C selects, checked against the numerical optima of the sweep
    for beta, fit in sweep.items():
        if beta < 16:                                           # above λ₁/σ² the rate is 0 for every β
            assert abs(lt.beta_for_rate(LAM, SIGMA, fit.rate) - beta) < 1e-4 * beta
    # growing C switches on exactly one more unit after each C_i, in the order of λ
    for C in (0.2, 0.7, 1.5, 2.5, 4.0):
        beta = lt.beta_for_rate(LAM, SIGMA, C)
        active = lt.beta_vae_rates(LAM, SIGMA, beta) > 0
        m = int((switch_on < C).sum())
        assert active.tolist() == [True] * m + [False] * (4 - m)
        assert abs(lt.beta_vae_rate(LAM, SIGMA, beta) - C) < 1e-12
    assert lt.beta_for_rate(LAM, SIGMA, 0.0) == 16.0


def test_latent_dim_caps_the_active_directions():
    rates = lt.beta_vae_rates(LAM, SIGMA, 1.0, latent_dim=2)
    assert rates[2:].abs().max() == 0 and rates[0] > 0
    assert lt.capacity_switch_on(LAM, latent_dim=2)[2:].isinf().all()
    fit = lt.fit_linear_beta_vae(SIGMA_X, SIGMA, 1.0, latent_dim=2, steps=150)
    assert abs(fit.rate - rates.sum().item()) < 1e-5
    assert abs(fit.distortion - lt.beta_vae_distortion(LAM, SIGMA, 1.0, latent_dim=2)) < 1e-5


def test_aggregate_posterior_is_independent_at_every_beta():
    """q(z) of the optimum has a diagonal covariance at every β: β removes directions, it buys no independence."""
    for beta in (0.5, 3.0, 10.0, 20.0):
        opt = lt.optimal_linear_beta_vae(SIGMA_X, SIGMA, beta)
        cov = opt.A @ SIGMA_X @ opt.A.T + torch.diag(opt.logvar.exp())
        tc = 0.5 * (torch.log(torch.diagonal(cov)).sum() - torch.logdet(cov)).item()
        assert abs(tc) < 1e-10, (beta, tc)
        torch.testing.assert_close(torch.diagonal(cov), torch.ones(4, dtype=F64), rtol=0, atol=1e-10)  # = prior


def test_dual_ascent_on_the_closed_form_rate_reaches_beta_for_rate():
    """log β ← log β + η(R(β) − ε) contracts for η < 4/m (R falls with slope −m/2 in log β) and converges
    to the β whose optimum spends exactly ε nats."""
    for target in (0.3, 1.2, 3.0):
        log_b = 0.0
        for _ in range(300):
            log_b += 0.3 * (lt.beta_vae_rate(LAM, SIGMA, math.exp(log_b)) - target)
        beta = lt.beta_for_rate(LAM, SIGMA, target)
        assert abs(math.exp(log_b) - beta) < 1e-8 * beta
        assert abs(lt.beta_vae_rate(LAM, SIGMA, beta) - target) < 1e-12


def test_beta_vae_bad_inputs():
    with pytest.raises(ValueError, match="positive variances"):
        lt.beta_vae_rates([1.0, -1.0], SIGMA, 1.0)
    with pytest.raises(ValueError, match="> 0"):
        lt.beta_vae_rates(LAM, SIGMA, 0.0)
    with pytest.raises(ValueError, match="positive definite"):
        lt.fit_linear_beta_vae(-SIGMA_X, SIGMA, 1.0)
    with pytest.raises(ValueError, match=">= 0"):
        lt.beta_for_rate(LAM, SIGMA, -1.0)
    with pytest.raises(ValueError, match="square"):
        lt.optimal_linear_beta_vae(torch.ones(2, 3, dtype=F64), SIGMA, 1.0)


# ============================================================== chapter 11 (a): weight variance and the gap law


def _posterior_and_proposal(scale, shift, seed=3):
    model = exact.LinearGaussian.random(4, 2, sigma=0.8, seed=seed)
    x = model.sample(1, torch.Generator().manual_seed(0))[1][0]
    m, P = model.posterior(x)
    return model, x, m, P, m + shift * P.diagonal().sqrt(), scale * P


def test_weight_moments_match_quadrature_in_1d():
    m, p, mu, q = 0.3, 0.5, -0.2, 0.9
    for n in (2.0, 3.0, 0.5):
        def integrand(z):
            log_pi = -0.5 * (math.log(2 * math.pi * p) + (z - m) ** 2 / p)
            log_q = -0.5 * (math.log(2 * math.pi * q) + (z - mu) ** 2 / q)
            return torch.exp(n * (log_pi - log_q))
        quad = exact.gaussian_expectation(integrand, mu, math.sqrt(q), n_points=4001, half_width=14.0)
        closed = lt.gaussian_weight_log_moment([m], [[p]], [mu], [[q]], n)
        assert abs(math.log(quad.item()) - closed) < 1e-9, (n, quad.item(), math.exp(closed))


def test_weight_variance_closed_form_matches_monte_carlo(gen):
    model, x, m, P, mu, Q = _posterior_and_proposal(1.5, 0.1)       # E r^4 < ∞ (Q ≻ 3P/4): r² has a finite SE
    lw = lt.iwae_log_weights(model, x, mu, Q, 1, 200_000, gen)[:, 0]
    r = torch.exp(lw - model.log_evidence(x))
    mc_close(r, 1.0)                                                 # E_q[w] = p(x)
    mc_close(r ** 2, 1.0 + lt.importance_chi2(m, P, mu, Q))          # Var[w]/p(x)² = χ²


def test_weight_variance_is_finite_only_for_wide_enough_proposals():
    _, _, m, P, _, _ = _posterior_and_proposal(1.0, 0.0)
    assert lt.weight_variance_is_finite(P, 0.51 * P) and not lt.weight_variance_is_finite(P, 0.49 * P)
    assert math.isinf(lt.importance_chi2(m, P, m, 0.49 * P)) and math.isfinite(lt.importance_chi2(m, P, m, 0.51 * P))
    assert math.isinf(lt.iwae_gap_asymptotic(m, P, m, 0.49 * P, 100))
    # 2-D posterior with correlation ρ: the ELBO-optimal diagonal q (precision diag Λ) has finite weight
    # variance iff |ρ| < 1/2; the moment-matched diagonal q (variances diag P) always does in 2-D
    for rho in (0.3, 0.49, 0.51, 0.9):
        Pc = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=F64) * torch.tensor([[2.0, 1.0], [1.0, 0.5]], dtype=F64)
        Lam = torch.linalg.inv(Pc)
        assert lt.weight_variance_is_finite(Pc, torch.diag(1 / Lam.diagonal())) == (abs(rho) < 0.5)
        assert lt.weight_variance_is_finite(Pc, torch.diag(Pc.diagonal()))


def test_iwae_gap_follows_weight_variance_over_2k(gen):
    """log p(x) − L_k = V/(2k) − (μ₃/3 − 3V²/4)/k² + O(k⁻³), V = Var[w]/p(x)² = χ² (here 0.624). The Monte
    Carlo gap has a relative standard error 2k/√(V·N) for N = k·R weights, so k = 10 is where the law can be
    checked tightly (±3 %); there the k⁻² term is 7 % of the gap, and it is included."""
    model, x, m, P, mu, Q = _posterior_and_proposal(2.0, 0.5)
    V = lt.importance_chi2(m, P, mu, Q)
    assert 0.5 < V < 0.8
    for k, n in ((10, 60_000), (50, 12_000)):
        samples = lt.iwae_gap_samples(model, x, mu, Q, k, n, gen)
        mc_close(samples, lt.iwae_gap_asymptotic(m, P, mu, Q, k, order=2))
        # ... and k·gap → V/2: the first-order law, up to its k⁻² term
        second = k * (lt.iwae_gap_asymptotic(m, P, mu, Q, k, order=2) - lt.iwae_gap_asymptotic(m, P, mu, Q, k))
        mc_close(k * samples, V / 2, atol=abs(second))
    # at k = 50 the first-order law is within 2 % of the second-order one
    assert abs(lt.iwae_gap_asymptotic(m, P, mu, Q, 50) / lt.iwae_gap_asymptotic(m, P, mu, Q, 50, 2) - 1) < 0.02


def _correlated_toy():
    """Chapter 11's §11.2 model: columns of W correlated (ρ = 0.9), so the posterior is strongly correlated."""
    g = torch.Generator().manual_seed(0)
    shared = torch.randn(8, 1, generator=g, dtype=F64)
    W = 0.9 * shared + math.sqrt(1 - 0.81) * torch.randn(8, 4, generator=g, dtype=F64)
    model = exact.LinearGaussian(W, torch.randn(8, generator=g, dtype=F64), sigma=0.3)
    x = model.sample(4, generator=g)[1][0]
    return model, x, *model.posterior(x)


def test_elbo_optimal_q_has_infinite_weight_variance_and_the_moment_matched_q_follows_the_law(gen):
    """The best ELBO proposal is the worst IWAE proposal. The ELBO-optimal diagonal q (precision diag Λ) of
    the chapter's correlated posterior has Var[w] = ∞ and a gap that falls far more slowly than 1/k (it is
    1.0 nats at k = 100, 0.74 at k = 1000); the moment-matched diagonal q (variances diag P) has χ² = 6.53 and
    a gap k·gap/(χ²/2) = 0.78 (k = 100), 0.86 (k = 1000), tending to 1 slowly (its third weight moment is ∞)."""
    model, x, m, P = _correlated_toy()
    mu, logvar = model.optimal_diagonal_q(x)
    torch.testing.assert_close(mu, m)
    q_elbo, q_mm = torch.diag(logvar.exp()), torch.diag(P.diagonal())
    assert not lt.weight_variance_is_finite(P, q_elbo) and math.isinf(lt.importance_chi2(m, P, m, q_elbo))
    assert lt.weight_variance_is_finite(P, q_mm)
    assert math.isinf(lt.gaussian_weight_log_moment(m, P, m, q_mm, 3.0))
    V = lt.importance_chi2(m, P, m, q_mm)
    assert 6.0 < V < 7.0
    gap_elbo = {k: lt.iwae_gap_samples(model, x, m, q_elbo, k, 100_000 // k, gen).mean().item() for k in (100, 1000)}
    assert 0.5 * gap_elbo[100] < gap_elbo[1000] < gap_elbo[100]          # 1/k would divide it by 10
    for k in (100, 1000):
        plain = lt.iwae_gap_samples(model, x, m, q_mm, k, 300_000 // k, gen)
        cv = torch.expm1(-plain) + plain            # p̂/p − 1 − log(p̂/p): the same mean since E[p̂/p] = 1
        assert cv.std() < 0.5 * plain.std()
        mc_close(plain, cv.mean().item(), atol=4 * cv.std().item() / math.sqrt(len(cv)))
        ratio = k * cv.mean().item() / (V / 2)
        assert 0.6 < ratio < 1.2, (k, ratio)


def test_gap_law_bad_inputs():
    _, _, m, P, _, _ = _posterior_and_proposal(1.0, 0.0)
    with pytest.raises(ValueError, match="positive definite"):
        lt.importance_chi2(m, P, m, -P)
    with pytest.raises(ValueError, match="dimensions disagree"):
        lt.gaussian_weight_log_moment(m, P, torch.zeros(3, dtype=F64), torch.eye(3, dtype=F64))
    with pytest.raises(ValueError, match="order"):
        lt.iwae_gap_asymptotic(m, P, m, 2 * P, 10, order=3)
    with pytest.raises(TypeError, match="LinearGaussian"):
        lt.iwae_log_weights("model", torch.zeros(4), m, P, 2, 2)


# ============================================================== chapter 11 (b): the SNR law


def test_rainforth_toy_optimum_is_the_posterior_mean():
    toy = lt.rainforth_toy(perturbation=0.0, seed=0)
    assert toy.data.shape == (1024, 20) and toy.q_var == pytest.approx(2 / 3)
    x = toy.data[5]
    torch.testing.assert_close(toy.A @ x + toy.b, (toy.mu + x) / 2)   # exact posterior N((μ+x)/2, I/2)


def test_closed_form_gradients_match_autograd():
    toy = lt.rainforth_toy(D=3, n_points=8, perturbation=0.3, seed=1)
    x, k, s2 = toy.data[0], 5, toy.q_var
    got = lt.rainforth_gradients(toy, x, k, 1, generator=torch.Generator().manual_seed(7))
    eps = torch.randn(1, k, 3, generator=torch.Generator().manual_seed(7), dtype=F64)[0]
    mu, b = toy.mu.clone().requires_grad_(True), toy.b.clone().requires_grad_(True)

    def log_w(mean_for_q):
        z = toy.A @ x + b + math.sqrt(s2) * eps
        log_p = -0.5 * ((z - mu) ** 2).sum(-1) - 0.5 * ((x - z) ** 2).sum(-1)
        return z, log_p + 0.5 * ((z - mean_for_q) ** 2).sum(-1) / s2

    _, lw = log_w(toy.A @ x + b)
    g_mu, g_b = torch.autograd.grad(torch.logsumexp(lw, 0), (mu, b))        # the IWAE gradients
    torch.testing.assert_close(got["iwae_decoder"][0], g_mu)
    torch.testing.assert_close(got["iwae_encoder"][0], g_b)
    _, lw = log_w((toy.A @ x + b).detach())                                # DReG: q's parameters stopped
    wt2 = torch.softmax(lw, 0).detach() ** 2
    (g_dreg,) = torch.autograd.grad((wt2 * lw).sum(), b)
    torch.testing.assert_close(got["dreg_encoder"][0], g_dreg)


def test_dreg_and_iwae_encoder_gradients_have_the_same_mean():
    toy = lt.rainforth_toy(seed=0)
    g = lt.rainforth_gradients(toy, toy.data[0], 10, 6000, generator=torch.Generator().manual_seed(3))
    diff = g["iwae_encoder"] - g["dreg_encoder"]
    z = diff.mean(0) / (diff.std(0) / math.sqrt(diff.shape[0]))
    assert z.abs().max() < 4.5, z                                           # 20 coordinates, no mean difference
    assert (g["dreg_encoder"].std(0) < 0.2 * g["iwae_encoder"].std(0)).all()


def test_snr_slopes_follow_rainforth_and_dreg():
    """log–log slopes over k = 30, 100, 300 (1,600 draws per k, seeded): IWAE decoder +½, IWAE encoder −½,
    DReG encoder +½ (Rainforth et al. 2018, Thm. 1; Tucker et al. 2018). Measured: +0.499, −0.493, +0.480
    (slope SE about 0.01); over k = 30…300 on other toys/points DReG gives 0.42–0.49."""
    curve = lt.snr_over_k(lt.rainforth_toy(seed=0), ks=(30, 100, 300), n_repeats=400, n_groups=4, seed=10)
    for name, target in (("iwae_decoder", 0.5), ("iwae_encoder", -0.5), ("dreg_encoder", 0.5)):
        assert abs(curve.slope[name] - target) < 0.15, (name, curve.slope[name])
        assert curve.slope_se[name] < 0.05, (name, curve.slope_se[name])
    # what the law means at k = 300: the encoder signal is buried (SNR ≪ 1), DReG's is not
    assert curve.snr["iwae_encoder"][-1] < 0.01 < 0.5 < curve.snr["dreg_encoder"][-1]


def test_snr_bad_inputs():
    toy = lt.rainforth_toy(D=2, n_points=4)
    with pytest.raises(ValueError, match="two values"):
        lt.snr_over_k(toy, ks=(10,))
    with pytest.raises(ValueError, match="encoder_mean"):
        lt.snr_over_k(toy, encoder_mean="median")
    with pytest.raises(ValueError, match="point"):
        lt.snr_over_k(toy, point=4)
    with pytest.raises(TypeError, match="RainforthToy"):
        lt.rainforth_gradients(None, torch.zeros(2), 2, 2)


# ============================================================== chapter 15: top-down vs bottom-up inference


@pytest.fixture(scope="module")
def structured():
    model = lt.TwoLayerLinearGaussian.random(structured=True, seed=0)     # WᵀW = I, BᵀB diagonal, BBᵀ not
    x = model.collapsed().sample(1, torch.Generator().manual_seed(0))[1][0]
    return model, x


def test_exact_evidence_and_posterior(structured):
    model, x = structured
    # Bayes' rule pointwise, with the joint written layer by layer
    mean, cov = model.posterior(x)
    z = torch.randn(6, model.d1 + model.d2, generator=torch.Generator().manual_seed(1), dtype=F64)
    log_post = torch.distributions.MultivariateNormal(mean, cov).log_prob(z)
    lj = model.log_joint(x, z[:, :model.d1], z[:, model.d1:])
    torch.testing.assert_close(log_post, lj - model.log_evidence(x), rtol=0, atol=1e-10)
    # ELBO(posterior) = log p(x); the closed-form ELBO of any q agrees with Monte Carlo
    assert abs(model.elbo(x, mean, cov).item() - model.log_evidence(x)) < 1e-10
    q_mean, q_cov = mean + 0.3, torch.diag(cov.diagonal())
    zq = torch.distributions.MultivariateNormal(q_mean, q_cov).sample((100_000,))
    terms = (model.log_joint(x, zq[:, :model.d1], zq[:, model.d1:])
             - torch.distributions.MultivariateNormal(q_mean, q_cov).log_prob(zq))
    mc_close(terms, model.elbo(x, q_mean, q_cov).item())


def test_top_down_inference_closes_the_gap(structured):
    model, x = structured
    log_px = model.log_evidence(x)
    # the Ladder VAE's precision-weighted merge of the exact linear messages *is* the exact posterior here
    mean, cov = model.ladder_posterior(x)
    post_mean, post_cov = model.posterior(x)
    torch.testing.assert_close(mean, post_mean, rtol=0, atol=1e-12)
    torch.testing.assert_close(cov, post_cov, rtol=0, atol=1e-12)
    assert abs(log_px - model.elbo(x, mean, cov).item()) < 1e-10
    # best top-down ELBO with diagonal conditionals: closed form and an L-BFGS optimum from a random start
    assert abs(model.best_gap("top-down")) < 1e-12
    fit = lt.fit_hierarchical_q(model, x, "top-down", diagonal=True, steps=200)
    assert 0 <= fit.gap < 1e-8, fit.gap


def test_bottom_up_inference_keeps_a_gap(structured):
    model, x = structured
    gap = model.best_gap("bottom-up")
    assert gap > 0.1, gap                                                   # 0.264 nats
    fit = lt.fit_hierarchical_q(model, x, "bottom-up", diagonal=True, steps=200, seed=1)
    assert abs(fit.gap - gap) < 1e-7, (fit.gap, gap)
    # the one-pass (layer-wise mean-field) encoder is worse still, and its full-covariance gap is I(z1; z2 | x)
    mf = model.best_gap("mean-field", diagonal=False)
    mean, cov = model.posterior(x)
    d1 = model.d1
    mi = 0.5 * (torch.logdet(cov[:d1, :d1]) + torch.logdet(cov[d1:, d1:]) - torch.logdet(cov)).item()
    assert abs(mf - mi) < 1e-10 and model.best_gap("mean-field") >= mf - 1e-12 and mf > gap


def test_bottom_up_is_exact_when_the_posterior_factorises_over_coordinates():
    # B's columns on coordinate axes: BBᵀ is diagonal, so p(z1|x) has a diagonal covariance as well
    model = lt.TwoLayerLinearGaussian.random(structured=True, axis_aligned_B=True, seed=0)
    assert abs(model.best_gap("bottom-up")) < 1e-12 and abs(model.best_gap("top-down")) < 1e-12


def test_rotating_B_keeps_top_down_exact_and_opens_the_bottom_up_gap():
    """Chapter 15's sweep: a rotation R of z1-space keeps BᵀB = (RB)ᵀ(RB) diagonal (so Λ22 and, with WᵀW = I,
    Λ11 are diagonal: top-down stays exact) while (RB)(RB)ᵀ stops being diagonal (bottom-up keeps a gap)."""
    base = lt.TwoLayerLinearGaussian.random(structured=True, axis_aligned_B=True, seed=0)
    gaps = []
    for theta in (0.2, 0.5, math.pi / 4):
        c, s = math.cos(theta), math.sin(theta)
        R = torch.eye(base.d1, dtype=F64)
        R[0, 0] = R[2, 2] = c
        R[0, 2], R[2, 0] = -s, s
        model = lt.TwoLayerLinearGaussian(base.W, R @ base.B, base.s1, base.sigma)
        assert abs(model.best_gap("top-down")) < 1e-12
        gaps.append(model.best_gap("bottom-up"))
    assert 0 < gaps[0] < gaps[1] < gaps[2], gaps


def test_with_full_covariances_both_orders_are_exact():
    """z2 → z1 → x is a Markov chain, so p(z2|z1, x) = p(z2|z1): the stochastic bottom-up family
    q(z1|x) q(z2|z1) contains the posterior. The difference is in what a *diagonal* Gaussian per layer can hold."""
    model = lt.TwoLayerLinearGaussian.random(seed=1)                         # a generic model
    x = model.collapsed().sample(1, torch.Generator().manual_seed(2))[1][0]
    assert model.best_gap("top-down", diagonal=False) == 0 == model.best_gap("bottom-up", diagonal=False)
    fit = lt.fit_hierarchical_q(model, x, "bottom-up", diagonal=False, steps=200, seed=3)
    assert fit.gap < 1e-8, fit.gap
    # on a generic model no diagonal family is exact; both keep a gap, mean field the largest
    td, bu, mf = (model.best_gap(f) for f in ("top-down", "bottom-up", "mean-field"))
    assert td > 0.1 and bu > 0.1 and mf >= max(td, bu)


def test_diagonal_gap_is_hadamard_and_bad_inputs():
    assert abs(lt.diagonal_gap(torch.diag(torch.tensor([1.0, 4.0], dtype=F64)))) < 1e-15
    M = torch.tensor([[2.0, 0.9], [0.9, 1.0]], dtype=F64)
    assert abs(lt.diagonal_gap(M) - 0.5 * math.log(2.0 / (2.0 - 0.81))) < 1e-14
    with pytest.raises(ValueError, match="rows"):
        lt.TwoLayerLinearGaussian(torch.ones(5, 3), torch.ones(4, 2), 0.5, 1.0)
    model = lt.TwoLayerLinearGaussian.random()
    with pytest.raises(ValueError, match="family"):
        model.best_gap("sideways")
    with pytest.raises(ValueError, match="entries"):
        model.log_evidence(torch.zeros(3))
    with pytest.raises(ValueError, match="structured"):
        lt.TwoLayerLinearGaussian.random(D=2, d1=4, structured=True)
