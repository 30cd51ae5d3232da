"""FactorVAE (chapter 14): permute_dims, the total-correlation discriminator and the loss. The maths
is checked on correlated Gaussians, where the total correlation has a closed form."""
import math

import pytest
import torch

from test_implicit_prior import train_steps
from vae_core.models import Batch, FactorVAE
from vae_core.models.factor_vae import permute_dims

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


# ----------------------------------------------------------------------------- FactorVAE

def test_factor_vae_discriminator_logit_is_plus_the_log_ratio_and_estimates_tc(gen):
    """Codes from a correlated Gaussian: D(z) -> log q(z)/(q(z_1) q(z_2)), and E_q D = TC = -log(1-rho^2)/2."""
    rho = 0.8
    torch.manual_seed(0)
    model = FactorVAE(input_dim=6, latent_dim=2, hidden_dims=(16,), discriminator_hidden=(32, 32))
    train_steps(lambda: model.tc_discriminator_loss(_correlated(512, rho, gen), generator=gen),
                model.parameter_groups()["discriminator"]["params"])
    z = _correlated(4000, rho, gen)
    true = _log_ratio_correlated(z, rho)
    with torch.no_grad():
        logits = model.discriminator(z)
    assert (logits - true).abs().median() < 0.15
    tc = -0.5 * math.log(1 - rho ** 2)                      # 0.51 nats
    assert logits.mean().item() == pytest.approx(tc, abs=0.1)
    # on independent codes (the permuted ones) the logit is below 0 on average: -KL(prod q_j || q)
    assert model.discriminator(permute_dims(z, generator=gen)).mean() < 0


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
