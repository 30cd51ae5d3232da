"""The reparameterization trick: right moments, gradients, reproducibility."""
import pytest
import torch

from vae_core.estimators import reparameterize


def test_samples_have_the_right_moments(gen):
    mu = torch.tensor([1.5, -2.0, 0.0])
    logvar = torch.tensor([0.0, 1.0, -2.0])
    z = reparameterize(mu, logvar, n_samples=200_000, generator=gen)
    assert z.shape == (200_000, 3)
    n = z.shape[0]
    var = logvar.exp()
    # mean within 4 standard errors, variance within 4 standard errors of the sample variance (≈ σ² √(2/n))
    assert ((z.mean(0) - mu).abs() < 4 * (var / n).sqrt()).all()
    assert ((z.var(0) - var).abs() < 4 * var * (2 / n) ** 0.5).all()
    # uncorrelated coordinates
    c = torch.corrcoef(z.T)
    assert (c - torch.eye(3)).abs().max() < 0.02


def test_gradient_flows_to_mu_and_logvar():
    mu = torch.tensor([0.5], requires_grad=True)
    logvar = torch.tensor([0.2], requires_grad=True)
    g = torch.Generator().manual_seed(0)
    z = reparameterize(mu, logvar, n_samples=100_000, generator=g)
    # d/dmu E[z^2] = 2 mu ; d/dlogvar E[z^2] = d/dlogvar exp(logvar) = exp(logvar)
    (z ** 2).mean().backward()
    assert mu.grad.item() == pytest.approx(2 * 0.5, abs=0.03)
    assert logvar.grad.item() == pytest.approx(torch.tensor(0.2).exp().item(), abs=0.03)


def test_same_generator_seed_same_numbers():
    mu, lv = torch.zeros(4, 2), torch.zeros(4, 2)
    a = reparameterize(mu, lv, generator=torch.Generator().manual_seed(7))
    b = reparameterize(mu, lv, generator=torch.Generator().manual_seed(7))
    assert a.shape == (4, 2) and torch.equal(a, b)


def test_bad_input():
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        reparameterize(torch.zeros(2), torch.zeros(2), n_samples=0)
    with pytest.raises(ValueError, match="shapes do not match"):
        reparameterize(torch.zeros(2), torch.zeros(3))
