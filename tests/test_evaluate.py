"""Importance-sampled log p(x) against exact evidence; latent diagnostics."""
import torch

from linear_gaussian import make
from vae_core import VAE
from vae_core.evaluate import active_units, kl_per_dimension, log_marginal


def test_log_marginal_is_exact_with_the_exact_posterior(gen):
    model, evidence = make()
    x = evidence.sample((10,))
    torch.testing.assert_close(log_marginal(model, x, n_samples=7, generator=gen), evidence.log_prob(x),
                               rtol=0, atol=2e-5)


def test_log_marginal_above_elbo_and_converges(gen):
    model, evidence = make(encoder_shift=0.6, encoder_logvar_shift=0.8)
    torch.manual_seed(0)
    x = evidence.sample((20,))
    exact = evidence.log_prob(x).mean().item()
    elbo = model.elbo(x, n_samples=5000, generator=gen).elbo.mean().item()
    est = {k: log_marginal(model, x, n_samples=k, chunk=97, generator=gen).mean().item() for k in (1, 10, 5000)}
    assert elbo < est[10] < est[5000] <= exact + 0.01
    # K = 1 is an unbiased estimate of the ELBO (averaged here over 500 draws per example)
    k1 = log_marginal(model, x.repeat(500, 1), n_samples=1, generator=gen).mean().item()
    assert abs(k1 - elbo) < 0.1
    assert exact - est[5000] < 0.05 < exact - elbo  # the bound has closed most of the gap


def test_kl_per_dimension_sums_to_the_kl_term_and_active_units():
    torch.manual_seed(0)
    model = VAE(6, 4, (8,))
    x = torch.rand(300, 6)
    per_dim = kl_per_dimension(model, x, batch_size=64)
    assert per_dim.shape == (4,) and (per_dim >= 0).all()
    torch.testing.assert_close(per_dim.sum(), model.elbo(x).kl.mean(), rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # make dimension 2 ignore x: it becomes inactive
        model.encoder.net[-1].weight[2].zero_()
    count, var = active_units(model, x)
    assert var[2] < 1e-10 and count == int((var > 0.01).sum()) and count <= 3
