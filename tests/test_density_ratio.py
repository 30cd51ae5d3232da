"""Density ratios by classification (chapter 14): permute_dims, the discriminator, the implicit-prior VAE
and FactorVAE. The maths is checked on Gaussians, where every density ratio has a closed form."""
import math

import pytest
import torch
from torch import nn

from conftest import mc_close
from vae_core.distributions import (gaussian_log_prob, kl_normal_normal, kl_normal_standard,
                                    standard_normal_log_prob)
from vae_core.estimators import permute_dims
from vae_core.models import MODELS, Batch, FactorVAE, ImplicitPriorVAE
from vae_core.nets import Discriminator

pytestmark = pytest.mark.usefixtures("one_thread")


def _correlated(n, rho, gen):
    """(n, 2) samples of N(0, [[1, rho], [rho, 1]]): unit marginals, correlation rho."""
    a, b = torch.randn(n, generator=gen), torch.randn(n, generator=gen)
    return torch.stack([a, rho * a + math.sqrt(1 - rho ** 2) * b], dim=1)


def _log_ratio_correlated(z, rho):
    """log N(z; 0, Sigma) - log N(z_1; 0, 1) N(z_2; 0, 1) for the correlation-rho Gaussian."""
    z1, z2 = z[..., 0], z[..., 1]
    quad = (z1 ** 2 - 2 * rho * z1 * z2 + z2 ** 2) / (1 - rho ** 2)
    return -0.5 * math.log(1 - rho ** 2) - 0.5 * quad + 0.5 * (z1 ** 2 + z2 ** 2)


def _train(loss_fn, params, steps=250, lr=1e-2):
    torch.manual_seed(0)
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


# ----------------------------------------------------------------------------- permute_dims

def test_permute_dims_keeps_every_column_and_breaks_the_correlation(gen):
    z = _correlated(5000, 0.95, gen)
    z = torch.cat([z, 3 * z[:, :1] + 0.1 * torch.randn(5000, 1, generator=gen)], dim=1)   # 3 correlated columns
    zp = permute_dims(z, generator=gen)
    assert zp.shape == z.shape
    # every column keeps its multiset of values: each marginal q(z_j) is unchanged
    assert torch.equal(zp.sort(0).values, z.sort(0).values)
    # ... but the rows are re-assembled: correlations near 0 (sd of r is 1/sqrt(n) = 0.014 here)
    c_before, c_after = torch.corrcoef(z.T), torch.corrcoef(zp.T)
    off = ~torch.eye(3, dtype=torch.bool)
    assert (c_before[off].abs() > 0.9).all()
    assert (c_after[off].abs() < 0.06).all()
    # each column has its own permutation: two identical columns stay equal in about 1/B of the rows
    twins = permute_dims(z[:, :1].repeat(1, 2), generator=gen)
    assert (twins[:, 0] == twins[:, 1]).float().mean() < 0.01


def test_permute_dims_is_across_the_batch_not_within_a_row(gen):
    z = torch.arange(12.).view(4, 3) * torch.tensor([1., 100., 10000.])   # column j lives in its own range
    zp = permute_dims(z, generator=gen)
    for j in range(3):
        assert set(zp[:, j].tolist()) == set(z[:, j].tolist())      # values never change column


def test_permute_dims_reproducible_and_differentiable():
    z = torch.randn(50, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
    a = permute_dims(z, generator=torch.Generator().manual_seed(3))
    b = permute_dims(z, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, z)
    (a * torch.arange(4.)).sum().backward()          # each entry moved once: gradient = its column's weight
    assert torch.equal(z.grad, torch.arange(4.).expand(50, 4))
    one = torch.randn(1, 3)
    assert torch.equal(permute_dims(one), one)


def test_permute_dims_bad_input():
    with pytest.raises(ValueError, match=r"shape \(batch, latent_dim\)"):
        permute_dims(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="at least 2 dimension"):
        permute_dims(torch.zeros(5))
    with pytest.raises(TypeError, match="torch.Tensor"):
        permute_dims([[1.0, 2.0]])


# ----------------------------------------------------------------------------- the discriminator

def test_optimal_discriminator_logit_is_the_log_ratio_of_two_gaussians(gen):
    """Train on N(m, s^2) (label 1) against N(0, I) (label 0): the logit must approach
    log N(z; m, s^2) - log N(z; 0, I), known in closed form."""
    m, lv = torch.tensor([1.0, -0.5]), torch.tensor([-0.5, 0.3])
    torch.manual_seed(0)
    disc = Discriminator(2, (32, 32))

    def loss():
        zq = m + (0.5 * lv).exp() * torch.randn(256, 2, generator=gen)
        return disc.ratio_loss(zq, torch.randn(256, 2, generator=gen))

    _train(loss, disc.parameters())
    # evaluate where the classifier saw data: half from each distribution
    z = torch.cat([m + (0.5 * lv).exp() * torch.randn(2000, 2, generator=gen), torch.randn(2000, 2, generator=gen)])
    true = gaussian_log_prob(z, m, lv) - standard_normal_log_prob(z)
    with torch.no_grad():
        err = disc(z) - true
    # the true log-ratio varies with sd about 1.7 nats over these points; the learned one is within
    # 0.1 nats for half of them and 0.3 nats in root-mean-square (the tails are seen rarely)
    assert true.std() > 1.4
    assert err.abs().median() < 0.1
    assert err.pow(2).mean().sqrt() < 0.3
    # the sign convention: positive where the numerator (label 1) is denser
    assert (disc(m.unsqueeze(0)) > 0).all() and (disc(torch.tensor([[-2.0, 2.0]])) < 0).all()


def test_ratio_loss_is_balanced_binary_cross_entropy():
    disc = Discriminator(3, (8,))
    zq, zp = torch.randn(5, 3), torch.randn(9, 3)
    bce = nn.functional.binary_cross_entropy_with_logits
    expected = 0.5 * (bce(disc(zq), torch.ones(5)) + bce(disc(zp), torch.zeros(9)))
    torch.testing.assert_close(disc.ratio_loss(zq, zp), expected)
    with pytest.raises(ValueError, match="last dimension in_dim=3"):
        disc(torch.zeros(4, 2))


# ----------------------------------------------------------------------------- the implicit prior

class ExactRatio(Discriminator):
    """T(z) = log N(z; m, v) - log N(z; 0, I) (+ offset): the optimal discriminator for q(z) = N(m, v)."""

    def __init__(self, m, lv, offset=0.0):
        super().__init__(len(m), (1,))
        self.m, self.lv, self.offset = m, lv, offset

    def forward(self, z):
        return gaussian_log_prob(z, self.m.expand_as(z), self.lv.expand_as(z)) - standard_normal_log_prob(z) + self.offset


def test_prior_kl_identity_has_a_minus_sign(gen):
    """KL(q(z|x) || q(z)) = KL(q(z|x) || N(0, I)) - E_q(z|x)[log q(z)/N(z; 0, I)], on Gaussians."""
    a, s = torch.tensor([0.7, -1.2]), torch.tensor([-1.0, 0.4])           # q(z|x) = N(a, e^s)
    m, v = torch.tensor([0.3, -0.8]), torch.tensor([0.2, 0.5])            # q(z)   = N(m, e^v)
    z = a + (0.5 * s).exp() * torch.randn(200_000, 2, generator=gen)
    ratio = gaussian_log_prob(z, m, v) - standard_normal_log_prob(z)
    exact = kl_normal_normal(a, s, m, v).item()
    mc_close(kl_normal_standard(a, s) - ratio, exact)
    # the version with "+" is wrong by twice E[log ratio], far outside the Monte-Carlo error
    assert abs((kl_normal_standard(a, s) + ratio.mean()).item() - exact) > 0.5


def _ip_model(bound_prior="standard"):
    torch.manual_seed(0)
    model = ImplicitPriorVAE(input_dim=6, latent_dim=2, hidden_dims=(16,), discriminator_hidden=(32, 32),
                             bound_prior=bound_prior)
    m, lv = torch.tensor([0.5, -0.3]), torch.tensor([-0.4, 0.2])
    return model, m, lv


def test_implicit_prior_vae_terms_with_the_exact_ratio(gen):
    """With T the exact log q(z)/N(z), kl_implicit estimates KL(q(z|x) || q(z)) and log_weights
    (prior='implicit') use log q(z) as the prior."""
    model, m, lv = _ip_model()
    model.discriminator = ExactRatio(m, lv)
    x = (torch.rand(4, 6, generator=gen) > 0.5).float()
    model.n_samples = 20_000
    out = model.loss(Batch(x), generator=gen)
    mu, logvar = model.encode(x)
    torch.testing.assert_close(out.terms["kl"], kl_normal_standard(mu, logvar))
    torch.testing.assert_close(out.terms["kl_implicit"], kl_normal_normal(mu, logvar, m.expand_as(mu), lv.expand_as(mu)),
                               atol=0.03, rtol=0)
    torch.testing.assert_close(out.elbo, out.terms["recon"] - out.terms["kl"])         # bound_prior="standard"
    torch.testing.assert_close(out.loss, -(out.terms["recon"] - out.terms["kl_implicit"]).mean())
    # log-weights with the implicit prior: log p(x|z) + log q(z) - log q(z|x) at the same samples
    lw_imp = model.log_weights(Batch(x), 5, generator=torch.Generator().manual_seed(1), prior="implicit")
    lw_std = model.log_weights(Batch(x), 5, generator=torch.Generator().manual_seed(1), prior="standard")
    z = mu + (0.5 * logvar).exp() * torch.randn((5, 4, 2), generator=torch.Generator().manual_seed(1))
    manual = model.log_likelihood(x, z) + gaussian_log_prob(z, m.expand_as(z), lv.expand_as(z)) \
        - gaussian_log_prob(z, mu, logvar)
    torch.testing.assert_close(lw_imp, manual, atol=1e-4, rtol=0)
    torch.testing.assert_close(lw_imp - lw_std, model.discriminator(z), atol=1e-4, rtol=0)


def test_bound_prior_switches_the_reported_bound(gen):
    model, m, lv = _ip_model("implicit")
    model.discriminator = ExactRatio(m, lv)
    x = (torch.rand(4, 6, generator=gen) > 0.5).float()
    out = model.loss(Batch(x), generator=gen)
    torch.testing.assert_close(out.elbo, out.terms["recon"] - out.terms["kl_implicit"])
    with pytest.raises(ValueError, match="prior must be one of"):
        ImplicitPriorVAE(6, 2, bound_prior="learned")


def test_log_prior_normaliser_measures_how_unnormalised_t_is(gen):
    model, m, lv = _ip_model()
    model.discriminator = ExactRatio(m, lv)
    assert abs(model.log_prior_normaliser(200_000, generator=gen).item()) < 0.02     # exact ratio: normalised
    model.discriminator = ExactRatio(m, lv, offset=0.7)
    assert model.log_prior_normaliser(200_000, generator=gen).item() == pytest.approx(0.7, abs=0.02)


def test_implicit_prior_sampling_resamples_towards_q(gen):
    """Sampling-importance-resampling with weights e^T from N(0, I) proposals moves the codes to q(z)."""
    model, m, lv = _ip_model()
    model.discriminator = ExactRatio(m, lv)
    seen = []
    model.decode_mean = lambda z: seen.append(z) or torch.zeros(len(z), 6)
    model.sample(4000, generator=gen, prior="implicit", n_candidates=64)
    z = seen[0]
    assert ((z.mean(0) - m).abs() < 0.06).all()
    assert ((z.var(0) - lv.exp()).abs() < 0.12).all()


def test_implicit_prior_discriminator_learns_the_aggregate_posterior_ratio(gen):
    """The model's own discriminator loss (codes label 1, N(0, I) label 0) gives logit = + log q/N."""
    model, m, lv = _ip_model()

    def loss():
        z = m + (0.5 * lv).exp() * torch.randn(256, 2, generator=gen)
        return model.prior_discriminator_loss(z, generator=gen)

    _train(loss, model.parameter_groups()["discriminator"]["params"])
    z = m + (0.5 * lv).exp() * torch.randn(4000, 2, generator=gen)
    true = gaussian_log_prob(z, m, lv) - standard_normal_log_prob(z)
    with torch.no_grad():
        err = model.log_ratio(z) - true
    assert err.abs().median() < 0.1
    # E_q T = KL(q(z) || N(0, I)) > 0: the sign is +log ratio
    assert model.log_ratio(z).mean().item() == pytest.approx(kl_normal_standard(m, lv).item(), abs=0.1)


def test_discriminator_groups_are_disjoint_and_its_loss_reaches_only_the_discriminator(gen):
    for name in ("ImplicitPriorVAE", "FactorVAE"):
        torch.manual_seed(0)
        model = MODELS[name](input_dim=6, latent_dim=2, hidden_dims=(16,))
        groups = model.parameter_groups()
        model_ids = {id(p) for p in groups["model"]}
        disc = groups["discriminator"]["params"]
        assert not model_ids & {id(p) for p in disc}
        assert len(model_ids) + len(disc) == len(list(model.parameters()))
        out = model.loss(Batch((torch.rand(8, 6, generator=gen) > 0.5).float()), generator=gen)
        everything = list(model.parameters())
        grads = torch.autograd.grad(out.discriminator_loss, everything, allow_unused=True)
        for p, g in zip(everything, grads):
            if id(p) in model_ids:
                assert g is None or not g.any()
        assert any(g is not None and g.any() for g in grads[-len(disc):])


# ----------------------------------------------------------------------------- FactorVAE

def test_factor_vae_discriminator_logit_is_plus_the_log_ratio_and_estimates_tc(gen):
    """Codes from a correlated Gaussian: D(z) -> log q(z)/(q(z_1) q(z_2)), and E_q D = TC = -log(1-rho^2)/2."""
    rho = 0.8
    torch.manual_seed(0)
    model = FactorVAE(input_dim=6, latent_dim=2, hidden_dims=(16,), discriminator_hidden=(32, 32))
    _train(lambda: model.tc_discriminator_loss(_correlated(512, rho, gen), generator=gen),
           model.parameter_groups()["discriminator"]["params"])
    z = _correlated(4000, rho, gen)
    true = _log_ratio_correlated(z, rho)
    with torch.no_grad():
        logits = model.tc_logits(z)
    assert (logits - true).abs().median() < 0.15
    tc = -0.5 * math.log(1 - rho ** 2)                      # 0.51 nats
    assert logits.mean().item() == pytest.approx(tc, abs=0.1)
    # on independent codes (the permuted ones) the logit is below 0 on average: -KL(prod q_j || q)
    assert model.tc_logits(permute_dims(z, generator=gen)).mean() < 0


def test_factor_vae_loss_adds_gamma_times_tc_through_the_encoder(gen):
    x = (torch.rand(8, 6, generator=gen) > 0.5).float()
    torch.manual_seed(0)
    a = FactorVAE(input_dim=6, latent_dim=2, hidden_dims=(16,), gamma=0.0)
    b = FactorVAE(input_dim=6, latent_dim=2, hidden_dims=(16,), gamma=5.0)
    b.load_state_dict(a.state_dict())
    oa = a.loss(Batch(x), generator=torch.Generator().manual_seed(0))
    ob = b.loss(Batch(x), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(oa.elbo, ob.elbo)                         # the bound ignores gamma
    torch.testing.assert_close(ob.loss - oa.loss, 5.0 * ob.terms["tc"].mean())
    torch.testing.assert_close(ob.elbo, ob.terms["recon"] - ob.terms["kl"])
    # the TC penalty reaches the encoder through the non-detached z
    ga = torch.autograd.grad(oa.loss, list(a.encoder.parameters()))
    gb = torch.autograd.grad(ob.loss, list(b.encoder.parameters()))
    assert any(not torch.allclose(u, v) for u, v in zip(ga, gb))


def test_factor_vae_constructor_checks_and_groups():
    m = FactorVAE(6, 2, gamma=3, discriminator_lr=1e-4)
    g = m.parameter_groups()["discriminator"]
    assert g["lr"] == 1e-4 and g["betas"] == (0.5, 0.9) and m.config["gamma"] == 3.0
    with pytest.raises(ValueError, match="gamma must be a finite number >= 0"):
        FactorVAE(6, 2, gamma=-1)
    with pytest.raises(ValueError, match="discriminator_betas"):
        FactorVAE(6, 2, discriminator_betas=(0.5, 1.5))
