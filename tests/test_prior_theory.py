"""The exact models of chapter 14 (vae_core.prior_theory): the prior swap under a fixed linear-Gaussian
encoder and decoder (ELBO surgery, the exact aggregate posterior overfitting, a fitted Gaussian
generalising), the mixture bounds, the Gaussian mutual information, and the total correlation of a
correlated Gaussian in closed form, by Monte Carlo and by the permutation discriminator."""
import math

import pytest
import torch

from vae_core.distributions import gaussian_log_prob, kl_normal_standard
from vae_core.prior_theory import (encode, fitted_gaussian, gaussian_mutual_information,
                                   gaussian_total_correlation, gaussian_total_correlation_mc, kl_to_gaussian,
                                   kl_to_mixture_bounds, kl_to_mixture_mc, linear_prior_swap_toy,
                                   mixture_log_prob, permutation_tc_estimate, prior_swap, reconstruction)

pytestmark = pytest.mark.usefixtures("one_thread")
F64 = torch.float64


# ----------------------------------------------------------------------------- total correlation

def test_gaussian_total_correlation_closed_form_and_monte_carlo(gen):
    rho = 0.9
    cov = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=F64)
    tc = gaussian_total_correlation(cov)
    assert tc == pytest.approx(-0.5 * math.log(1 - rho ** 2), abs=1e-12)          # 0.830 nats
    est, se = gaussian_total_correlation_mc(cov, 200_000, generator=gen)
    assert abs(est - tc) < 4 * se and se < 0.01
    # scale-free and mean-free; zero for a diagonal covariance; a 3-D case against the determinant formula
    assert gaussian_total_correlation(cov * torch.tensor([[4.0, 2.0], [2.0, 1.0]], dtype=F64)) == pytest.approx(tc)
    assert gaussian_total_correlation(torch.diag(torch.tensor([0.5, 3.0, 2.0]))) == pytest.approx(0.0, abs=1e-12)
    B = torch.randn(3, 3, generator=gen, dtype=F64)
    C = B @ B.T + 0.5 * torch.eye(3, dtype=F64)
    tc3 = gaussian_total_correlation(C)
    assert tc3 == pytest.approx(0.5 * (torch.diagonal(C).log().sum() - torch.logdet(C)).item())
    est3, se3 = gaussian_total_correlation_mc(C, 200_000, generator=gen)
    assert abs(est3 - tc3) < 4 * se3


def test_permutation_discriminator_estimates_the_gaussian_tc():
    cov = [[1.0, 0.9], [0.9, 1.0]]
    est = permutation_tc_estimate(cov, steps=300, seed=0)
    # a classifier's estimate, not a bound: within 0.25 nats of the closed form 0.830 here
    assert abs(est - gaussian_total_correlation(cov)) < 0.25
    # independent coordinates: the estimate is near 0
    assert abs(permutation_tc_estimate([[1.0, 0.0], [0.0, 2.0]], steps=200, seed=0)) < 0.1


def test_tc_input_checks():
    with pytest.raises(ValueError, match="symmetric"):
        gaussian_total_correlation([[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="positive definite"):
        gaussian_total_correlation([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="square"):
        gaussian_total_correlation([[1.0, 0.0, 0.0]])
    with pytest.raises(TypeError):
        gaussian_total_correlation("cov")


# ----------------------------------------------------------------------------- mixtures

def test_mixture_log_prob_matches_a_direct_sum(gen):
    mu = torch.randn(7, 3, generator=gen, dtype=F64)
    lv = 0.3 * torch.randn(7, 3, generator=gen, dtype=F64)
    z = torch.randn(5, 4, 3, generator=gen, dtype=F64)
    direct = torch.logsumexp(gaussian_log_prob(z[..., None, :].expand(5, 4, 7, 3), mu.expand(5, 4, 7, 3),
                                               lv.expand(5, 4, 7, 3)), -1) - math.log(7)
    torch.testing.assert_close(mixture_log_prob(z, mu, lv, chunk=3), direct)
    with pytest.raises(ValueError, match="comp_mu and comp_logvar"):
        mixture_log_prob(z, mu, lv[:, :2])


def test_kl_to_mixture_lies_between_its_bounds(gen):
    comp_mu = 2 * torch.randn(20, 2, generator=gen, dtype=F64)
    comp_lv = torch.full((20, 2), math.log(0.3 ** 2), dtype=F64)
    mu = torch.randn(6, 2, generator=gen, dtype=F64)
    lv = torch.full((6, 2), math.log(0.2 ** 2), dtype=F64)
    est, se = kl_to_mixture_mc(mu, lv, comp_mu, comp_lv, 4000, generator=gen)
    lo, hi = kl_to_mixture_bounds(mu, lv, comp_mu, comp_lv)
    assert (lo <= hi + 1e-12).all()
    assert (est >= lo - 4 * se).all() and (est <= hi + 4 * se).all()
    # one component: all three agree with the closed-form Gaussian KL (the bounds become equalities)
    lo1, hi1 = kl_to_mixture_bounds(mu, lv, comp_mu[:1], comp_lv[:1])
    exact = kl_to_gaussian(mu, lv, comp_mu[0], torch.diag(comp_lv[0].exp()))
    torch.testing.assert_close(hi1, exact)
    assert (lo1 <= exact + 1e-12).all()


def test_fitted_gaussian_has_the_mixture_moments(gen):
    mu = torch.randn(50, 2, generator=gen, dtype=F64) * torch.tensor([2.0, 0.5], dtype=F64)
    lv = torch.randn(50, 2, generator=gen, dtype=F64) * 0.2 - 2
    m, cov = fitted_gaussian(mu, lv)
    # sample the mixture and compare the moments
    idx = torch.randint(50, (400_000,), generator=gen)
    z = mu[idx] + (0.5 * lv[idx]).exp() * torch.randn(400_000, 2, generator=gen, dtype=F64)
    torch.testing.assert_close(z.mean(0), m, atol=0.01, rtol=0)
    torch.testing.assert_close(torch.cov(z.T), cov, atol=0.02, rtol=0.01)


# ----------------------------------------------------------------------------- the prior swap

def test_gaussian_mutual_information_is_the_large_n_limit_of_elbo_surgery(gen):
    toy = linear_prior_swap_toy(n_train=3000, noise=0.2, seed=1)
    exact = gaussian_mutual_information(toy.A, toy.data_cov, toy.logvar)
    mu, lv = encode(toy, toy.x_train)
    # I(n; z) = mean_n KL(q(z|x_n) || q(z)), averaged over a random 300 of the n (an unbiased estimate)
    kl, _ = kl_to_mixture_mc(mu[:300], lv[:300], mu, lv, 16, generator=gen)
    assert (kl <= math.log(3000) + 1e-9).all()
    assert abs(kl.mean().item() - exact) < 0.15
    # with few points the same estimate is capped by log N, far below the population value
    small = linear_prior_swap_toy(n_train=10, noise=0.05, seed=1)
    mu, lv = encode(small, small.x_train)
    kl, _ = kl_to_mixture_mc(mu, lv, mu, lv, 256, generator=gen)
    assert kl.mean().item() <= math.log(10) + 1e-9
    assert gaussian_mutual_information(small.A, small.data_cov, small.logvar) > math.log(10) + 1


def test_reconstruction_term_matches_monte_carlo(gen):
    toy = linear_prior_swap_toy(n_train=5, noise=0.3)
    mu, lv = encode(toy, toy.x_train)
    z = mu + (0.5 * lv).exp() * torch.randn(100_000, *mu.shape, generator=gen, dtype=F64)
    xhat = z @ toy.W.T + toy.b
    mc = gaussian_log_prob(toy.x_train.expand_as(xhat), xhat, torch.full_like(xhat, math.log(toy.sigma ** 2)))
    assert (mc.mean(0) - reconstruction(toy, toy.x_train)).abs().max() < 4 * (mc.std(0).max() / 100_000 ** 0.5)


def test_prior_swap_surgery_and_ordering(gen):
    toy = linear_prior_swap_toy(n_train=100, n_test=1000, noise=0.1, seed=0)
    r = prior_swap(toy, 512, generator=gen)
    tr, te = r.elbo["train"], r.elbo["test"]
    # ELBO surgery: the aggregate's training gain over N(0, I) is KL(q(z) || N(0, I)) = avg KL - I(n; z)
    assert tr["aggregate"] - tr["standard"] == pytest.approx(r.marginal_kl, abs=1e-9)
    assert r.mutual_information <= r.log_n
    # the fitted Gaussian's training gain is exactly KL(G || N(0, I)) (closed form on both sides)
    assert tr["fitted"] - tr["standard"] == pytest.approx(r.kl_fitted, abs=1e-9)
    # training order, exact: aggregate >= fitted >= standard (aggregate within its Monte-Carlo error)
    assert tr["aggregate"] >= tr["fitted"] - 4 * r.se["train"] and tr["fitted"] >= tr["standard"]
    # the closed-form bounds hold around the Monte-Carlo rows
    for split in ("train", "test"):
        lo, hi = r.bounds[split]
        assert lo - 4 * r.se[split] <= r.elbo[split]["aggregate"] <= hi + 4 * r.se[split]
    # on new points the exact aggregate overfits: below the fitted Gaussian and even below N(0, I)
    assert te["fitted"] > te["standard"] > te["aggregate"] + 1.0
    # while the smooth prior keeps its gain (within 0.3 nats of the training gain)
    assert abs((te["fitted"] - te["standard"]) - (tr["fitted"] - tr["standard"])) < 0.3


def test_prior_swap_overfitting_fades_with_more_training_points(gen):
    excess = []          # (train - test) of the aggregate minus that of the fitted Gaussian, on the same points
    for n in (30, 1000):
        r = prior_swap(linear_prior_swap_toy(n_train=n, n_test=200, noise=0.2, seed=0), 32, generator=gen)
        tr, te = r.elbo["train"], r.elbo["test"]
        excess.append((tr["aggregate"] - te["aggregate"]) - (tr["fitted"] - te["fitted"]))
    assert excess[0] > 2.0 and abs(excess[1]) < 0.2


def test_prior_swap_input_checks():
    with pytest.raises(TypeError, match="LinearPriorSwap"):
        prior_swap("toy")
    toy = linear_prior_swap_toy(n_train=5)
    with pytest.raises(ValueError, match="columns"):
        encode(toy, torch.zeros(3, 4, dtype=F64))
    with pytest.raises(ValueError, match="scales"):
        linear_prior_swap_toy(scales=(1.0, -1.0))
    with pytest.raises(ValueError):
        linear_prior_swap_toy(noise=0.0)
    assert kl_normal_standard(*encode(toy, toy.x_train)).shape == (5,)
