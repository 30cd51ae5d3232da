"""VaDE (chapter 13): the mixture prior, the responsibilities, the ELBO term by term, the initialisation
from a Gaussian mixture on codes, and the clustering accuracy by Hungarian matching."""
import itertools
import math

import numpy as np
import pytest
import torch

from vae_core import fit
from vae_core.train import Autoencoder, pretrain_vade
from vae_core.distributions import gaussian_log_prob, standard_normal_log_prob
from vae_core.evaluate import cluster_accuracy
from vae_core.models import VAE, Batch, VaDE

pytestmark = pytest.mark.usefixtures("one_thread")

D, d = 12, 3


def _model(K=4, seed=0, hidden=(16,)):
    torch.manual_seed(seed)
    return VaDE(D, d, n_clusters=K, hidden_dims=hidden)


def _binary(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, D, generator=g) > 0.5).float()


def _set_prior(m, logits, means, logvars):
    with torch.no_grad():
        m.prior.logits.copy_(torch.as_tensor(logits, dtype=torch.float32))
        m.prior.means.copy_(torch.as_tensor(means, dtype=torch.float32))
        m.prior._logvars.copy_(torch.as_tensor(logvars, dtype=torch.float32))   # before the soft clamp


# ------------------------------------------------------------------------ the prior

def test_pi_stays_on_the_simplex_whatever_the_logits():
    m = _model()
    _set_prior(m, [50.0, -40.0, 3.0, 0.0], torch.randn(4, d), torch.zeros(4, d))
    assert (m.pi >= 0).all() and m.pi.sum().item() == pytest.approx(1.0, abs=1e-6)
    opt = torch.optim.SGD([m.prior.logits], lr=10.0)
    for _ in range(5):   # large steps on the logits cannot leave the simplex
        opt.zero_grad()
        (-m.prior.log_weights[1]).backward()
        opt.step()
        assert (m.pi >= 0).all() and m.pi.sum().item() == pytest.approx(1.0, abs=1e-6)


def test_mixture_prior_is_the_log_of_the_weighted_sum_of_densities():
    m = _model().double()
    _set_prior(m, [0.3, -1.0, 0.5, 0.0], torch.randn(4, d), 0.5 * torch.randn(4, d))
    z = torch.randn(7, 5, d, dtype=torch.float64)
    dens = sum(m.pi[c] * torch.exp(gaussian_log_prob(z, m.cluster_means[c], m.cluster_logvars[c]))
               for c in range(4))
    torch.testing.assert_close(m.prior.log_prob(z), torch.log(dens))
    # and it is a density: it integrates to one on a 1-D mixture (grid sum)
    m1 = VaDE(D, 1, n_clusters=3, hidden_dims=(4,)).double()
    _set_prior(m1, [0.0, 1.0, -1.0], [[-3.0], [0.0], [4.0]], [[-1.0], [0.5], [0.0]])
    grid = torch.linspace(-20, 20, 40001, dtype=torch.float64).unsqueeze(-1)
    mass = torch.exp(m1.prior.log_prob(grid)).sum() * (grid[1, 0] - grid[0, 0])
    assert mass.item() == pytest.approx(1.0, abs=1e-6)


def test_responsibilities_are_bayes_rule_and_sum_to_one():
    m = _model().double()
    _set_prior(m, [0.3, -1.0, 0.5, 0.0], torch.randn(4, d), 0.5 * torch.randn(4, d))
    z = torch.randn(50, d, dtype=torch.float64)
    joint = torch.stack([m.pi[c] * torch.exp(gaussian_log_prob(z, m.cluster_means[c], m.cluster_logvars[c]))
                         for c in range(4)], -1)
    gamma = m.responsibilities(z)
    torch.testing.assert_close(gamma, joint / joint.sum(-1, keepdim=True))
    torch.testing.assert_close(gamma.sum(-1), torch.ones(50, dtype=torch.float64))
    torch.testing.assert_close(torch.logsumexp(m.prior.log_responsibilities(z), -1), torch.zeros(50, dtype=torch.float64))


def test_responsibilities_stay_finite_far_from_every_cluster():
    """Dividing densities gives 0/0 there; log-sum-exp does not."""
    m = _model()
    _set_prior(m, torch.zeros(4), [[0.0] * d, [1.0] * d, [2.0] * d, [3.0] * d], torch.full((4, d), -4.0))
    z = torch.full((2, d), 200.0)
    naive = torch.exp(m.prior.log_joint(z))
    assert (naive == 0).all()                      # every density underflows in float32
    gamma = m.responsibilities(z)
    assert torch.isfinite(gamma).all() and torch.allclose(gamma.sum(-1), torch.ones(2))
    assert (gamma.argmax(-1) == 3).all()           # the nearest cluster takes the point


# ------------------------------------------------------------------------ the ELBO

def test_one_cluster_at_the_standard_normal_gives_the_vae_elbo():
    vade = VaDE(D, d, n_clusters=1, hidden_dims=(16,), activation="tanh")
    _set_prior(vade, [0.0], torch.zeros(1, d), torch.zeros(1, d))
    vae = VAE(D, d, hidden_dims=(16,), activation="tanh")
    vae.load_state_dict({k: v for k, v in vade.state_dict().items() if k.startswith(("encoder", "decoder"))})
    x = _binary(20)
    a = vade.elbo(x, n_samples=3, generator=torch.Generator().manual_seed(1))
    b = vae.elbo(x, n_samples=3, generator=torch.Generator().manual_seed(1))
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v)
    torch.testing.assert_close(vade.loss(Batch(x), generator=torch.Generator().manual_seed(2)).elbo,
                               vae.loss(Batch(x), generator=torch.Generator().manual_seed(2)).elbo)
    z = torch.randn(4, 9, d)
    torch.testing.assert_close(vade.prior.log_prob(z), standard_normal_log_prob(z))
    torch.testing.assert_close(vade.log_weights(Batch(x), 5, generator=torch.Generator().manual_seed(3)),
                               vae.log_weights(Batch(x), 5, generator=torch.Generator().manual_seed(3)))


def test_closed_form_kl_equals_the_monte_carlo_definition():
    r"""KL = E_{q(z|x) q(c|x)}[log q(z|x) + log q(c|x) - log p(z|c) - log p(c)] with q(c|x) = gamma."""
    m = _model(seed=1).double()
    _set_prior(m, [0.3, -1.0, 0.5, 0.0], torch.randn(4, d), 0.5 * torch.randn(4, d))
    x = _binary(6).double()
    t = m.terms(x, generator=torch.Generator().manual_seed(4))
    gamma = t["gamma"]
    torch.testing.assert_close(gamma.sum(-1), torch.ones(6, dtype=torch.float64))
    with torch.no_grad():
        mu, logvar = m.encoder(x)
        L = 200_000
        z = mu + torch.exp(0.5 * logvar) * torch.randn(L, *mu.shape, dtype=torch.float64,
                                                       generator=torch.Generator().manual_seed(5))
        log_q_z = gaussian_log_prob(z, mu, logvar)                            # (L, B)
        log_p_zc = m.prior.log_joint(z)                                       # (L, B, K): log p(c) + log p(z|c)
        per_sample = log_q_z + (gamma * (gamma.log() - log_p_zc)).sum(-1)     # exact sum over c
    mc, se = per_sample.mean(0), per_sample.std(0) / math.sqrt(L)
    assert ((mc - t["kl"]).abs() < 5 * se + 1e-6).all(), (mc, t["kl"], se)
    torch.testing.assert_close(t["kl"], t["kl_z"] + t["kl_c"])
    assert (t["kl_c"] >= -1e-12).all()              # KL(gamma || pi) >= 0


def test_elbo_is_below_the_bound_with_c_summed_out():
    """Any q(c|x) gives a lower bound on E_q[log p(x|z) + log p(z) - log q(z|x)] (c marginalised)."""
    m = _model(seed=2)
    _set_prior(m, [0.3, -1.0, 0.5, 0.0], torch.randn(4, d), 0.5 * torch.randn(4, d))
    x = _binary(8)
    reps = 4000
    with torch.no_grad():
        elbo = m.elbo(x.repeat(reps, 1), generator=torch.Generator().manual_seed(6)).elbo.view(reps, 8)
        marg = m.log_weights(Batch(x), reps, generator=torch.Generator().manual_seed(7))  # (reps, 8)
    gap = marg.mean(0) - elbo.mean(0)
    se = torch.sqrt(marg.var(0) / reps + elbo.var(0) / reps)
    assert (gap > -4 * se).all(), (gap, se)
    assert gap.mean() > 0


def test_autoencoder_trains_the_reconstruction_at_the_mean_and_reports_the_bound():
    m = _model()
    x = _binary(10)
    ae = Autoencoder(m)
    out = ae.loss(Batch(x), generator=torch.Generator().manual_seed(0))
    mu, _ = m.encoder(x)
    torch.testing.assert_close(out.loss, -m.log_likelihood(x, mu).mean())
    assert out.elbo.shape == (10,) and {"recon", "kl", "ae_recon"} <= set(out.terms)
    torch.testing.assert_close(out.elbo, m.loss(Batch(x), generator=torch.Generator().manual_seed(0)).elbo)
    out.loss.backward()
    assert m.prior.logits.grad is None and m.prior.means.grad is None   # the prior is not trained here
    trained = {id(p) for p in ae.parameter_groups()["model"]}
    assert trained == {id(p) for p in [*m.encoder.parameters(), *m.decoder.parameters()]}


# ------------------------------------------------------------------------ initialisation and clustering

def test_init_mixture_copies_a_fitted_gaussian_mixture():
    m = _model(K=3)
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-6.0, 0.0, 0.0], [0.0, 6.0, 0.0], [6.0, 0.0, 3.0]])
    scales = torch.tensor([[0.5, 1.0, 0.3], [1.0, 0.4, 0.6], [0.8, 0.8, 0.8]])
    sizes = [600, 300, 100]
    codes = torch.cat([centres[c] + scales[c] * torch.randn(n, d, generator=g) for c, n in enumerate(sizes)])
    gmm = m.init_mixture(codes, seed=0)
    order = [int(torch.cdist(centres[c:c + 1], m.cluster_means.detach()).argmin()) for c in range(3)]
    assert sorted(order) == [0, 1, 2]
    torch.testing.assert_close(m.cluster_means.detach()[order], centres, atol=0.15, rtol=0)
    torch.testing.assert_close(m.cluster_logvars.detach()[order].exp().sqrt(), scales, atol=0.1, rtol=0)
    torch.testing.assert_close(m.pi.detach()[order], torch.tensor(sizes) / 1000.0, atol=0.02, rtol=0)
    torch.testing.assert_close(m.cluster_logvars.detach(), torch.log(torch.as_tensor(gmm.covariances_)).float(),
                               atol=1e-4, rtol=0)
    # the prior's clusters now agree with the mixture's own assignments
    assert (m.responsibilities(codes).argmax(-1).numpy() == gmm.predict(codes.numpy())).mean() > 0.99
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        m.init_mixture(torch.randn(10, 2))


def test_samples_of_one_cluster_follow_that_cluster():
    m = _model()
    _set_prior(m, torch.zeros(4), 3 * torch.randn(4, d), torch.tensor([[-2.0, 0.0, 1.0]] * 4))
    z, c = m.prior.sample_with_components(20_000, component=2, generator=torch.Generator().manual_seed(0))
    assert (c == 2).all()
    torch.testing.assert_close(z.mean(0), m.cluster_means[2].detach(), atol=0.05, rtol=0)
    torch.testing.assert_close(z.std(0), torch.exp(0.5 * m.cluster_logvars[2]).detach(), atol=0.05, rtol=0)
    _, c = m.prior.sample_with_components(20_000, generator=torch.Generator().manual_seed(1))   # clusters drawn from pi
    torch.testing.assert_close(torch.bincount(c, minlength=4) / 20_000., m.pi.detach(), atol=0.02, rtol=0)
    assert m.sample(3, cluster=1).shape == (3, D)
    with pytest.raises(ValueError, match="component must be"):
        m.sample(3, cluster=4)
    with pytest.raises(ValueError, match="not conditional"):
        m.sample(3, y=torch.zeros(3, dtype=torch.long))


def test_pretrain_then_fit_recovers_separated_groups():
    """Four prototypes with 5 % flipped pixels: pretraining plus a short VaDE run clusters them."""
    g = torch.Generator().manual_seed(0)
    protos = torch.tensor([[1.0] * 6 + [0.0] * 6, [0.0] * 6 + [1.0] * 6,
                           [1.0, 0.0] * 6, [0.0, 1.0] * 6])
    y = torch.randint(0, 4, (400,), generator=g)
    x = (protos[y] + (torch.rand(400, D, generator=g) < 0.05).float()) % 2
    torch.manual_seed(0)
    m = VaDE(D, 2, n_clusters=4, hidden_dims=(32,))
    history, gmm = pretrain_vade(m, x, epochs=30, batch_size=50, lr=3e-3, seed=0)
    assert "ae_recon" in history.terms and history.terms["ae_recon"][-1] > history.terms["ae_recon"][0]
    assert cluster_accuracy(y, gmm.predict(m.encode_means(x).numpy())) > 0.95
    # the encoder's variance head starts at 1 % of the mixture's mean variance, for every input
    _, logvar = m.encoder(x)
    torch.testing.assert_close(logvar, torch.full_like(logvar, math.log(0.01 * m.cluster_logvars.exp().mean().item())))
    fit(m, x, epochs=10, batch_size=50, lr=1e-3, progress=False)
    assert cluster_accuracy(y, m.cluster(x)) > 0.95
    with pytest.raises(ValueError, match="variance must be"):
        m.reset_encoder_variance(0.0)


def test_constructor_and_kl_mode_errors():
    with pytest.raises(ValueError, match="n_clusters must be a positive int"):
        VaDE(D, d, n_clusters=0)
    with pytest.raises(TypeError, match="n_clusters must be a positive int"):
        VaDE(D, d, n_clusters=2.5)
    with pytest.raises(ValueError, match="kl must be 'analytic'"):
        _model().elbo(_binary(4), kl="mc")
    with pytest.raises(ValueError, match="no setting 'kl_estimator'"):      # the KLs are in closed form
        fit(_model(), _binary(4), epochs=1, kl="mc", progress=False)


# ------------------------------------------------------------------------ cluster accuracy

def _brute_force(y_true, y_pred):
    """Best accuracy over every injective map from clusters to classes, by enumeration."""
    classes, clusters = sorted(set(y_true)), sorted(set(y_pred))
    best = 0
    for image in itertools.permutations(classes + [None] * max(0, len(clusters) - len(classes)), len(clusters)):
        mapping = dict(zip(clusters, image))
        best = max(best, sum(mapping[p] == t for t, p in zip(y_true, y_pred)))
    return best / len(y_true)


@pytest.mark.parametrize("n_classes, n_clusters", [(5, 5), (6, 4), (3, 5), (2, 2)])
def test_cluster_accuracy_equals_a_brute_force_search(n_classes, n_clusters):
    rng = np.random.default_rng(n_classes * 10 + n_clusters)
    for trial in range(5):
        y_true = rng.integers(0, n_classes, 60)
        # labels related to the classes (so the best map is not trivial), plus noise, shifted values
        y_pred = np.where(rng.random(60) < 0.6, (y_true * 7 + trial) % n_clusters, rng.integers(0, n_clusters, 60)) + 10
        acc, mapping = cluster_accuracy(y_true, y_pred, return_mapping=True)
        assert acc == pytest.approx(_brute_force(y_true.tolist(), y_pred.tolist()), abs=1e-12)
        assert len(set(mapping.values())) == len(mapping)            # one-to-one
        assert acc == pytest.approx(np.mean([mapping.get(p) == t for t, p in zip(y_true, y_pred)]))


def test_cluster_accuracy_is_invariant_to_relabelling_and_takes_tensors():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 500)
    perm = rng.permutation(10)
    assert cluster_accuracy(y, perm[y]) == 1.0
    assert cluster_accuracy(torch.as_tensor(y), torch.as_tensor(perm[y])) == 1.0
    assert cluster_accuracy(y, np.zeros_like(y)) == pytest.approx(np.bincount(y).max() / 500)


def test_cluster_accuracy_rejects_bad_input():
    with pytest.raises(ValueError, match="same length"):
        cluster_accuracy([0, 1, 2], [0, 1])
    with pytest.raises(TypeError, match="integer labels"):
        cluster_accuracy([0.0, 1.0], [0, 1])
    with pytest.raises(ValueError, match="1-D"):
        cluster_accuracy(np.zeros((2, 2), dtype=int), np.zeros((2, 2), dtype=int))


# ------------------------------------------------------------------------ the effect on curved clusters (chapter 13.4)

def test_vade_training_raises_the_elbo_from_its_start_on_the_pinwheel():
    """Chapter 13.4 with a fixed seed: from its AE + GMM start, VaDE's training raises the ELBO a lot and keeps
    (here: slightly improves) the start's clustering of the pinwheel's curved arms."""
    from vae_core.data.toys import lift, pinwheel
    from vae_core.evaluate import mean_elbo
    toy = pinwheel(200, 5, rate=0.4, seed=0)
    x, _ = lift(toy.x, 10, noise=0.05, seed=0)
    torch.manual_seed(0)
    m = VaDE(10, 2, n_clusters=5, hidden_dims=(64, 64), likelihood="gaussian", activation="tanh")
    pretrain_vade(m, x, epochs=5, batch_size=100, lr=3e-3, seed=0, n_init=5)
    acc0 = cluster_accuracy(toy.y, m.cluster(x))
    elbo0 = mean_elbo(m, x, generator=torch.Generator().manual_seed(0))
    fit(m, x, epochs=40, batch_size=100, lr=3e-3, seed=0, progress=False)
    acc1 = cluster_accuracy(toy.y, m.cluster(x))
    elbo1 = mean_elbo(m, x, generator=torch.Generator().manual_seed(0))
    assert elbo1 > elbo0 + 1.0, (elbo0, elbo1)
    assert acc1 >= acc0 - 0.01, (acc0, acc1)


def test_init_mixture_checks_its_settings():
    m = _model(K=2)
    codes = torch.randn(50, d)
    with pytest.raises(ValueError, match="n_init must be a positive int"):
        m.init_mixture(codes, n_init=0)
    with pytest.raises(TypeError, match="max_iter must be a positive int"):
        m.init_mixture(codes, max_iter=1.5)
    a = _model(K=2).init_mixture(codes, seed=0, n_init=3)
    assert a.n_init == 3
