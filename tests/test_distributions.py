"""Log-densities and KL divergences against torch.distributions and Monte Carlo."""
import math

import pytest
import torch
from torch.distributions import Bernoulli, Categorical, MultivariateNormal, Normal, kl_divergence

from conftest import mc_close
from vae_core import distributions as D



@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def test_gaussian_log_prob_matches_torch(gen):
    x, mu, logvar = (torch.randn(7, 5, generator=gen) for _ in range(3))
    ref = Normal(mu, torch.exp(0.5 * logvar)).log_prob(x).sum(-1)
    torch.testing.assert_close(D.gaussian_log_prob(x, mu, logvar), ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(D.standard_normal_log_prob(x), Normal(0., 1.).log_prob(x).sum(-1), rtol=0, atol=1e-10)


def test_bernoulli_log_prob_matches_torch_and_is_stable(gen):
    logits = torch.randn(6, 10, generator=gen) * 3
    x = torch.bernoulli(torch.full((6, 10), 0.4), generator=gen)
    torch.testing.assert_close(D.bernoulli_log_prob(x, logits), Bernoulli(logits=logits).log_prob(x).sum(-1))
    # extreme logits: finite, and the right limit (log 1 = 0 or a huge negative number)
    big = torch.tensor([[1e4, -1e4]])
    out = D.bernoulli_log_prob(torch.tensor([[1., 0.]]), big)
    assert torch.isfinite(out).all() and out.abs().item() < 1e-6
    assert D.bernoulli_log_prob(torch.tensor([[0., 1.]]), big).item() == pytest.approx(-2e4)


def test_bernoulli_broadcasts_over_samples(gen):
    x = torch.bernoulli(torch.full((4, 3), 0.5), generator=gen)
    logits = torch.randn(5, 4, 3, generator=gen)
    out = D.bernoulli_log_prob(x, logits)
    assert out.shape == (5, 4)
    torch.testing.assert_close(out[2], D.bernoulli_log_prob(x, logits[2]))


def test_bernoulli_rejects_pixels_outside_unit_interval():
    with pytest.raises(ValueError, match=r"pixels in \[0, 1\].*x / 255"):
        D.bernoulli_log_prob(torch.full((2, 3), 255.), torch.zeros(2, 3))


def test_kl_normal_standard_closed_form_vs_torch_and_mc(gen):
    mu = torch.tensor([[0.3, -1.2, 2.0]])
    logvar = torch.tensor([[0.5, -0.7, 0.1]])
    kl = D.kl_normal_standard(mu, logvar)
    sd = torch.exp(0.5 * logvar)
    ref = kl_divergence(Normal(mu, sd), Normal(torch.zeros_like(mu), torch.ones_like(sd))).sum(-1)
    torch.testing.assert_close(kl, ref, rtol=0, atol=1e-12)
    z = mu + sd * torch.randn(200_000, 3, generator=gen)
    samples = D.gaussian_log_prob(z, mu, logvar) - D.standard_normal_log_prob(z)
    mc_close(samples, kl.item())


def test_kl_normal_normal_vs_torch_mc_and_special_case(gen):
    mq, lq, mp, lp = (torch.randn(4, 6, generator=gen) for _ in range(4))
    kl = D.kl_normal_normal(mq, lq, mp, lp)
    ref = kl_divergence(Normal(mq, (0.5 * lq).exp()), Normal(mp, (0.5 * lp).exp())).sum(-1)
    torch.testing.assert_close(kl, ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(D.kl_normal_normal(mq, lq, torch.zeros_like(mq), torch.zeros_like(lq)),
                               D.kl_normal_standard(mq, lq), rtol=0, atol=1e-12)
    z = mq[0] + (0.5 * lq[0]).exp() * torch.randn(200_000, 6, generator=gen)
    mc_close(D.gaussian_log_prob(z, mq[0], lq[0]) - D.gaussian_log_prob(z, mp[0], lp[0]), kl[0].item())
    assert (kl >= 0).all()
    assert D.kl_normal_normal(mq, lq, mq, lq).abs().max() < 1e-12


def _spd(d, gen):
    a = torch.randn(d, d, generator=gen)
    return a @ a.T + 0.5 * torch.eye(d)


def test_kl_mvn_vs_torch_mc_and_diagonal(gen):
    d = 4
    mq, mp = torch.randn(d, generator=gen), torch.randn(d, generator=gen)
    Sq, Sp = _spd(d, gen), _spd(d, gen)
    kl = D.kl_mvn(mq, Sq, mp, Sp)
    ref = kl_divergence(MultivariateNormal(mq, Sq), MultivariateNormal(mp, Sp))
    torch.testing.assert_close(kl, ref, rtol=0, atol=1e-8)
    q, p = MultivariateNormal(mq, Sq), MultivariateNormal(mp, Sp)
    z = q.sample((200_000,))
    mc_close(q.log_prob(z) - p.log_prob(z), kl.item())
    # diagonal covariances reduce to kl_normal_normal
    lq, lp = torch.randn(d, generator=gen), torch.randn(d, generator=gen)
    torch.testing.assert_close(D.kl_mvn(mq, torch.diag(lq.exp()), mp, torch.diag(lp.exp())),
                               D.kl_normal_normal(mq, lq, mp, lp), rtol=0, atol=1e-10)
    # asymmetry
    assert abs(D.kl_mvn(mq, Sq, mp, Sp) - D.kl_mvn(mp, Sp, mq, Sq)) > 1e-3


def test_kl_mvn_batched_and_errors(gen):
    mq = torch.randn(3, 2, generator=gen)
    S = torch.stack([_spd(2, gen) for _ in range(3)])
    out = D.kl_mvn(mq, S, torch.zeros(3, 2), torch.eye(2).expand(3, 2, 2))
    assert out.shape == (3,)
    with pytest.raises(ValueError, match="positive definite"):
        D.kl_mvn(mq[0], -torch.eye(2), mq[0], torch.eye(2))
    with pytest.raises(ValueError, match="square"):
        D.kl_mvn(mq[0], torch.ones(2, 3), mq[0], torch.eye(2))


def test_categorical_log_prob_and_kl(gen):
    logits_q, logits_p = torch.randn(5, 4, generator=gen), torch.randn(5, 4, generator=gen)
    idx = torch.randint(0, 4, (5,), generator=gen)
    onehot = torch.nn.functional.one_hot(idx, 4).double()
    torch.testing.assert_close(D.categorical_log_prob(onehot, logits_q), Categorical(logits=logits_q).log_prob(idx))
    torch.testing.assert_close(D.kl_categorical(logits_q, logits_p),
                               kl_divergence(Categorical(logits=logits_q), Categorical(logits=logits_p)))
    uniform = D.kl_categorical(logits_q)
    torch.testing.assert_close(uniform, math.log(4) - Categorical(logits=logits_q).entropy())


@pytest.mark.parametrize("call", [
    lambda: D.gaussian_log_prob([1.0], torch.zeros(1), torch.zeros(1)),
    lambda: D.kl_normal_standard(torch.zeros(3, dtype=torch.long), torch.zeros(3)),
])
def test_type_errors_name_the_fix(call):
    with pytest.raises(TypeError, match="torch.as_tensor|float"):
        call()


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match=r"shapes do not match: mu\(2, 3\), logvar\(2, 4\)"):
        D.kl_normal_standard(torch.zeros(2, 3), torch.zeros(2, 4))


def test_sample_bernoulli_has_the_bernoulli_distribution():
    from vae_core.distributions import sample_bernoulli
    p = torch.tensor([0.0, 0.02, 0.3, 0.5, 0.9, 1.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    draws = sample_bernoulli(p.expand(20_000, 6), g)
    assert draws.dtype == torch.float64 and set(draws.unique().tolist()) <= {0.0, 1.0}
    freq = draws.mean(0)
    assert freq[0] == 0 and freq[-1] == 1                       # p = 0 never fires, p = 1 always does
    sd = (p * (1 - p) / 20_000).sqrt()
    assert ((freq - p).abs() <= 5 * sd + 1e-12).all()            # within 5 binomial sd of p
    # pixels are independent: the covariance of two p = 0.5 columns is ~0 (sd 1/(4 sqrt(n)))
    a = sample_bernoulli(torch.full((20_000, 2), 0.5), g)
    assert abs(((a[:, 0] - 0.5) * (a[:, 1] - 0.5)).mean().item()) < 5 * 0.25 / 20_000 ** 0.5
    # the same generator state gives the same draws; works on probabilities with a graph
    p_grad = torch.full((3, 4), 0.5, requires_grad=True)
    assert torch.equal(sample_bernoulli(p_grad, torch.Generator().manual_seed(4)),
                       sample_bernoulli(p_grad.detach(), torch.Generator().manual_seed(4)))
    with pytest.raises(TypeError, match="floating"):
        sample_bernoulli(torch.ones(3, dtype=torch.long))
