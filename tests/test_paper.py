"""vae_core.paper: the Kingma & Welling experiments (Fig. 2 curves, the weight prior, gradient moments)."""
import json
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vae_core import VAE, paper, plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_log_checkpoints_are_log_spaced_batch_multiples_ending_at_total():
    cps = paper.log_checkpoints(10 ** 6, n_points=7, batch_size=100, start=10 ** 3)
    assert cps[0] == 1000 and cps[-1] == 10 ** 6 and all(c % 100 == 0 for c in cps)
    ratios = np.diff(np.log10(cps))
    np.testing.assert_allclose(ratios, 0.5, atol=0.02)
    assert paper.log_checkpoints(250, 3, 100) == [100, 200, 300]
    assert paper.prior_weight_decay(60000) == pytest.approx(1 / 60000)


def test_weight_decay_of_the_prior_equals_the_gradient_of_log_p_theta_over_n():
    # eq. (8) with a N(0, I) prior on theta, divided by N: grad = mean ELBO grad - theta / N
    torch.manual_seed(0)
    model = VAE(5, 2, (4,))
    x = torch.rand(8, 5)
    n_train = 40
    g = torch.Generator().manual_seed(0)
    obj = model.elbo(x, generator=g).elbo.mean()
    obj = obj - sum((p ** 2).sum() for p in model.parameters()) / (2 * n_train)
    grads = torch.autograd.grad(-obj, list(model.parameters()))
    opt = paper.make_optimizer(model.parameters(), "adagrad", lr=1.0,
                                     weight_decay=paper.prior_weight_decay(n_train))
    model.zero_grad()
    (-model.elbo(x, generator=torch.Generator().manual_seed(0)).elbo.mean()).backward()
    before = [p.detach().clone() for p in model.parameters()]
    opt.step()
    # the first Adagrad step is -lr * g / |g| coordinate-wise: its sign reveals g, decay included
    for p, b, gr in zip(model.parameters(), before, grads):
        moved = (b - p.detach())
        mask = gr.abs() > 1e-6
        assert torch.equal(torch.sign(moved[mask]), torch.sign(gr[mask]))


def test_train_curve_records_the_bound_at_the_checkpoints_and_is_reproducible(one_thread):
    x = torch.rand(300, 12).bernoulli(generator=torch.Generator().manual_seed(0))
    xt = torch.rand(100, 12).bernoulli(generator=torch.Generator().manual_seed(1))

    def run():
        torch.manual_seed(0)
        m = VAE(12, 2, (16,))
        return m, paper.train_curve(m, x, xt, 1200, [100, 600, 1200], batch_size=50, lr=0.05,
                                          n_eval=100, seed=3)
    m, a = run()
    _, b = run()
    assert a["samples"] == [100, 600, 1200]
    assert a == {**b, "seconds": a["seconds"]}
    assert all(math.isfinite(v) for v in a["train_elbo"] + a["test_elbo"])
    assert a["test_elbo"][-1] > a["test_elbo"][0]  # it learns
    # the recorded value is the mean single-sample ELBO with the fixed evaluation noise
    g = torch.Generator().manual_seed(6)
    with torch.no_grad():
        m.eval()
        expected = m.elbo(xt, generator=g).elbo.mean().item()
    assert a["test_elbo"][-1] == pytest.approx(expected, abs=1e-4)


def test_lower_bound_curves_result_is_json_and_plots_one_panel_per_latent_size(tmp_path):
    x = torch.rand(200, 9).round()
    result = paper.lower_bound_curves(x, x[:50], latent_dims=(1, 3), hidden=8, total_samples=400,
                                            n_points=3, batch_size=50, n_eval=50, start=100)
    assert result["config"]["checkpoints"] == [100, 200, 400]
    path = paper.save_result(result, tmp_path / "r.json")
    back = paper.load_result(path)
    assert back == json.loads(json.dumps(result))
    assert list(back["curves"]) == ["1", "3"] and back["config"]["checkpoints"][-1] == 400
    assert back["curves"]["3"]["parameters"] == sum(p.numel() for p in VAE(9, 3, (8,)).parameters())
    axes = plots.plot_lower_bound_curves(back)
    assert len(axes) == 2 and axes[0].get_xscale() == "log"
    assert axes[0].get_xlabel() == "training samples evaluated" and "nats" in axes[0].get_ylabel()
    assert axes[1].get_title() == "$N_z = 3$"
    np.testing.assert_array_equal(axes[1].get_lines()[1].get_ydata(), back["curves"]["3"]["test_elbo"])
    # automatic limits ignore the first decade of samples when choosing the lower end
    fake = {"curves": {"2": {"latent_dim": 2, "samples": [10, 100, 1000], "train_elbo": [-900.0, -150.0, -120.0],
                             "test_elbo": [-950.0, -160.0, -125.0]}}}
    (ax,) = plots.plot_lower_bound_curves(fake)
    lo, hi = ax.get_ylim()
    assert -160.0 - 2.5 <= lo < -160.0 and -120.0 < hi <= -120.0 + 2.5
    (ax,) = plots.plot_lower_bound_curves(fake, ylim=None)
    assert ax.get_ylim()[0] < -900
    with pytest.raises(FileNotFoundError, match="paper_fig2"):
        paper.load_result(tmp_path / "missing.json")


def test_gradient_estimators_a_and_b_are_unbiased_for_the_same_gradient(one_thread):
    torch.manual_seed(0)
    model = VAE(10, 3, (16,))
    x = torch.rand(4, 10).round()
    a = paper.gradient_moments(model, x, kl="mc", repeats=1500, generator=torch.Generator().manual_seed(1))
    b = paper.gradient_moments(model, x, kl="analytic", repeats=1000,
                                     generator=torch.Generator().manual_seed(2))
    se = (a.standard_error ** 2 + b.standard_error ** 2).sqrt()
    z = (a.mean - b.mean) / se.clamp_min(1e-12)
    assert z.abs().max() < 5.0, z.abs().max()
    # and the analytic KL lowers the variance of the encoder's gradient
    assert b.total_variance < a.total_variance


def test_gradient_variance_falls_as_one_over_l(one_thread):
    torch.manual_seed(0)
    model = VAE(10, 3, (16,))
    x = torch.rand(4, 10).round()
    v1 = paper.gradient_moments(model, x, n_samples=1, repeats=1000,
                                      generator=torch.Generator().manual_seed(3)).total_variance
    v8 = paper.gradient_moments(model, x, n_samples=8, repeats=1000,
                                      generator=torch.Generator().manual_seed(4)).total_variance
    assert v8 / v1 == pytest.approx(1 / 8, rel=0.2)


def test_decoder_gradient_is_the_same_for_both_estimators_with_the_same_noise():
    torch.manual_seed(0)
    model = VAE(10, 3, (16,))
    x = torch.rand(4, 10).round()
    dec = list(model.decoder.parameters())
    a = paper.gradient_moments(model, x, "mc", repeats=2, parameters=dec, generator=torch.Generator().manual_seed(0))
    b = paper.gradient_moments(model, x, "analytic", repeats=2, parameters=dec,
                                     generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a.mean, b.mean)


def test_make_optimizer_names_the_choices():
    with pytest.raises(ValueError, match="adagrad"):
        paper.make_optimizer([torch.zeros(1, requires_grad=True)], "sgd")
    with pytest.raises(ValueError, match="repeats"):
        paper.gradient_moments(VAE(4, 2, (3,)), torch.rand(2, 4), repeats=1)
