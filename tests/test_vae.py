"""The VAE model: the ELBO on a model with exact evidence, shapes, bounds and bad input."""
import pytest
import torch

from conftest import mc_close
from linear_gaussian import make
from vae_core import VAE


def test_elbo_equals_log_evidence_when_encoder_is_the_exact_posterior(gen):
    model, evidence = make()
    x = evidence.sample((6,))
    exact = evidence.log_prob(x)
    # With q = p(z|x) every single-sample MC-KL ELBO estimate equals log p(x) (zero variance).
    terms = model.elbo(x, n_samples=4, kl="mc", generator=gen)
    torch.testing.assert_close(terms.elbo, exact, rtol=0, atol=2e-5)
    # The analytic-KL form is unbiased for the same value.
    for i in range(3):
        samples = torch.stack([model.elbo(x[i:i + 1], kl="analytic", generator=gen).elbo[0] for _ in range(4000)])
        mc_close(samples.detach(), exact[i].item())


def test_elbo_is_below_evidence_for_a_wrong_encoder(gen):
    model, evidence = make(encoder_shift=0.8, encoder_logvar_shift=1.0)
    x = evidence.sample((5,))
    elbo = model.elbo(x, n_samples=20_000, generator=gen).elbo
    gap = evidence.log_prob(x) - elbo
    assert (gap > 0.1).all(), gap


def test_mc_and_analytic_kl_agree_in_expectation(gen):
    torch.manual_seed(0)
    model = VAE(10, 3, (16,))
    x = torch.rand(4, 10)
    a = model.elbo(x, n_samples=50_000, kl="analytic", generator=gen)
    m = model.elbo(x, n_samples=50_000, kl="mc", generator=gen)
    torch.testing.assert_close(m.kl, a.kl, rtol=0, atol=0.03)
    torch.testing.assert_close(a.elbo, a.recon - a.kl)
    beta = model.elbo(x, beta=4.0, generator=torch.Generator().manual_seed(1))
    one = model.elbo(x, beta=1.0, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(beta.elbo, one.recon - 4.0 * one.kl)


def test_shapes_and_bounded_logvar():
    torch.manual_seed(0)
    model = VAE(784, 20, (400,))
    x = torch.rand(8, 784)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (8, 20)
    assert model.decode(mu).shape == (8, 784)
    mu, logvar = model.encode(x * 1e6 if False else torch.full((2, 784), 1e4).clamp(max=1))
    _, lv = model.encoder(torch.full((2, 784), 1e6))
    assert lv.abs().max() < 10
    s = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert s.shape == (5, 784) and 0 <= s.min() and s.max() <= 1
    b = model.sample(5, mean=False, generator=torch.Generator().manual_seed(0))
    assert set(b.unique().tolist()) <= {0.0, 1.0}


def test_gaussian_mean_decoder_matches_model():
    torch.manual_seed(0)
    model = VAE(6, 2, (5,), likelihood="gaussian")
    net, output = model.mean_decoder()
    z = torch.randn(4, 2)
    assert output == "identity"
    torch.testing.assert_close(net(z), model.decode_mean(z))
    net, output = VAE(6, 2, (5,)).mean_decoder()
    assert output == "sigmoid"


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(input_dim=0, latent_dim=2), ValueError, "input_dim must be a positive int"),
    (dict(input_dim=4, latent_dim=2.5), TypeError, "latent_dim must be a positive int"),
    (dict(input_dim=4, latent_dim=2, likelihood="poisson"), ValueError, "likelihood must be one of"),
    (dict(input_dim=4, latent_dim=2, activation="gelu"), ValueError, "activation must be one of"),
    (dict(input_dim=4, latent_dim=2, hidden_dims=(8, -1)), ValueError, "hidden dimension"),
])
def test_bad_construction(kwargs, err, match):
    with pytest.raises(err, match=match):
        VAE(**kwargs)


def test_bad_input_to_elbo():
    model = VAE(4, 2, (8,))
    with pytest.raises(ValueError, match=r"shape \(batch, 4\).*x.view"):
        model.elbo(torch.rand(3, 5))
    with pytest.raises(TypeError, match="floating-point"):
        model.elbo(torch.ones(3, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.elbo(torch.full((3, 4), 3.0))
    with pytest.raises(ValueError, match="kl must be one of"):
        model.elbo(torch.rand(3, 4), kl="exact")
