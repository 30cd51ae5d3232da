"""The conditional VAE and M2 (chapter 10): the bounds checked against each other, numerically."""
import math

import pytest
import torch

from vae_core import fit, log_marginal, mean_elbo
from vae_core.models import CVAE, M2, VAE, Batch
from vae_core.models.cvae import UNLABELLED

pytestmark = pytest.mark.usefixtures("one_thread")

D, d, C = 12, 3, 4


def _gen(seed=3):
    return torch.Generator().manual_seed(seed)


def _x(n=16, seed=0):
    return (torch.rand(n, D, generator=_gen(seed)) > 0.5).float()


def _m2(**kw):
    torch.manual_seed(0)
    return M2(D, d, n_classes=C, hidden_dims=(16,), classifier_hidden=(16,), **kw)


# ------------------------------------------------------------------------ CVAE

def _vae_equal_to_one_class_cvae(cvae):
    """The VAE whose first layers absorb the constant one-hot input of a one-class CVAE."""
    vae = VAE(D, d, hidden_dims=(16,))
    state = {k: v.clone() for k, v in cvae.state_dict().items()}
    for net, n_in in (("encoder", D), ("decoder", d)):
        w, b = state[f"{net}.net.0.weight"], state[f"{net}.net.0.bias"]
        state[f"{net}.net.0.weight"], state[f"{net}.net.0.bias"] = w[:, :n_in], b + w[:, n_in]
    vae.load_state_dict(state)
    return vae


def test_cvae_with_one_class_equals_a_vae():
    torch.manual_seed(1)
    cvae = CVAE(D, d, n_classes=1, hidden_dims=(16,))
    vae = _vae_equal_to_one_class_cvae(cvae)
    x, y = _x(), torch.zeros(16, dtype=torch.long)
    for n_samples in (1, 4):
        cvae.n_samples = vae.n_samples = n_samples
        a, b = cvae.loss(Batch(x, y), generator=_gen()), vae.loss(Batch(x), generator=_gen())
        torch.testing.assert_close(a.elbo, b.elbo, rtol=0, atol=1e-5)
        torch.testing.assert_close(a.loss, b.loss, rtol=0, atol=1e-5)
        for term in ("recon", "kl"):
            torch.testing.assert_close(a.terms[term], b.terms[term], rtol=0, atol=1e-5)
    torch.testing.assert_close(cvae.log_weights(Batch(x, y), 5, generator=_gen()),
                               vae.log_weights(Batch(x), 5, generator=_gen()), rtol=0, atol=1e-5)
    torch.testing.assert_close(cvae.sample(6, generator=_gen()), vae.sample(6, generator=_gen()), rtol=0, atol=1e-6)
    # the same function of the shared weights: the same gradients for them
    ga = torch.autograd.grad(cvae.loss(Batch(x, y), generator=_gen()).loss, cvae.decoder.net[2].weight)[0]
    gb = torch.autograd.grad(vae.loss(Batch(x), generator=_gen()).loss, vae.decoder.net[2].weight)[0]
    torch.testing.assert_close(ga, gb, rtol=0, atol=1e-5)


def test_cvae_conditions_on_the_label():
    torch.manual_seed(0)
    model = CVAE(D, d, n_classes=C, hidden_dims=(16,))
    x = _x(8)
    a = model.loss(Batch(x, torch.zeros(8, dtype=torch.long)), generator=_gen()).elbo
    b = model.loss(Batch(x, torch.full((8,), 2)), generator=_gen()).elbo
    assert not torch.allclose(a, b), "the bound must depend on y"
    z = torch.randn(5, d)
    assert not torch.allclose(model.sample(5, y=0, z=z), model.sample(5, y=1, z=z))
    # y=None: the classes in turn; an int: that class
    torch.testing.assert_close(model.sample(6, z=torch.randn(6, d, generator=_gen())),
                               model.sample(6, y=torch.tensor([0, 1, 2, 3, 0, 1]), z=torch.randn(6, d, generator=_gen())))
    with pytest.raises(ValueError, match="z must have shape"):
        model.sample(5, y=0, z=torch.zeros(4, d))


def test_cvae_bound_is_monte_carlo_mean_of_its_log_weights():
    """E_q[log w] = E_q log p(x|z,y) - KL: the analytic-KL ELBO is the mean of the sampled log-weights."""
    torch.manual_seed(0)
    model = CVAE(D, d, n_classes=C, hidden_dims=(16,))
    x, y = _x(6), torch.tensor([0, 1, 2, 3, 1, 2])
    model.n_samples = 20000
    elbo = model.loss(Batch(x, y), generator=_gen()).elbo
    log_w = model.log_weights(Batch(x, y), 20000, generator=_gen(4))
    se = log_w.std(0) / math.sqrt(20000)
    assert ((log_w.mean(0) - elbo).abs() < 5 * se + 0.02).all()


def test_cvae_decoder_export_takes_z_and_the_one_hot_label():
    torch.manual_seed(0)
    for likelihood in ("bernoulli", "gaussian"):
        model = CVAE(D, d, n_classes=C, hidden_dims=(16,), likelihood=likelihood)
        net, output = model.mean_decoder()
        z, y = torch.randn(5, d), torch.tensor([0, 3, 1, 2, 3])
        with torch.no_grad():
            raw = net(torch.cat([z, torch.nn.functional.one_hot(y, C).float()], -1))
            mean = torch.sigmoid(raw) if output == "sigmoid" else raw
            torch.testing.assert_close(mean, model.decode_mean(z, y))


@pytest.mark.parametrize("y, error, match", [
    (None, ValueError, "CVAE needs labels"),
    (torch.tensor([0, 1, 2, 4]), ValueError, r"labels y must be in 0\.\.3 \(n_classes=4\), got values from 0 to 4"),
    (torch.tensor([0, -1, 2, 3]), ValueError, r"in 0\.\.3"),
    (torch.tensor([0.0, 1.0, 2.0, 3.0]), TypeError, "integers"),
    (torch.tensor([0, 1, 2]), ValueError, r"shape \(4,\)"),
    ([0, 1, 2, 3], TypeError, "torch.Tensor"),
])
def test_cvae_bad_labels_are_clear_errors(y, error, match):
    torch.manual_seed(0)
    model = CVAE(D, d, n_classes=C, hidden_dims=(16,))
    with pytest.raises(error, match=match):
        model.loss(Batch(_x(4), y))
    with pytest.raises(error, match=match):
        model.log_weights(Batch(_x(4), y), 2)


def test_cvae_without_labels_in_fit_is_a_clear_error():
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="needs labels"):
        fit(CVAE(D, d, n_classes=C, hidden_dims=(16,)), _x(20), epochs=1, progress=False)
    with pytest.raises(ValueError, match="n_classes must be a positive int"):
        CVAE(D, d, n_classes=0)


# ------------------------------------------------------------------------ M2

def test_m2_class_posterior_sums_to_one():
    model = _m2()
    q = model.class_posterior(_x(32) * 3 - 1)
    assert q.shape == (32, C) and (q >= 0).all()
    torch.testing.assert_close(q.sum(-1), torch.ones(32))
    torch.testing.assert_close(model.predict(_x(32) * 3 - 1), q.argmax(-1))


@pytest.mark.parametrize("n_samples", [1, 3])
def test_m2_unlabelled_bound_is_the_expected_labelled_bound_plus_the_entropy(n_samples):
    """U(x) = sum_y q(y|x) L(x, y) + H(q(y|x)), term by term, with the same noise."""
    model = _m2()
    model.n_samples = n_samples
    x = _x(10)
    unl = model.loss(Batch(x, torch.full((10,), UNLABELLED)), generator=_gen())
    assert (unl.terms["labelled"] == 0).all() and (unl.terms["classifier_nll"] == 0).all()
    q = model.class_posterior(x)
    labelled = [model.loss(Batch(x, torch.full((10,), c)), generator=_gen()) for c in range(C)]
    L = torch.stack([out.elbo for out in labelled], -1)                         # (B, C)
    entropy = -(q * q.log()).sum(-1)
    torch.testing.assert_close(unl.elbo, (q * L).sum(-1) + entropy, rtol=0, atol=1e-4)
    recon = torch.stack([out.terms["recon"] for out in labelled], -1)
    torch.testing.assert_close(unl.terms["recon"], (q * recon).sum(-1), rtol=0, atol=1e-4)
    # the labelled bound carries log p(y) = -log C: its KL of y is log C, the unlabelled one KL(q(y|x) || 1/C)
    torch.testing.assert_close(labelled[0].terms["kl_y"], torch.full((10,), math.log(C)))
    torch.testing.assert_close(unl.terms["kl_y"], (q * (q * C).log()).sum(-1), rtol=0, atol=1e-5)
    torch.testing.assert_close(unl.elbo, unl.terms["recon"] - unl.terms["kl"])
    # y=None is an unlabelled batch
    torch.testing.assert_close(model.loss(Batch(x), generator=_gen()).elbo, unl.elbo)


def test_m2_mixed_batch_equals_its_labelled_and_unlabelled_parts_and_the_loss_adds_alpha():
    model = _m2(alpha=7.0)
    x = _x(12)
    y = torch.tensor([0, -1, 3, -1, -1, 2, 1, -1, 0, -1, 3, -1])
    known = y >= 0
    mixed = model.loss(Batch(x, y), generator=_gen())
    all_unl = model.loss(Batch(x, torch.full((12,), -1)), generator=_gen())
    all_lab = model.loss(Batch(x, torch.where(known, y, 0)), generator=_gen())
    torch.testing.assert_close(mixed.elbo[~known], all_unl.elbo[~known], rtol=0, atol=1e-5)
    torch.testing.assert_close(mixed.elbo[known], all_lab.elbo[known], rtol=0, atol=1e-5)
    nll = torch.nn.functional.cross_entropy(model.classifier_logits(x[known]), y[known], reduction="sum") / 12
    torch.testing.assert_close(mixed.loss, -mixed.elbo.mean() + 7.0 * nll, rtol=0, atol=1e-5)
    assert mixed.terms["labelled"].tolist() == known.float().tolist()


def test_m2_every_class_encoder_equals_the_encoder_per_class():
    model = _m2()
    x = _x(5)
    mu, logvar = model._encode_every_class(x)
    for c in range(C):
        m, lv = model.encode(x, torch.full((5,), c))
        torch.testing.assert_close(mu[c], m, rtol=0, atol=1e-6)
        torch.testing.assert_close(logvar[c], lv, rtol=0, atol=1e-6)


def test_m2_unlabelled_log_weights_sum_the_labelled_ones_over_y():
    """With the same noise, log w(x) = logsumexp_y log w(x, y): y is summed out exactly."""
    model = _m2()
    x = _x(7)
    unl = model.log_weights(Batch(x), 5, generator=_gen())
    per_class = torch.stack([model.log_weights(Batch(x, torch.full((7,), c)), 5, generator=_gen())
                             for c in range(C)])
    torch.testing.assert_close(unl, torch.logsumexp(per_class, 0), rtol=0, atol=1e-5)
    mixed = model.log_weights(Batch(x, torch.tensor([-1, 2, -1, 0, 1, -1, 3])), 5, generator=_gen())
    torch.testing.assert_close(mixed[:, 0], unl[:, 0], rtol=0, atol=1e-5)
    torch.testing.assert_close(mixed[:, 1], per_class[2, :, 1], rtol=0, atol=1e-5)


def test_m2_log_marginal_is_above_the_unlabelled_bound_and_sums_the_joint():
    """log p(x) >= U(x), and log p(x) = log sum_y p(x, y) (importance sampled, both sides)."""
    model = _m2()
    x = (torch.rand(30, D, generator=_gen(1)) > 0.5).float()
    fit(model, (x, torch.arange(30) % C), epochs=3, batch_size=10, lr=3e-3, progress=False)
    log_px = log_marginal(model, x, n_samples=3000, generator=_gen())
    unlabelled_bound = mean_elbo(model, x, y=torch.full((30,), -1), generator=_gen())
    assert log_px.mean().item() > unlabelled_bound
    log_pxy = torch.stack([log_marginal(model, x, y=torch.full((30,), c), n_samples=3000, generator=_gen(c))
                           for c in range(C)])
    assert (torch.logsumexp(log_pxy, 0) - log_px).abs().max().item() < 0.05


@pytest.mark.parametrize("y, error, match", [
    (torch.tensor([0, 1, -2, 3]), ValueError, r"0\.\.3, or -1 for an unlabelled image"),
    (torch.tensor([0, 1, 4, 3]), ValueError, r"got values from 0 to 4"),
    (torch.tensor([0.0, 1.0, -1.0, 3.0]), TypeError, "integers"),
])
def test_m2_bad_labels_are_clear_errors(y, error, match):
    model = _m2()
    with pytest.raises(error, match=match):
        model.loss(Batch(_x(4), y))
    with pytest.raises(ValueError, match="must be in 0..3"):
        model.encode(_x(4), torch.tensor([0, -1, 1, 2]))      # q(z|x, y) needs a known y
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        M2(D, d, alpha=-1.0)


def test_m2_learns_a_classifier_from_a_few_labels():
    """Four classes (a block of three pixels each, 5 % of pixels flipped), 2 labels per class among
    400 images, the labelled pairs repeated so that every batch holds some (as in chapter 10)."""
    g = _gen(5)
    protos = torch.zeros(C, D)
    for c in range(C):
        protos[c, 3 * c: 3 * c + 3] = 1

    def data(n):
        idx = torch.randint(0, C, (n,), generator=g)
        return (protos[idx] + (torch.rand(n, D, generator=g) < 0.05).float()) % 2, idx

    x, y = data(400)
    labelled = torch.cat([torch.nonzero(y == c)[:2, 0] for c in range(C)])
    x_train = torch.cat([x, x[labelled].repeat(20, 1)])
    y_train = torch.cat([torch.full_like(y, -1), y[labelled].repeat(20)])
    model = _m2(alpha=10.0)
    fit(model, (x_train, y_train), epochs=8, batch_size=50, lr=1e-2, progress=False)
    x_test, y_test = data(200)
    assert (model.predict(x_test) == y_test).float().mean().item() > 0.95


def test_m2_samples_draw_the_label_from_the_prior_reproducibly():
    model = _m2()
    a, b = model.sample(20, generator=_gen()), model.sample(20, generator=_gen())
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    z = torch.randn(3, d)
    torch.testing.assert_close(model.sample(3, y=2, z=z), model.decode_mean(z, torch.full((3,), 2)))
