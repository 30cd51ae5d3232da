"""The Ladder VAE (chapter 15): the precision-weighted merge, the top-down KL, one layer = a VAE,
and importance weights that estimate the generative model's log p(x)."""
import math

import pytest
import torch

from conftest import mc_close
from vae_core import VAE
from vae_core.distributions import (gaussian_log_prob, kl_normal_normal, kl_normal_standard,
                                    precision_weighted)
from vae_core.models import MODELS, Batch, LadderVAE
from vae_core.objectives import log_mean_exp
from vae_core.widgets.export import export_mlp, mlp_forward_numpy

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- precision_weighted

def test_precision_weighted_is_the_normalised_product_on_a_grid():
    mu1, lv1, mu2, lv2 = 0.8, math.log(0.5), -1.5, math.log(2.0)
    z = torch.linspace(-12, 12, 40_001, dtype=torch.float64)
    dz = z[1] - z[0]
    t = lambda v: torch.tensor([v], dtype=torch.float64)
    log_prod = gaussian_log_prob(z[:, None], t(mu1), t(lv1)) + gaussian_log_prob(z[:, None], t(mu2), t(lv2))
    prod = log_prod.exp()
    density = prod / (prod.sum() * dz)                     # normalised numerically
    mu, lv = precision_weighted(t(mu1), t(lv1), t(mu2), t(lv2))
    closed = gaussian_log_prob(z[:, None], mu, lv).exp()
    assert (density - closed).abs().max() < 1e-8
    mean = (z * density).sum() * dz
    var = ((z - mean) ** 2 * density).sum() * dz
    assert mean.item() == pytest.approx(mu.item(), abs=1e-8)
    assert var.item() == pytest.approx(lv.exp().item(), abs=1e-8)
    # and the formula of the chapter: precisions add, the mean is precision-weighted
    p1, p2 = 1 / 0.5, 1 / 2.0
    assert lv.exp().item() == pytest.approx(1 / (p1 + p2))
    assert mu.item() == pytest.approx((mu1 * p1 + mu2 * p2) / (p1 + p2))


def test_precision_weighted_product_identity_and_variance_below_both(gen):
    """N(z; m1, v1) N(z; m2, v2) = N(m1; m2, v1 + v2) N(z; m, v) for every z (diagonal, 5 dimensions)."""
    mu1, mu2 = torch.randn(100, 5, generator=gen, dtype=torch.float64), torch.randn(100, 5, generator=gen, dtype=torch.float64)
    lv1, lv2 = 3 * torch.randn(100, 5, generator=gen, dtype=torch.float64), 3 * torch.randn(100, 5, generator=gen, dtype=torch.float64)
    z = torch.randn(100, 5, generator=gen, dtype=torch.float64)
    mu, lv = precision_weighted(mu1, lv1, mu2, lv2)
    lhs = gaussian_log_prob(z, mu1, lv1) + gaussian_log_prob(z, mu2, lv2)
    rhs = gaussian_log_prob(mu1, mu2, torch.logaddexp(lv1, lv2)) + gaussian_log_prob(z, mu, lv)
    torch.testing.assert_close(lhs, rhs)
    assert (lv < torch.minimum(lv1, lv2)).all()
    assert ((mu >= torch.minimum(mu1, mu2)) & (mu <= torch.maximum(mu1, mu2))).all()


def test_precision_weighted_is_stable_and_symmetric():
    mu, lv = precision_weighted(torch.tensor([1.0]), torch.tensor([-40.0]), torch.tensor([5.0]), torch.tensor([40.0]))
    assert torch.isfinite(mu).all() and torch.isfinite(lv).all()
    assert mu.item() == pytest.approx(1.0) and lv.item() == pytest.approx(-40.0)
    a = precision_weighted(torch.tensor([0.3]), torch.tensor([0.1]), torch.tensor([-2.0]), torch.tensor([1.3]))
    b = precision_weighted(torch.tensor([-2.0]), torch.tensor([1.3]), torch.tensor([0.3]), torch.tensor([0.1]))
    torch.testing.assert_close(a, b)
    mu, lv = precision_weighted(torch.zeros(4, 3), torch.zeros(3), torch.ones(2, 4, 3), torch.zeros(1))
    assert mu.shape == (2, 4, 3) and torch.allclose(mu, torch.full_like(mu, 0.5))
    with pytest.raises(ValueError, match="shapes do not match"):
        precision_weighted(torch.zeros(3), torch.zeros(3), torch.zeros(4), torch.zeros(4))
    with pytest.raises(TypeError, match="mu2 must be a torch.Tensor"):
        precision_weighted(torch.zeros(3), torch.zeros(3), [0.0, 0.0, 0.0], torch.zeros(3))


# ----------------------------------------------------------------------------- the Ladder VAE

D = 6


def _binary(n, gen):
    return (torch.rand(n, D, generator=gen) > 0.5).float()


def _lvae(lower=(4, 3), top=2, hidden=(16, 12, 8), seed=0, merge=True):
    torch.manual_seed(seed)
    return LadderVAE(input_dim=D, latent_dim=top, lower_latent_dims=lower, hidden_dims=hidden, merge=merge)


def test_one_layer_ladder_is_exactly_a_vae(gen):
    torch.manual_seed(0)
    vae = VAE(D, 3, hidden_dims=(16,))
    lvae = LadderVAE(D, 3, lower_latent_dims=(), hidden_dims=(16,))
    # the same networks: the bottom-up block + head is the encoder, the decoder is the decoder
    lvae.up[0][0].load_state_dict(vae.encoder.net[0].state_dict())
    lvae.up_heads[0].load_state_dict(vae.encoder.net[2].state_dict())
    lvae.decoder.load_state_dict(vae.decoder.state_dict())
    x = _binary(10, gen)
    for kl in ("analytic", "mc"):
        for m in (vae, lvae):
            m.kl_estimator, m.n_samples, m.beta = kl, 3, 0.7
        a = vae.loss(Batch(x), generator=torch.Generator().manual_seed(5))
        b = lvae.loss(Batch(x), generator=torch.Generator().manual_seed(5))
        torch.testing.assert_close(a.loss, b.loss)
        torch.testing.assert_close(a.elbo, b.elbo)
        for term in ("recon", "kl"):
            torch.testing.assert_close(a.terms[term], b.terms[term])
        torch.testing.assert_close(b.terms["kl1"], b.terms["kl"])
    torch.testing.assert_close(vae.log_weights(Batch(x), 4, generator=torch.Generator().manual_seed(2)),
                               lvae.log_weights(Batch(x), 4, generator=torch.Generator().manual_seed(2)))


def _merge(model, up, mu_p, lv_p):
    if model.merge:
        return precision_weighted(up[0], up[1], mu_p, lv_p)
    return up[0].expand_as(mu_p), up[1].expand_as(lv_p)


@pytest.mark.parametrize("merge", [True, False])
def test_every_layers_kl_is_against_the_top_down_prior(gen, merge):
    """Rebuild the bound by hand from the pieces (same noise): top layer against N(0, I), every lower
    layer against p(z_i | z_{i+1}) at the sampled z_{i+1}, never against the bottom-up Gaussian.
    With merge=False the posteriors are the bottom-up Gaussians alone (a bottom-up hierarchical VAE)."""
    model = _lvae(merge=merge)
    x = _binary(7, gen)
    S = 2
    model.n_samples = S
    out = model.loss(Batch(x), generator=torch.Generator().manual_seed(3))
    noise = torch.Generator().manual_seed(3)
    ups = model.bottom_up(x)
    mu_q, lv_q = ups[2]
    z3 = mu_q + (0.5 * lv_q).exp() * torch.randn((S, 7, 2), generator=noise)
    kl3 = kl_normal_standard(mu_q, lv_q)
    mu_p, lv_p = model.prior_params(2, z3)
    mu_q, lv_q = _merge(model, ups[1], mu_p, lv_p)
    z2 = mu_q + (0.5 * lv_q).exp() * torch.randn((S, 7, 3), generator=noise)
    kl2 = kl_normal_normal(mu_q, lv_q, mu_p, lv_p).mean(0)
    mu_p, lv_p = model.prior_params(1, z2)
    mu_q, lv_q = _merge(model, ups[0], mu_p, lv_p)
    z1 = mu_q + (0.5 * lv_q).exp() * torch.randn((S, 7, 4), generator=noise)
    kl1 = kl_normal_normal(mu_q, lv_q, mu_p, lv_p).mean(0)
    recon = model.decoder.log_prob(x, z1).mean(0)
    for name, value in (("kl1", kl1), ("kl2", kl2), ("kl3", kl3), ("recon", recon)):
        torch.testing.assert_close(out.terms[name], value)
    torch.testing.assert_close(out.elbo, recon - kl1 - kl2 - kl3)
    # a KL against the bottom-up Gaussian instead is a different number (zero, without merging)
    wrong = kl_normal_normal(mu_q, lv_q, ups[0][0].expand_as(mu_q), ups[0][1].expand_as(lv_q)).mean(0)
    assert (wrong - kl1).abs().max() > 1e-2


def test_per_layer_kl_is_nonnegative_in_expectation_and_mc_agrees_with_analytic(gen):
    model = _lvae()
    x = _binary(3, gen)
    model.n_samples = 20_000
    model.kl_estimator = "mc"
    mc = model.loss(Batch(x), generator=gen)
    model.kl_estimator = "analytic"
    an = model.loss(Batch(x), generator=gen)
    for i in (1, 2, 3):
        assert (an.terms[f"kl{i}"] >= 0).all()
        assert (mc.terms[f"kl{i}"] > -0.02).all()
        torch.testing.assert_close(mc.terms[f"kl{i}"], an.terms[f"kl{i}"], atol=0.03, rtol=0.02)
    # single-draw MC KLs of the bottom layer (independent top-down draws) average to the analytic
    # value, itself averaged over many draws of the layers above (within 4 standard errors)
    bottom = model.top_down(x[:1], 20_000, gen)[0]
    mc_close(bottom.log_ratio()[:, 0], an.terms["kl1"][0].item())


@pytest.mark.parametrize("merge", [True, False])
def test_importance_weights_estimate_the_generative_models_log_px(gen, merge):
    """log p(x) of the three-layer generative model by brute-force ancestral sampling from the prior
    agrees with the importance-sampled estimate from log_weights: q's density is the one sampled from,
    and p(x, z) is the generative model's."""
    model = _lvae(merge=merge)
    x = _binary(4, gen)
    with torch.no_grad():
        n = 400_000
        z = torch.randn(n, 2, generator=gen)
        for i in (2, 1):
            mu_p, lv_p = model.prior_params(i, z)
            z = mu_p + (0.5 * lv_p).exp() * torch.randn(mu_p.shape, generator=gen)
        log_px_prior = torch.stack([log_mean_exp(model.decoder.log_prob(xi, z)) for xi in x])
        log_px_is = log_mean_exp(model.log_weights(Batch(x), 20_000, generator=gen))
    torch.testing.assert_close(log_px_is, log_px_prior, atol=0.02, rtol=0)


def test_log_px_is_at_least_the_elbo(gen):
    model = _lvae()
    x = _binary(6, gen)
    model.n_samples = 5000
    with torch.no_grad():
        elbo = model.loss(Batch(x), generator=gen).elbo
        log_px = log_mean_exp(model.log_weights(Batch(x), 5000, generator=gen))
    assert (log_px >= elbo - 0.01).all()
    assert (log_px - elbo).mean() > 0.01                  # a real gap on an untrained model


def test_warm_up_beta_scales_the_kl_of_every_layer_but_not_the_bound(gen):
    model = _lvae()
    x = _binary(5, gen)
    model.beta = 0.25
    out = model.loss(Batch(x), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.loss, -(out.terms["recon"] - 0.25 * out.terms["kl"]).mean())
    torch.testing.assert_close(out.elbo, out.terms["recon"] - out.terms["kl"])
    torch.testing.assert_close(out.terms["kl"], out.terms["kl1"] + out.terms["kl2"] + out.terms["kl3"])
    assert set(LadderVAE.settings) == {"beta", "n_samples", "kl_estimator"}


def test_mean_decoder_exports_the_top_down_mean_path(gen):
    model = _lvae()
    z = torch.randn(5, 2, generator=gen)
    net, output = model.mean_decoder()
    assert output == "sigmoid"
    with torch.no_grad():
        torch.testing.assert_close(torch.sigmoid(net(z)), model.decode_top(z))
        spec = export_mlp(net)
        torch.testing.assert_close(torch.sigmoid(torch.as_tensor(mlp_forward_numpy(spec, z.numpy()))).float(),
                                   model.decode_top(z), atol=1e-5, rtol=0)
    s = model.sample(4, generator=gen)
    assert s.shape == (4, D) and ((s >= 0) & (s <= 1)).all()
    g = LadderVAE(D, 2, likelihood="gaussian", lower_latent_dims=(3,), hidden_dims=8)
    net, output = g.mean_decoder()
    assert output == "identity"
    torch.testing.assert_close(net(z), g.decode_top(z))


def test_posteriors_per_layer(gen):
    model = _lvae()
    x = _binary(5, gen)
    post = model.posteriors(x, n_samples=3, generator=gen)
    assert [p[0].shape for p in post] == [(3, 5, 4), (3, 5, 3), (5, 2)]
    torch.testing.assert_close(post[-1][0], model.encode(x)[0])


def test_ladder_constructor_checks():
    m = MODELS["LadderVAE"](input_dim=D, latent_dim=2)
    assert m.n_layers == 2 and m.config["lower_latent_dims"] == [32] and m.config["hidden_dims"] == [256]
    assert [block[0].out_features for block in m.up] == [256, 256]          # one width for every layer
    with pytest.raises(TypeError, match=r"write \(8,\)"):
        LadderVAE(D, 2, lower_latent_dims=8)
    with pytest.raises(ValueError, match="one width per latent layer"):
        LadderVAE(D, 2, lower_latent_dims=(4, 3), hidden_dims=(8, 8))
    with pytest.raises(ValueError, match="each lower latent dimension must be a positive int"):
        LadderVAE(D, 2, lower_latent_dims=(4, 0))
    with pytest.raises(TypeError, match="merge must be True"):
        LadderVAE(D, 2, merge="no")
    with pytest.raises(ValueError, match="kl_estimator must be one of"):
        _lvae().kl_estimator = "nonsense"
    with pytest.raises(ValueError, match="layer i must be in 1..2"):
        _lvae().prior_params(3, torch.zeros(1, 2))
