"""The implicit-prior VAE (chapter 14) and the density ratio by classification it rests on: the
Discriminator, the prior-KL identity, the ImplicitPrior and the model. The maths is checked on
Gaussians, where every density ratio has a closed form."""
import math

import pytest
import torch
from torch import nn

from conftest import mc_close
from vae_core.distributions import (gaussian_log_prob, kl_normal_normal, kl_normal_standard,
                                    standard_normal_log_prob)
from vae_core.evaluate import elbo_with_prior, log_marginal_with_prior
from vae_core.models import MODELS, Batch, ImplicitPriorVAE
from vae_core.nets import Discriminator
from vae_core.priors import ImplicitPrior

pytestmark = pytest.mark.usefixtures("one_thread")


def train_steps(loss_fn, params, steps=250, lr=1e-2):
    """Adam with a cosine schedule on ``loss_fn()`` (also used by tests/test_factor_vae.py)."""
    torch.manual_seed(0)
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


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

    train_steps(loss, disc.parameters())
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


def _ip_model(exact=True):
    """The model with, if ``exact``, the exact ratio for q(z) = N(m, e^lv) as its implicit prior's T."""
    torch.manual_seed(0)
    model = ImplicitPriorVAE(input_dim=6, latent_dim=2, hidden_dims=(16,), discriminator_hidden=(32, 32))
    m, lv = torch.tensor([0.5, -0.3]), torch.tensor([-0.4, 0.2])
    if exact:
        model.implicit_prior.discriminator = ExactRatio(m, lv)
    return model, m, lv


def test_implicit_prior_vae_terms_with_the_exact_ratio(gen):
    """With T the exact log q(z)/N(z), kl_implicit estimates KL(q(z|x) || q(z)) and
    implicit_log_weights use log q(z) as the prior."""
    model, m, lv = _ip_model()
    x = (torch.rand(4, 6, generator=gen) > 0.5).float()
    model.n_samples = 20_000
    out = model.loss(Batch(x), generator=gen)
    mu, logvar = model.encode(x)
    torch.testing.assert_close(out.terms["kl"], kl_normal_standard(mu, logvar))
    torch.testing.assert_close(out.terms["kl_implicit"], kl_normal_normal(mu, logvar, m.expand_as(mu), lv.expand_as(mu)),
                               atol=0.03, rtol=0)
    torch.testing.assert_close(out.elbo, out.terms["recon"] - out.terms["kl"])         # the bound with N(0, I)
    torch.testing.assert_close(out.loss, -(out.terms["recon"] - out.terms["kl_implicit"]).mean())
    # log-weights with the implicit prior: log p(x|z) + log q(z) - log q(z|x) at the same samples
    lw_imp = model.implicit_log_weights(Batch(x), 5, generator=torch.Generator().manual_seed(1))
    lw_std = model.log_weights(Batch(x), 5, generator=torch.Generator().manual_seed(1))
    z = mu + (0.5 * logvar).exp() * torch.randn((5, 4, 2), generator=torch.Generator().manual_seed(1))
    manual = model.log_likelihood(x, z) + gaussian_log_prob(z, m.expand_as(z), lv.expand_as(z)) \
        - gaussian_log_prob(z, mu, logvar)
    torch.testing.assert_close(lw_imp, manual, atol=1e-4, rtol=0)
    torch.testing.assert_close(lw_imp - lw_std, model.implicit_prior.log_ratio(z), atol=1e-4, rtol=0)


def test_both_bounds_are_the_means_of_their_log_weights(gen):
    """With Monte-Carlo KLs and the same noise, recon - kl is the mean of log_weights (N(0, I)) and
    recon - kl_implicit the mean of implicit_log_weights (N(0, I) e^T)."""
    model, _, _ = _ip_model()
    model.kl_estimator, model.n_samples = "mc", 7
    x = (torch.rand(4, 6, generator=gen) > 0.5).float()
    out = model.loss(Batch(x), generator=torch.Generator().manual_seed(2))
    lw_std = model.log_weights(Batch(x), 7, generator=torch.Generator().manual_seed(2))
    lw_imp = model.implicit_log_weights(Batch(x), 7, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(out.elbo, lw_std.mean(0))
    torch.testing.assert_close(out.terms["recon"] - out.terms["kl_implicit"], lw_imp.mean(0))
    with pytest.raises(ValueError, match="discriminator_lr must be"):
        ImplicitPriorVAE(6, 2, discriminator_lr=0)


def test_log_normaliser_measures_how_unnormalised_t_is(gen):
    model, m, lv = _ip_model()
    assert abs(model.implicit_prior.log_normaliser(200_000, generator=gen).item()) < 0.02   # exact: normalised
    model.implicit_prior.discriminator = ExactRatio(m, lv, offset=0.7)
    assert model.implicit_prior.log_normaliser(200_000, generator=gen).item() == pytest.approx(0.7, abs=0.02)


def test_implicit_prior_sampling_resamples_towards_q(gen):
    """Sampling-importance-resampling with weights e^T from N(0, I) proposals moves the codes to q(z)."""
    model, m, lv = _ip_model()
    z = model.implicit_prior.sample(4000, generator=gen, n_candidates=64)
    assert ((z.mean(0) - m).abs() < 0.06).all()
    assert ((z.var(0) - lv.exp()).abs() < 0.12).all()


def test_implicit_prior_discriminator_learns_the_aggregate_posterior_ratio(gen):
    """The model's own discriminator loss (codes label 1, N(0, I) label 0) gives logit = + log q/N."""
    model, m, lv = _ip_model(exact=False)

    def loss():
        z = m + (0.5 * lv).exp() * torch.randn(256, 2, generator=gen)
        return model.implicit_prior.discriminator_loss(z, generator=gen)

    train_steps(loss, model.parameter_groups()["discriminator"]["params"])
    z = m + (0.5 * lv).exp() * torch.randn(4000, 2, generator=gen)
    true = gaussian_log_prob(z, m, lv) - standard_normal_log_prob(z)
    with torch.no_grad():
        err = model.implicit_prior.log_ratio(z) - true
    assert err.abs().median() < 0.1
    # E_q T = KL(q(z) || N(0, I)) > 0: the sign is +log ratio
    assert model.implicit_prior.log_ratio(z).mean().item() == pytest.approx(kl_normal_standard(m, lv).item(), abs=0.1)


@pytest.mark.parametrize("name", ["ImplicitPriorVAE", "FactorVAE"])
def test_discriminator_groups_are_disjoint_and_its_loss_reaches_only_the_discriminator(name, gen):
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


# ----------------------------------------------------------------------------- normalising the implicit prior

def test_any_t_gives_a_normalised_prior_after_dividing_by_z(gen):
    """N(z) e^T(z) / Z integrates to one for an arbitrary ("wrong") T: a 1-D quadrature check."""
    torch.manual_seed(0)
    model, m, lv = _ip_model(exact=False)           # an untrained network: T is far from any log ratio
    prior = ImplicitPrior(1, (16,))
    grid = torch.linspace(-12, 12, 200_001)[:, None]
    with torch.no_grad():
        dens = prior.log_prob(grid).double().exp()
    z_quad = torch.trapezoid(dens, grid[:, 0].double()).item()
    log_z, se = prior.estimate_log_normaliser(200_000, generator=gen)
    assert abs(log_z - math.log(z_quad)) < 4 * se + 1e-3
    with torch.no_grad():
        normalised = (prior.log_prob(grid).double() - math.log(z_quad)).exp()
    assert torch.trapezoid(normalised, grid[:, 0].double()).item() == pytest.approx(1.0, abs=1e-6)


def test_estimate_log_normaliser_with_both_proposals(gen):
    model, m, lv = _ip_model()
    prior = model.implicit_prior
    prior.discriminator = ExactRatio(m, lv, offset=0.7)                      # Z = e^0.7 exactly
    est, se = prior.estimate_log_normaliser(100_000, generator=gen)
    assert abs(est - 0.7) < 4 * se and se < 0.02
    # a mixture proposal near q(z): the weights are nearly constant, so the error is much smaller
    comp_mu = m + 0.3 * torch.randn(50, 2, generator=gen)
    comp_lv = lv.expand(50, 2) - 0.5
    est_mix, se_mix = prior.estimate_log_normaliser(100_000, generator=gen, proposal=(comp_mu, comp_lv))
    assert abs(est_mix - 0.7) < 4 * se_mix + 1e-3 and se_mix < se
    with pytest.raises(TypeError, match="proposal"):
        prior.estimate_log_normaliser(10, proposal=comp_mu)
    with pytest.raises(ValueError, match="shape"):
        prior.estimate_log_normaliser(10, proposal=(comp_mu[:, :1], comp_lv[:, :1]))


def test_elbo_and_log_marginal_with_a_swapped_prior(gen):
    """elbo_with_prior / log_marginal_with_prior with log N(0, I) are the model's own ELBO and
    importance-sampled log p(x); with the exact q(z) = N(m, e^lv) they match implicit_log_weights."""
    model, m, lv = _ip_model()
    x = (torch.rand(6, 6, generator=gen) > 0.5).float()
    e_std = elbo_with_prior(model, x, standard_normal_log_prob, 9, generator=torch.Generator().manual_seed(3))
    lw = model.log_weights(Batch(x), 9, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(e_std, lw.mean(0))
    lp = log_marginal_with_prior(model, x, lambda z: gaussian_log_prob(z, m.expand_as(z), lv.expand_as(z)), 9,
                                 generator=torch.Generator().manual_seed(4))
    lw_imp = model.implicit_log_weights(Batch(x), 9, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(lp, torch.logsumexp(lw_imp, 0) - math.log(9), atol=1e-4, rtol=0)
    with pytest.raises(TypeError, match="callable"):
        elbo_with_prior(model, x, "N(0, I)")
