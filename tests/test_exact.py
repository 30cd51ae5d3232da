"""Part I's claims checked numerically on models with exact evidence and posterior (vae_core.exact)."""
import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from conftest import mc_close
from vae_core import exact
from vae_core.distributions import gaussian_log_prob, kl_mvn, kl_normal_normal, kl_normal_standard

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")   # see conftest.py


def _random_q(shape, g):
    return torch.randn(shape, generator=g, dtype=F64), 0.5 * torch.randn(shape, generator=g, dtype=F64)


# ============================================================== linear-Gaussian: exact identities


@pytest.mark.parametrize("D,d,sigma", [(1, 1, 0.8), (5, 2, 0.5), (8, 3, 1.3)])
def test_elbo_plus_kl_gap_equals_log_evidence_to_round_off(D, d, sigma, gen):
    model = exact.LinearGaussian.random(D, d, sigma=sigma, seed=D + d)
    _, x = model.sample(16, gen)
    mu, logvar = _random_q((16, d), gen)
    elbo = model.elbo(x, mu, logvar)
    gap = model.kl_to_posterior(x, mu, logvar)
    log_px = model.log_evidence(x)
    assert elbo.dtype == F64 and elbo.shape == (16,)
    torch.testing.assert_close(elbo + gap, log_px, rtol=0, atol=1e-6)
    assert (elbo + gap - log_px).abs().max() < 1e-9  # in fact round-off
    assert (gap > 0).all() and (elbo < log_px).all()  # the bound is strict for these q


def test_log_evidence_and_posterior_match_torch_and_bayes(gen):
    model = exact.LinearGaussian.random(4, 2, sigma=0.7, seed=3)
    _, x = model.sample(10, gen)
    ref = MultivariateNormal(model.b, model.marginal_cov()).log_prob(x)
    torch.testing.assert_close(model.log_evidence(x), ref, rtol=0, atol=1e-10)
    # Bayes' rule pointwise: log p(z|x) = log p(x, z) - log p(x) for any z
    mean, cov = model.posterior(x)
    z = torch.randn(10, 2, generator=gen, dtype=F64)
    log_post = MultivariateNormal(mean, cov).log_prob(z)
    torch.testing.assert_close(log_post, model.log_joint(x, z) - model.log_evidence(x), rtol=0, atol=1e-10)


def test_gap_is_zero_exactly_at_the_posterior():
    # orthogonal columns of W: the posterior is diagonal, so a diagonal q can equal it
    W = torch.tensor([[1.5, 0.0], [0.0, 0.7], [0.0, 0.0]], dtype=F64)
    model = exact.LinearGaussian(W, [0.3, -0.2, 1.0], sigma=0.6)
    x = torch.tensor([[1.0, -0.5, 2.0]], dtype=F64)
    mu, logvar = model.optimal_diagonal_q(x)
    assert model.kl_to_posterior(x, mu, logvar).abs().item() < 1e-12
    torch.testing.assert_close(model.elbo(x, mu, logvar), model.log_evidence(x), rtol=0, atol=1e-12)


def test_optimal_diagonal_q_is_a_stationary_point_and_matches_precision_diagonal(gen):
    model = exact.LinearGaussian.random(5, 3, sigma=0.6, seed=7)  # correlated posterior
    _, x = model.sample(3, gen)
    mu, logvar = (t.clone().requires_grad_(True) for t in model.optimal_diagonal_q(x))
    model.elbo(x, mu, logvar).sum().backward()
    assert mu.grad.abs().max() < 1e-10 and logvar.grad.abs().max() < 1e-10
    # a diagonal q cannot match a correlated posterior: the gap stays positive
    assert (model.kl_to_posterior(x, mu.detach(), logvar.detach()) > 1e-3).all()


def test_monte_carlo_elbo_within_its_standard_error(gen):
    model = exact.LinearGaussian.random(5, 2, sigma=0.8, seed=11)
    _, x = model.sample(3, gen)
    mu, logvar = _random_q((3, 2), gen)
    samples = model.elbo_samples(x, mu, logvar, 100_000, generator=gen)
    assert samples.shape == (100_000, 3)
    bound = model.elbo(x, mu, logvar)
    for i in range(3):
        mc_close(samples[:, i], bound[i].item())
    # ... and its mean is not log p(x): the bound is a different number (gap >> standard error)
    se = samples.std(0) / math.sqrt(len(samples))
    assert ((model.log_evidence(x) - samples.mean(0)) > 10 * se).all()


def test_linear_gaussian_rejects_bad_input():
    with pytest.raises(ValueError, match=r"sigma must be a finite number > 0"):
        exact.LinearGaussian(1.0, sigma=0.0)
    with pytest.raises(ValueError, match=r"W must be a \(D, d\) matrix"):
        exact.LinearGaussian(torch.ones(2, 2, 2))
    model = exact.LinearGaussian.random(3, 2)
    with pytest.raises(ValueError, match=r"x must have 3 values in its last dimension"):
        model.log_evidence(torch.zeros(4, 2))
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor"):
        model.log_evidence([0.0, 0.0, 0.0])


# ============================================================== grids


def test_grid_posterior_1d_matches_exact_linear_gaussian():
    model = exact.LinearGaussian(1.5, [0.2], sigma=0.8)
    x = torch.tensor([1.7], dtype=F64)
    z, density, log_px = exact.grid_posterior_1d(lambda z: model.log_joint(x, z[:, None]), -8, 8, 2001)
    assert abs(log_px.item() - model.log_evidence(x).item()) < 1e-8
    mean, cov = model.posterior(x)
    truth = Normal(mean[0], cov[0, 0].sqrt()).log_prob(z).exp()
    assert (density - truth).abs().max() < 1e-8


@pytest.mark.parametrize("d,n", [(1, 200), (2, 60), (3, 30)])
def test_grid_log_evidence_matches_exact_in_several_dimensions(d, n):
    model = exact.LinearGaussian.random(3, d, sigma=1.0, seed=d)
    x = model.sample(1, torch.Generator().manual_seed(d))[1][0]
    est = exact.grid_log_evidence(lambda z: model.log_joint(x, z), d, lo=-7, hi=7, n=n, chunk_size=5000)
    assert abs(est.item() - model.log_evidence(x).item()) < 1e-6


def test_grid_evidence_of_nonlinear_model_agrees_with_prior_sampling(gen):
    model = exact.NonlinearGaussian1D(sigma=0.5)
    x = 1.5
    _, _, log_px = exact.grid_posterior_1d(lambda z: model.log_joint(x, z), -7, 7, 4001)
    # p(x) = E_{p(z)}[p(x|z)]: plain Monte Carlo from the prior
    z = torch.randn(400_000, generator=gen, dtype=F64)
    lik = torch.exp(model.log_joint(x, z) - Normal(0.0, 1.0).log_prob(z))
    mc_close(lik, log_px.exp().item())


def test_nonlinear_posterior_is_bimodal_and_normalised():
    model = exact.NonlinearGaussian1D(sigma=0.5)
    z, density, _ = exact.grid_posterior_1d(lambda z: model.log_joint(3.0, z), -6, 6, 3001)
    assert torch.trapezoid(density, z).item() == pytest.approx(1.0, abs=1e-10)
    left, right = density[z < 0], density[z > 0]
    assert z[z < 0][left.argmax()].item() == pytest.approx(-math.sqrt(3), abs=0.1)
    assert z[z > 0][right.argmax()].item() == pytest.approx(math.sqrt(3), abs=0.1)
    assert density[z.abs().argmin()] < 1e-3 * density.max()  # nearly nothing in between


def test_grid_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"need n >= 2 and hi > lo"):
        exact.grid_posterior_1d(lambda z: z, 1.0, 0.0, 10)
    with pytest.raises(ValueError, match=r"one value per grid point"):
        exact.grid_posterior_1d(lambda z: z.sum(), -1, 1, 10)
    with pytest.raises(TypeError, match=r"d must be a positive int"):
        exact.grid_log_evidence(lambda z: z.sum(-1), 1.5)


# ============================================================== per-datapoint vs amortized VI


def test_adam_is_the_textbook_update():
    p = torch.tensor([3.0, -2.0], dtype=F64, requires_grad=True)
    ref = p.detach().clone().requires_grad_(True)
    losses = exact.adam([p], lambda: ((p - 1) ** 2).sum(), steps=50, lr=0.1)
    opt = torch.optim.Adam([ref], lr=0.1)
    for _ in range(50):
        opt.zero_grad()
        ((ref - 1) ** 2).sum().backward()
        opt.step()
    torch.testing.assert_close(p.detach(), ref.detach(), rtol=0, atol=1e-12)
    assert len(losses) == 50 and losses[-1] < losses[0]


def test_per_datapoint_vi_converges_to_the_optimal_diagonal_q(gen):
    model = exact.LinearGaussian.random(6, 2, sigma=0.6, seed=5)
    _, x = model.sample(8, gen)
    res = exact.fit_per_datapoint_vi(model, x, steps=400, lr=0.1)
    mu_opt, lv_opt = model.optimal_diagonal_q(x)
    assert res.history.shape == (400, 8)
    torch.testing.assert_close(res.mu, mu_opt, rtol=0, atol=1e-4)
    torch.testing.assert_close(res.logvar, lv_opt, rtol=0, atol=1e-4)
    torch.testing.assert_close(res.history[-1], model.elbo(x, mu_opt, lv_opt), rtol=0, atol=1e-7)
    assert (res.history[-1] >= res.history[0]).all()


def test_amortized_encoder_learns_the_posterior_map(gen):
    model = exact.LinearGaussian.random(6, 2, sigma=0.6, seed=5)
    _, x_train = model.sample(2000, gen)
    enc = exact.fit_amortized_linear_encoder(model, x_train, steps=600, lr=0.05, seed=0)
    _, x_new = model.sample(50, gen)  # never seen in training
    mu, logvar = enc(x_new)
    mu_opt, lv_opt = model.optimal_diagonal_q(x_new)
    torch.testing.assert_close(mu, mu_opt, rtol=0, atol=1e-3)
    torch.testing.assert_close(logvar, lv_opt, rtol=0, atol=1e-3)


# ============================================================== EM on a 1-D mixture


@pytest.fixture
def mixture_data(gen):
    true = exact.GaussianMixture1D([0.3, 0.5, 0.2], [-3.0, 0.5, 4.0], [0.7, 1.0, 0.5])
    return true, true.sample(1500, gen)


def test_mixture_basics(gen):
    mix = exact.GaussianMixture1D([1.0, 3.0], [-1.0, 2.0], [0.5, 1.5])
    torch.testing.assert_close(mix.weights, torch.tensor([0.25, 0.75], dtype=F64))
    z = torch.linspace(-10, 12, 20001, dtype=F64)
    dens = mix.log_prob(z).exp()
    assert torch.trapezoid(dens, z).item() == pytest.approx(1.0, abs=1e-8)
    assert torch.trapezoid(z * dens, z).item() == pytest.approx(mix.mean().item(), abs=1e-8)
    assert torch.trapezoid((z - mix.mean()) ** 2 * dens, z).item() == pytest.approx(mix.variance().item(), abs=1e-7)
    r = mix.responsibilities(torch.tensor([0.3], dtype=F64))
    assert r.sum().item() == pytest.approx(1.0)
    s = mix.sample(200_000, gen)
    mc_close(s, mix.mean().item())


def test_mixture_elbo_is_a_bound_tight_at_the_posterior(mixture_data, gen):
    true, x = mixture_data
    ll = true.log_likelihood(x)
    tight = exact.mixture_elbo(x, true, true.responsibilities(x))
    assert abs(tight.item() - ll.item()) < 1e-8
    other = torch.softmax(torch.randn(len(x), 3, generator=gen, dtype=F64), -1)
    assert exact.mixture_elbo(x, true, other) < ll - 1.0


def test_em_elbo_equals_log_likelihood_after_each_e_step_and_never_decreases(mixture_data):
    _, x = mixture_data
    init = exact.GaussianMixture1D([1, 1, 1], [-1.0, 0.0, 1.0], [2.0, 2.0, 2.0])
    h = exact.fit_em(x, init, n_steps=60)
    assert len(h.log_likelihood) == 61 and len(h.elbo_after_e) == 60
    torch.testing.assert_close(h.elbo_after_e, h.log_likelihood[:-1], rtol=0, atol=1e-8)
    assert (h.elbo_after_m >= h.elbo_after_e - 1e-9).all()          # M-step raises the bound
    assert (h.log_likelihood[1:] >= h.elbo_after_m - 1e-9).all()     # E-step closes the gap
    assert (torch.diff(h.log_likelihood) >= -1e-9).all()              # hence monotone
    assert h.log_likelihood[-1] - h.log_likelihood[0] > 100


def test_em_recovers_the_generating_mixture(gen):
    true = exact.GaussianMixture1D([0.4, 0.6], [-2.0, 2.5], [0.6, 0.9])
    x = true.sample(20_000, gen)
    h = exact.fit_em(x, exact.GaussianMixture1D([0.5, 0.5], [-0.5, 0.5], [1.0, 1.0]), n_steps=100)
    order = torch.argsort(h.mixture.means)
    torch.testing.assert_close(h.mixture.means[order], true.means, rtol=0, atol=0.05)
    torch.testing.assert_close(h.mixture.stds[order], true.stds, rtol=0, atol=0.05)
    torch.testing.assert_close(h.mixture.weights[order], true.weights, rtol=0, atol=0.02)


def test_mixture_rejects_bad_parameters():
    with pytest.raises(ValueError, match=r"same \(non-zero\) length"):
        exact.GaussianMixture1D([0.5, 0.5], [0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"must be > 0"):
        exact.GaussianMixture1D([0.5, 0.5], [0.0, 1.0], [1.0, -1.0])
    with pytest.raises(ValueError, match=r"resp must have shape"):
        exact.mixture_elbo(torch.zeros(4, dtype=F64), exact.GaussianMixture1D([1], [0], [1]), torch.ones(4, 2))


# ============================================================== KL between Gaussians (chapter 3)


def test_kl_1d_closed_form_vs_torch_and_monte_carlo(gen):
    mq, lq, mp, lp = (torch.tensor([[v]], dtype=F64) for v in (0.7, -0.4, -0.5, 0.6))
    kl = kl_normal_normal(mq, lq, mp, lp)
    q, p = Normal(mq, (0.5 * lq).exp()), Normal(mp, (0.5 * lp).exp())
    torch.testing.assert_close(kl, kl_divergence(q, p).sum(-1), rtol=0, atol=1e-6)
    z = q.sample((200_000,))
    mc_close((q.log_prob(z) - p.log_prob(z)).reshape(-1), kl.item())
    # the VAE term: against N(0, 1)
    std = kl_divergence(q, Normal(torch.zeros_like(mq), torch.ones_like(mq))).sum(-1)
    torch.testing.assert_close(kl_normal_standard(mq, lq), std, rtol=0, atol=1e-6)


def test_kl_diagonal_closed_form_vs_torch_and_monte_carlo(gen):
    mq, lq, mp, lp = (torch.randn(1, 6, generator=gen, dtype=F64) for _ in range(4))
    kl = kl_normal_normal(mq, lq, mp, lp)
    ref = kl_divergence(Normal(mq, (0.5 * lq).exp()), Normal(mp, (0.5 * lp).exp())).sum(-1)
    torch.testing.assert_close(kl, ref, rtol=0, atol=1e-6)
    z = mq + (0.5 * lq).exp() * torch.randn(200_000, 6, generator=gen, dtype=F64)
    mc_close(gaussian_log_prob(z, mq, lq) - gaussian_log_prob(z, mp, lp), kl.item())
    # diagonal = sum of independent 1-D KLs, and the full-covariance formula agrees
    full = kl_mvn(mq, torch.diag_embed(lq.exp()), mp, torch.diag_embed(lp.exp()))
    torch.testing.assert_close(full, kl, rtol=0, atol=1e-10)


def test_kl_full_covariance_closed_form_vs_torch_and_monte_carlo(gen):
    d = 4
    A, B = (torch.randn(d, d, generator=gen, dtype=F64) for _ in range(2))
    cov_q, cov_p = A @ A.T + 0.5 * torch.eye(d, dtype=F64), B @ B.T + 0.5 * torch.eye(d, dtype=F64)
    mu_q, mu_p = torch.randn(d, generator=gen, dtype=F64), torch.randn(d, generator=gen, dtype=F64)
    q, p = MultivariateNormal(mu_q, cov_q), MultivariateNormal(mu_p, cov_p)
    kl = kl_mvn(mu_q, cov_q, mu_p, cov_p)
    torch.testing.assert_close(kl, kl_divergence(q, p), rtol=0, atol=1e-6)
    z = mu_q + torch.randn(200_000, d, generator=gen, dtype=F64) @ torch.linalg.cholesky(cov_q).T
    mc_close(q.log_prob(z) - p.log_prob(z), kl.item())
    # non-negative, zero only for equal arguments, and asymmetric
    assert kl > 0 and kl_mvn(mu_q, cov_q, mu_q, cov_q).abs() < 1e-12
    assert abs(kl.item() - kl_mvn(mu_p, cov_p, mu_q, cov_q).item()) > 0.1


# ============================================================== forward vs reverse KL


@pytest.fixture
def bimodal():
    return exact.GaussianMixture1D([0.4, 0.6], [-2.0, 2.0], [0.6, 0.6])


def test_gaussian_expectation_is_exact_for_polynomials():
    e = exact.gaussian_expectation(lambda z: z ** 4, torch.tensor(0.7, dtype=F64), torch.tensor(1.3, dtype=F64))
    m, s = 0.7, 1.3
    assert e.item() == pytest.approx(m ** 4 + 6 * m ** 2 * s ** 2 + 3 * s ** 4, rel=1e-12)


def test_forward_and_reverse_kl_match_monte_carlo(bimodal, gen):
    m, s = 0.5, 1.2
    q = Normal(torch.tensor(m, dtype=F64), torch.tensor(s, dtype=F64))
    xp = bimodal.sample(200_000, gen)
    mc_close(bimodal.log_prob(xp) - q.log_prob(xp), exact.kl_forward(bimodal, m, s).item())
    zq = m + s * torch.randn(200_000, generator=gen, dtype=F64)
    mc_close(q.log_prob(zq) - bimodal.log_prob(zq), exact.kl_reverse(bimodal, m, s).item())


def test_kl_is_non_negative_and_asymmetric(bimodal):
    ms = torch.linspace(-4, 4, 41, dtype=F64)[:, None]
    ss = torch.logspace(-1, 0.6, 30, dtype=F64)[None, :]
    fwd, rev = exact.kl_forward(bimodal, ms, ss), exact.kl_reverse(bimodal, ms, ss)
    assert fwd.shape == rev.shape == (41, 30)
    assert (fwd > 0).all() and (rev > 0).all()
    assert (fwd - rev).abs().max() > 1.0


def test_forward_kl_fit_matches_the_mixture_moments(bimodal):
    fit = exact.fit_forward_kl(bimodal)
    assert fit.mean == pytest.approx(0.4 * -2 + 0.6 * 2, abs=1e-12)
    assert fit.std ** 2 == pytest.approx(0.36 + 4 - 0.4 ** 2, abs=1e-12)
    # a stationary point, and any move increases the KL
    m = torch.tensor(fit.mean, dtype=F64, requires_grad=True)
    s = torch.tensor(fit.std, dtype=F64, requires_grad=True)
    exact.kl_forward(bimodal, m, s).backward()
    assert abs(m.grad.item()) < 1e-10 and abs(s.grad.item()) < 1e-10
    for dm, ds in [(0.1, 0), (-0.1, 0), (0, 0.1), (0, -0.1)]:
        assert exact.kl_forward(bimodal, fit.mean + dm, fit.std + ds).item() > fit.kl


def test_reverse_kl_fit_sits_on_one_mode_with_smaller_spread(bimodal):
    fwd = exact.fit_forward_kl(bimodal)
    right = exact.fit_reverse_kl(bimodal, init_mean=1.0, init_std=0.5)
    left = exact.fit_reverse_kl(bimodal, init_mean=-1.0, init_std=0.5)
    for fit, mode in ((right, 2.0), (left, -2.0)):
        assert abs(fit.mean - mode) < 0.05          # on a mode, not between them
        assert fit.std == pytest.approx(0.6, rel=0.05)  # about the mode's own spread ...
        assert fit.std < 0.5 * fwd.std              # ... much narrower than the moment match
    assert right.kl < left.kl                       # the heavier mode is the global optimum
    # and the two directions disagree about which Gaussian is best
    assert exact.kl_reverse(bimodal, fwd.mean, fwd.std).item() > right.kl
    assert exact.kl_forward(bimodal, right.mean, right.std).item() > fwd.kl


def test_reverse_kl_is_non_convex_a_wide_start_finds_a_worse_broad_optimum(bimodal):
    wide = exact.fit_reverse_kl(bimodal, init_mean=0.0, init_std=2.0)
    modes = [exact.fit_reverse_kl(bimodal, init_mean=m, init_std=0.5) for m in (-1.0, 1.0)]
    fwd = exact.fit_forward_kl(bimodal)
    assert -1.0 < wide.mean < 1.0 and 0.6 * 2 < wide.std < fwd.std   # straddles the valley
    assert wide.kl > max(f.kl for f in modes)                           # worse than either mode
    # a genuine local minimum: every small move increases the KL
    for dm, ds in [(0.05, 0), (-0.05, 0), (0, 0.05), (0, -0.05), (0.05, 0.05), (-0.05, -0.05)]:
        assert exact.kl_reverse(bimodal, wide.mean + dm, wide.std + ds).item() > wide.kl
