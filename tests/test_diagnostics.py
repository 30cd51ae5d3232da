"""Diagnostics: warm-up schedules, the free-bits objective, collapse measurements (numbers, not shapes)."""

import pytest
import torch

from conftest import mc_close
from linear_gaussian import make
from vae_core import VAE, fit, load_checkpoint, save_checkpoint
from vae_core.data import EpochParts
from vae_core.diagnostics import (CollapseReport, collapse_report, decoder_sensitivity, log_marginal_vs_k,
                                  reconstruction_variance_ratio, reports_table)
from vae_core.distributions import kl_normal_standard_per_dim as kl_per_example_dimension
from vae_core.models import FreeBitsVAE
from vae_core.objectives import free_bits_kl
from vae_core.schedules import linear_warmup
from vae_core.distributions import kl_normal_standard
from vae_core.evaluate import active_units, kl_per_dimension, log_marginal


pytestmark = pytest.mark.usefixtures("one_thread")   # see conftest.py


# -- KL warm-up ------------------------------------------------------------------------------------

def test_linear_warmup_values():
    assert linear_warmup(2).values(4) == [0.0, 0.5, 1.0, 1.0]
    assert linear_warmup(1).values(3) == [0.0, 1.0, 1.0]
    s = linear_warmup(4, start=0.2, end=10.0)
    assert s.values(6) == pytest.approx([0.2, 2.65, 5.1, 7.55, 10.0, 10.0])
    assert s(1000) == 10.0
    # monotone, never above the end value
    v = linear_warmup(7).values(20)
    assert all(a <= b for a, b in zip(v, v[1:])) and max(v) == 1.0
    assert "epochs=4" in repr(s)


@pytest.mark.parametrize("args, err, match", [
    ((0,), ValueError, "epochs must be a positive int"),
    ((2.5,), TypeError, "epochs must be a positive int"),
    ((2, -1.0), ValueError, "start must be a finite number >= 0"),
    ((2, 0.0, float("inf")), ValueError, "end must be a finite number >= 0"),
    ((2, 0.0, "big"), TypeError, "end must be a number"),
])
def test_linear_warmup_rejects_bad_settings(args, err, match):
    with pytest.raises(err, match=match):
        linear_warmup(*args)


def test_linear_warmup_rejects_bad_epochs():
    s = linear_warmup(3)
    with pytest.raises(ValueError, match="counted from 1"):
        s(0)
    with pytest.raises(TypeError, match="epoch must be an int"):
        s(1.5)


class _RecordingVAE(VAE):
    """Records the beta that fit() has set at each training step."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.betas = []

    def loss(self, batch, generator=None):
        if self.training:
            self.betas.append(self.beta)
        return super().loss(batch, generator)


def test_fit_follows_the_warmup_schedule():
    torch.manual_seed(0)
    model = _RecordingVAE(6, 2, (8,))
    x = torch.rand(40, 6)
    fit(model, x, epochs=4, batch_size=20, progress=False, beta=linear_warmup(2, end=3.0))
    assert model.betas == [0.0, 0.0, 1.5, 1.5, 3.0, 3.0, 3.0, 3.0]  # two batches per epoch


def test_epoch_parts_cover_each_pass_exactly_once():
    x = torch.arange(10.0).view(10, 1).repeat(1, 3)
    parts = EpochParts(x, 3)
    assert len(parts) == 4 and parts.input_dim == 3
    g = torch.Generator().manual_seed(0)
    for _ in range(2):  # two passes, each a fresh permutation split in 3 parts
        chunks = [parts.epoch_data(g) for _ in range(3)]
        assert [len(c) for c in chunks] == [4, 3, 3]
        assert sorted(torch.cat(chunks)[:, 0].tolist()) == list(range(10))
    with pytest.raises(ValueError, match="at most the number of examples"):
        EpochParts(x, 11)
    with pytest.raises(TypeError, match="data set from vae_core.data.load"):
        EpochParts([[1.0]], 2)


def test_epoch_parts_rebinarize_once_per_pass_and_drive_fit():
    from vae_core import data
    ds = data.load("digits", "train", binarize="dynamic")
    parts = EpochParts(ds, 4)
    g = torch.Generator().manual_seed(1)
    first = torch.cat([parts.epoch_data(g) for _ in range(4)])
    second = torch.cat([parts.epoch_data(g) for _ in range(4)])
    assert set(first.unique().tolist()) <= {0.0, 1.0} and len(first) == len(ds)
    # every pass holds each image once: the per-pass pixel means match the grey levels on average
    assert abs(first.mean().item() - ds.x.mean().item()) < 0.01 and not torch.equal(first, second)
    torch.manual_seed(0)
    model = _RecordingVAE(ds.input_dim, 2, (8,))
    hist = fit(model, EpochParts(ds.x, 4), epochs=6, batch_size=500, progress=False,
               beta=linear_warmup(4))
    assert hist.examples_seen[3] == len(ds) and hist.examples_seen[-1] == len(ds) + 360 + 359
    assert sorted(set(model.betas)) == [0.0, 0.25, 0.5, 0.75, 1.0]


# -- free bits ------------------------------------------------------------------------------------

def test_kl_per_example_dimension_closed_form_and_monte_carlo(gen):
    mu = torch.tensor([[0.3, -1.2, 0.0]])
    logvar = torch.tensor([[-0.5, 0.4, 0.0]])
    exact = kl_per_example_dimension(mu, logvar)
    torch.testing.assert_close(exact.sum(-1), kl_normal_standard(mu, logvar))
    assert exact[0, 2] == 0  # q = p in that dimension
    # the Monte-Carlo form averages single-sample terms that are unbiased for each dimension
    z = mu + torch.exp(0.5 * logvar) * torch.randn(20000, 1, 3, generator=gen)
    terms = 0.5 * (z ** 2 - (z - mu) ** 2 / logvar.exp() - logvar)  # (L, 1, 3)
    for j in range(3):
        mc_close(terms[:, 0, j], exact[0, j].item())
    torch.testing.assert_close(kl_per_example_dimension(mu, logvar, z), terms.mean(0))
    # and its sum over dimensions is the objectives module's "mc" KL (log q - log p)
    from vae_core.distributions import gaussian_log_prob, standard_normal_log_prob
    mc = (gaussian_log_prob(z, mu, logvar) - standard_normal_log_prob(z)).mean(0)
    torch.testing.assert_close(kl_per_example_dimension(mu, logvar, z).sum(-1), mc, rtol=1e-4, atol=1e-5)


def test_free_bits_equals_the_kl_when_every_dimension_is_above_the_floor():
    g = torch.Generator().manual_seed(0)
    kl = 0.6 + torch.rand(50, 4, generator=g)  # every per-dimension mean is > 0.6
    torch.testing.assert_close(free_bits_kl(kl, 0.5), kl.sum(-1))
    torch.testing.assert_close(free_bits_kl(kl, 0.0), kl.sum(-1))


def test_free_bits_clamps_each_dimension_separately():
    kl = torch.tensor([[0.1, 2.0, 0.0, 0.40],
                       [0.3, 1.0, 0.2, 0.70]])   # column means 0.2, 1.5, 0.1, 0.55
    lam = 0.5
    fb = free_bits_kl(kl, lam)
    # dims 0 and 2 are below the floor and count lam each; dims 1 and 3 keep their own KL
    torch.testing.assert_close(fb, torch.tensor([0.5 + 2.0 + 0.5 + 0.40, 0.5 + 1.0 + 0.5 + 0.70]))
    # the batch mean is sum_j max(lam, mean_i KL_ij)
    torch.testing.assert_close(fb.mean(), torch.clamp(kl.mean(0), min=lam).sum())
    # no gradient reaches the clamped dimensions; the others get d/dKL = 1/B per example
    kl = kl.clone().requires_grad_(True)
    free_bits_kl(kl, lam).mean().backward()
    torch.testing.assert_close(kl.grad, torch.tensor([[0.0, 0.5, 0.0, 0.5], [0.0, 0.5, 0.0, 0.5]]))


def test_free_bits_rejects_bad_input():
    with pytest.raises(ValueError, match=r"shape \(B, d\)"):
        free_bits_kl(torch.ones(2, 3, 4), 0.1)
    with pytest.raises(ValueError, match="free_bits must be a finite number >= 0"):
        free_bits_kl(torch.ones(2, 3), -0.1)
    with pytest.raises(TypeError, match="torch.Tensor"):
        free_bits_kl([[1.0]], 0.1)


def _pair(free_bits, seed=0):
    torch.manual_seed(seed)
    plain = VAE(10, 3, (16,))
    fb = FreeBitsVAE(10, 3, (16,), free_bits=free_bits)
    fb.load_state_dict(plain.state_dict())
    return plain, fb


@pytest.mark.parametrize("kl_mode", ["analytic", "mc"])
def test_free_bits_vae_equals_the_vae_below_every_kl(kl_mode):
    plain, fb = _pair(free_bits=1e-6)
    x = torch.rand(64, 10)
    a = plain.elbo(x, n_samples=3, beta=2.0, kl=kl_mode, generator=torch.Generator().manual_seed(5))
    b = fb.elbo(x, n_samples=3, beta=2.0, kl=kl_mode, generator=torch.Generator().manual_seed(5))
    assert (kl_per_dimension(fb, x) > 1e-6).all()
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v)


def test_free_bits_vae_objective_is_clamped_per_dimension():
    plain, fb = _pair(free_bits=0.05)
    with torch.no_grad():  # dimension 1 ignores x and matches the prior: its KL is exactly 0
        for m in (plain, fb):
            m.encoder.net[-1].weight[[1, 4]] = 0.0
            m.encoder.net[-1].bias[[1, 4]] = 0.0
            m.encoder.net[-1].weight[[0, 3]] *= 3.0  # dimension 0 is far above the floor
    x = torch.rand(64, 10)
    kl_dims = kl_per_dimension(fb, x)
    assert kl_dims[1] < 1e-6 and kl_dims[0] > 0.05
    t = fb.elbo(x, beta=2.0, generator=torch.Generator().manual_seed(1))            # training mode
    ref = plain.elbo(x, beta=2.0, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(t.recon, ref.recon)
    torch.testing.assert_close(t.kl, ref.kl)                                        # the true KL
    expected = ref.recon.mean() - 2.0 * torch.clamp(kl_dims, min=0.05).sum()
    torch.testing.assert_close(t.elbo.mean(), expected)
    # eval mode (and free_bits=False) give the plain ELBO; free_bits=True forces the objective
    fb.eval()
    e = fb.elbo(x, beta=2.0, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(e.elbo, ref.elbo)
    f = fb.elbo(x, beta=2.0, generator=torch.Generator().manual_seed(1), free_bits=True)
    torch.testing.assert_close(f.elbo, t.elbo)


def test_free_bits_vae_config_and_checkpoint(tmp_path):
    _, fb = _pair(free_bits=0.25)
    assert fb.config["free_bits"] == 0.25
    save_checkpoint(fb, tmp_path / "ck")
    loaded, _ = load_checkpoint(tmp_path / "ck")
    assert isinstance(loaded, FreeBitsVAE) and loaded.free_bits == 0.25
    x = torch.rand(5, 10)
    torch.testing.assert_close(loaded.encode(x), fb.encode(x))
    with pytest.raises(ValueError, match="free_bits must be a finite number >= 0"):
        FreeBitsVAE(10, 3, free_bits=-1.0)


# -- measurements -------------------------------------------------------------------------------

def test_log_marginal_vs_k_rises_towards_the_exact_evidence(gen):
    model, evidence = make(encoder_shift=0.6, encoder_logvar_shift=0.8)
    torch.manual_seed(0)
    x = evidence.sample((30,))
    exact = evidence.log_prob(x).mean().item()
    est = log_marginal_vs_k(model, x, [1, 10, 1000], repeats=4, generator=gen, chunk=300)
    assert set(est) == {1, 10, 1000} and all(v.shape == (4,) for v in est.values())
    means = {k: v.mean().item() for k, v in est.items()}
    assert means[1] < means[10] < means[1000] <= exact + 0.01
    assert exact - means[1000] < 0.05
    # K = 1 estimates the ELBO (analytic KL, many samples)
    elbo = model.elbo(x, n_samples=4000, generator=gen).elbo.mean().item()
    assert abs(means[1] - elbo) < 4 * est[1].std().item() / 2 + 0.05
    # repeats with the exact posterior are all exact (zero variance)
    exact_model, ev = make()
    same = log_marginal_vs_k(exact_model, x, [3], repeats=3, generator=gen)[3]
    torch.testing.assert_close(same, ev.log_prob(x).mean().expand(3), rtol=0, atol=2e-5)
    # per_example: the same numbers before averaging over the data
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    per = log_marginal_vs_k(model, x, [1, 5], repeats=2, generator=g1, per_example=True)
    avg = log_marginal_vs_k(model, x, [1, 5], repeats=2, generator=g2)
    assert per[5].shape == (2, 30)
    torch.testing.assert_close(per[5].mean(1), avg[5])
    with pytest.raises(ValueError, match="at least one"):
        log_marginal_vs_k(model, x, [])
    with pytest.raises(ValueError, match="each K must be a positive int"):
        log_marginal_vs_k(model, x, [0])


def _collapsed_copy(model):
    """The encoder ignores x and outputs the prior: a fully collapsed posterior."""
    with torch.no_grad():
        model.encoder.net[-1].weight.zero_()
        model.encoder.net[-1].bias.zero_()
    return model


def test_reconstruction_variance_ratio():
    torch.manual_seed(0)
    x = (torch.rand(200, 10) > 0.5).float()
    model = VAE(10, 3, (16,))
    assert reconstruction_variance_ratio(_collapsed_copy(model), x) == pytest.approx(0.0, abs=1e-12)
    # a hand-made model that reconstructs exactly in the large-logit limit: ratio 1
    ident = VAE(2, 2, hidden_dims=(), likelihood="gaussian")
    with torch.no_grad():
        ident.encoder.net[0].weight.zero_(); ident.encoder.net[0].bias.zero_()
        ident.encoder.net[0].weight[:2] = torch.eye(2)
        ident.decoder.net[0].weight.zero_(); ident.decoder.net[0].bias.zero_()
        ident.decoder.net[0].weight[:2] = 0.5 * torch.eye(2)
    y = torch.randn(100, 2)
    assert reconstruction_variance_ratio(ident, y) == pytest.approx(0.25, rel=1e-5)  # (1/2)^2
    with pytest.raises(ValueError, match="at least 2"):
        reconstruction_variance_ratio(model, x[:1])


def test_decoder_sensitivity_is_zero_for_ignored_dimensions():
    torch.manual_seed(0)
    model = VAE(12, 4, (16,))
    with torch.no_grad():
        model.decoder.net[0].weight[:, 2] = 0.0   # the decoder ignores z_2
    z = torch.randn(7, 4)
    s = decoder_sensitivity(model, z, low=-2.0, high=2.0)
    assert s.shape == (4,) and s[2] == 0 and (s[[0, 1, 3]] > 1e-3).all()
    # the definition, for one dimension
    lo, hi = z.clone(), z.clone()
    lo[:, 0], hi[:, 0] = -2.0, 2.0
    ref = (model.decode_mean(hi) - model.decode_mean(lo)).abs().mean()
    torch.testing.assert_close(s[0], ref)
    with pytest.raises(ValueError, match="low must be smaller"):
        decoder_sensitivity(model, z, low=1.0, high=1.0)


def test_collapse_report_numbers():
    torch.manual_seed(0)
    x = (torch.rand(300, 10) > 0.5).float()
    model = FreeBitsVAE(10, 4, (16,), free_bits=0.3)
    with torch.no_grad():
        model.encoder.net[-1].weight[[1, 5]] = 0.0   # dimension 1: mean and variance ignore x
    g = torch.Generator().manual_seed(0)
    r = collapse_report(model, x, log_px_samples=200, generator=g, batch_size=64)
    assert model.training  # the mode is restored
    assert isinstance(r, CollapseReport) and r.latent_dim == 4
    assert r.elbo == pytest.approx(r.recon - r.kl)
    assert r.kl == pytest.approx(r.kl_per_dim.sum().item(), rel=1e-4)  # analytic KL: exact
    torch.testing.assert_close(r.kl_per_dim, kl_per_dimension(model, x))
    count, var = active_units(model, x)
    assert r.active_units == count and 1 not in r.active_dims and 1 in r.inactive_dims
    assert sorted(r.active_dims + r.inactive_dims) == [0, 1, 2, 3]
    lp = log_marginal(model, x, n_samples=200, generator=torch.Generator().manual_seed(0)).mean()
    assert r.log_px > r.elbo and r.gap == pytest.approx(r.log_px - r.elbo)
    assert abs(r.log_px - lp.item()) < 0.2  # another draw of the same estimator
    row = r.row()
    assert row["active units"] == f"{count} / 4"
    # a fully collapsed model: no active units, zero KL, reconstructions all the same
    c = collapse_report(_collapsed_copy(model), x)
    assert c.active_units == 0 and c.kl == pytest.approx(0.0, abs=1e-9) and c.recon_variance_ratio < 1e-12
    assert c.log_px is None and c.gap is None
    table = reports_table({"healthy": r, "collapsed": c})
    assert table.count("\n") == 3 and "| collapsed |" in table and "0 / 4" in table
    page = reports_table({"healthy": r, "collapsed <β>": c}, fmt="html")
    assert page.count("<tr>") == 3 and "collapsed &lt;β&gt;" in page and f"{r.elbo:.1f}" in page
    with pytest.raises(ValueError, match="fmt must be"):
        reports_table({"healthy": r}, fmt="latex")
    with pytest.raises(ValueError, match="log_px_samples"):
        collapse_report(model, x, log_px_samples=-1)
    with pytest.raises(TypeError, match="CollapseReport"):
        reports_table({"x": 1})


# -- collapse on a tiny synthetic problem -----------------------------------------------------------

def _factor_data(n=800, D=24, k=3, seed=0):
    """Binary data driven by k continuous factors: x ~ Bernoulli(sigmoid(z W)), z ~ N(0, I_k)."""
    g = torch.Generator().manual_seed(seed)
    W = 3 * torch.randn(k, D, generator=g)
    return torch.bernoulli(torch.sigmoid(torch.randn(n, k, generator=g) @ W), generator=g)


def _train(beta, free_bits=0.0, epochs=8, seed=0):
    x = _factor_data()
    torch.manual_seed(seed)
    model = FreeBitsVAE(24, 6, (32,), free_bits=free_bits)
    fit(model, x[:600], epochs=epochs, batch_size=50, lr=3e-3, seed=seed, progress=False, beta=beta)
    return collapse_report(model, x[600:])


def test_heavy_kl_weight_collapses_and_free_bits_keeps_units_active():
    healthy, heavy, rescued = _train(1.0), _train(10.0), _train(10.0, free_bits=0.5)
    assert healthy.active_units >= 3 > heavy.active_units
    assert heavy.kl < 0.1 * healthy.kl and heavy.recon_variance_ratio < 0.1 < healthy.recon_variance_ratio
    assert heavy.elbo < healthy.elbo
    # free bits: every dimension keeps (about) its floor of information, the output depends on x again
    assert rescued.active_units > heavy.active_units
    assert rescued.kl > 6 * 0.5 * 0.5 and rescued.recon_variance_ratio > heavy.recon_variance_ratio + 0.1
