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


def _lvae(lower=(4, 3), top=2, hidden=(16, 12, 8), seed=0, merge=None, inference=None):
    torch.manual_seed(seed)
    return LadderVAE(input_dim=D, latent_dim=top, lower_latent_dims=lower, hidden_dims=hidden, merge=merge,
                     inference=inference)


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


@pytest.mark.parametrize("inference", ["top-down", "bottom-up", "mean-field"])
def test_importance_weights_estimate_the_generative_models_log_px(gen, inference):
    """log p(x) of the three-layer generative model by brute-force ancestral sampling from the prior
    agrees with the importance-sampled estimate from log_weights: q's density is the one sampled from,
    and p(x, z) is the generative model's (for every inference order)."""
    model = _lvae(inference=inference)
    x = _binary(4, gen)
    with torch.no_grad():
        n = 400_000
        z = torch.randn(n, 2, generator=gen)
        for i in (2, 1):
            mu_p, lv_p = model.prior_params(i, z)
            z = mu_p + (0.5 * lv_p).exp() * torch.randn(mu_p.shape, generator=gen)
        log_px_prior = torch.stack([log_mean_exp(model.decoder.log_prob(xi, z)) for xi in x])
        lw = model.log_weights(Batch(x), 50_000, generator=gen)
    log_px_is = log_mean_exp(lw)
    # within 4 standard errors of the importance-sampling estimate (delta method: se of log mean w is the
    # relative se of mean w; the stochastic bottom-up proposal has heavier weights at initialisation)
    w = (lw - lw.max(0).values).exp()
    se = w.std(0) / w.mean(0) / math.sqrt(len(w))
    assert ((log_px_is - log_px_prior).abs() < 4 * se + 0.01).all(), (log_px_is, log_px_prior, se)


# ----------------------------------------------------------------------------- stochastic bottom-up inference

def test_stochastic_bottom_up_bound_by_hand(gen):
    """inference="bottom-up" is q(z1|x) q(z2|z1) q(z3|z2): each block reads the *sample* below. Rebuilt
    by hand with the same noise: the lower layers' terms are log q(z_i|z_{i-1}) - log p(z_i|z_{i+1}) at
    the samples, the top one KL(q(z3|z2) || N(0, I)) in closed form, and they sum to the model's ELBO."""
    model = _lvae(inference="bottom-up")
    assert [block[0].in_features for block in model.up] == [D, 4, 3]          # x, then the samples z1, z2
    x = _binary(7, gen)
    S = 3
    model.n_samples = S
    out = model.loss(Batch(x), generator=torch.Generator().manual_seed(3))
    noise = torch.Generator().manual_seed(3)
    gauss, zs, h = [], [], x
    for i, (block, head) in enumerate(zip(model.up, model.up_heads)):
        mu, lv = head(block(h)).chunk(2, dim=-1)
        lv = 10 * torch.tanh(lv / 10)                                           # the soft clamp
        shape = (S, *mu.shape) if i == 0 else mu.shape
        h = mu + (0.5 * lv).exp() * torch.randn(shape, generator=noise)
        gauss.append((mu, lv)); zs.append(h)
    assert zs[0].shape == (S, 7, 4) and gauss[1][0].shape == (S, 7, 3)      # q(z2|z1) differs per sample of z1
    lr1 = gaussian_log_prob(zs[0], *gauss[0]) - gaussian_log_prob(zs[0], *model.prior_params(1, zs[1]))
    lr2 = gaussian_log_prob(zs[1], *gauss[1]) - gaussian_log_prob(zs[1], *model.prior_params(2, zs[2]))
    lr3 = gaussian_log_prob(zs[2], *gauss[2]) - gaussian_log_prob(zs[2], torch.zeros(2), torch.zeros(2))
    kl3 = kl_normal_standard(*gauss[2]).mean(0)
    log_px_z1 = model.decoder.log_prob(x, zs[0])
    for name, value in (("kl1", lr1.mean(0)), ("kl2", lr2.mean(0)), ("kl3", kl3), ("recon", log_px_z1.mean(0))):
        torch.testing.assert_close(out.terms[name], value)
    torch.testing.assert_close(out.elbo, (log_px_z1 - lr1 - lr2).mean(0) - kl3)
    # the same noise gives the importance weights log p(x, z) - log q(z | x) at these samples
    lw = model.log_weights(Batch(x), S, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(lw, log_px_z1 - lr1 - lr2 - lr3)


def test_stochastic_bottom_up_mc_and_analytic_estimate_the_same_bound(gen):
    model = _lvae(inference="bottom-up")
    x = _binary(3, gen)
    model.n_samples = 20_000
    with torch.no_grad():
        model.kl_estimator = "mc"
        mc = model.loss(Batch(x), generator=gen)
        model.kl_estimator = "analytic"
        an = model.loss(Batch(x), generator=gen)
    torch.testing.assert_close(mc.terms["kl"], an.terms["kl"], atol=0.03, rtol=0.01)
    assert (an.terms["kl3"] >= 0).all()                                         # the top layer's KL is a KL
    assert (an.terms["kl"] > 0).all()                                           # and so is the total


def test_encoders_of_every_order_and_the_older_merge_switch(gen):
    x = _binary(5, gen)
    a, b = _lvae(merge=False), _lvae(inference="mean-field")
    assert a.inference == b.inference == "mean-field" and not a.merge
    torch.testing.assert_close(a.loss(Batch(x), generator=torch.Generator().manual_seed(1)).elbo,
                               b.loss(Batch(x), generator=torch.Generator().manual_seed(1)).elbo)
    assert _lvae().inference == "top-down" and _lvae().merge
    bu = _lvae(inference="bottom-up")
    with pytest.raises(RuntimeError, match="runs on samples"):
        bu.bottom_up(x)
    # encode: the top Gaussian along the means of the layers below
    h = x
    for block, head in zip(bu.up, bu.up_heads):
        mu, lv = head(block(h)).chunk(2, dim=-1)
        h = mu
    torch.testing.assert_close(bu.encode(x)[0], mu)
    post = bu.posteriors(x, n_samples=3, generator=gen)
    assert [p[0].shape for p in post] == [(5, 4), (3, 5, 3), (3, 5, 2)]
    # the config rebuilds the same model
    rebuilt = LadderVAE(**bu.config)
    rebuilt.load_state_dict(bu.state_dict())
    assert rebuilt.inference == "bottom-up"


@pytest.mark.parametrize("inference", ["top-down", "bottom-up"])
def test_active_units_per_layer(gen, inference):
    model = _lvae(inference=inference)
    x = _binary(40, gen)
    counts = model.active_units(x, n_samples=5, generator=torch.Generator().manual_seed(0))   # one batch
    post = model.posteriors(x, n_samples=5, generator=torch.Generator().manual_seed(0))     # the same draws
    means = [mu if mu.dim() == 2 else mu.mean(0) for mu, _ in post]
    assert counts == [int((m.var(0, unbiased=False) > 1e-2).sum()) for m in means]
    batched = model.active_units(x, n_samples=5, generator=torch.Generator().manual_seed(0), batch_size=16)
    assert len(batched) == 3 and all(0 <= c <= d for c, d in zip(batched, (4, 3, 2)))
    assert model.active_units(x, threshold=0.0) == [4, 3, 2]                     # every mean moves a little
    # a top layer whose head ignores its input is inactive, and so are the means it feeds
    with torch.no_grad():
        model.up_heads[2].weight.zero_()
    assert model.active_units(x, n_samples=5)[2] == 0
    with pytest.raises(ValueError, match="threshold"):
        model.active_units(x, threshold=-1)


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
    with pytest.raises(ValueError, match="inference must be one of"):
        LadderVAE(D, 2, inference="sideways")
    with pytest.raises(ValueError, match="not both"):
        LadderVAE(D, 2, merge=True, inference="top-down")
    with pytest.raises(ValueError, match="kl_estimator must be one of"):
        _lvae().kl_estimator = "nonsense"
    with pytest.raises(ValueError, match="layer i must be in 1..2"):
        _lvae().prior_params(3, torch.zeros(1, 2))
