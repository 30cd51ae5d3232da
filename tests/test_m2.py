"""The semi-supervised M2 (chapter 10): U(x) against the labelled bounds, y summed out of the weights, a classifier from few labels."""
import math

import pytest
import torch

from vae_core import fit, log_marginal, mean_elbo
from vae_core.models import M2, Batch
from vae_core.models.m2 import UNLABELLED

from test_cvae import C, D, _gen, _x, d      # the CVAE's sizes and toy images

pytestmark = pytest.mark.usefixtures("one_thread")


def _m2(**kw):
    torch.manual_seed(0)
    return M2(D, d, n_classes=C, hidden_dims=(16,), classifier_hidden=(16,), **kw)


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
    nll = torch.nn.functional.cross_entropy(model.classifier(x[known]), y[known], reduction="sum") / 12
    torch.testing.assert_close(mixed.loss, -mixed.elbo.mean() + 7.0 * nll, rtol=0, atol=1e-5)
    assert mixed.terms["labelled"].tolist() == known.float().tolist()


def test_m2_every_class_encoder_equals_the_encoder_per_class():
    model = _m2()
    x = _x(5)
    images, classes = model.pairs(torch.full((5,), UNLABELLED))          # every (image, class) pair
    assert images.tolist() == [i for i in range(5) for _ in range(C)] and classes.tolist() == list(range(C)) * 5
    mu, logvar = (t.view(5, C, d) for t in model.encode_pairs(x, images, classes))
    for c in range(C):
        m, lv = model.encode(x, torch.full((5,), c))
        torch.testing.assert_close(mu[:, c], m, rtol=0, atol=1e-6)
        torch.testing.assert_close(logvar[:, c], lv, rtol=0, atol=1e-6)
    images, classes = model.pairs(torch.tensor([2, -1, 0]))             # a labelled image: its label only
    assert images.tolist() == [0] + [1] * C + [2] and classes.tolist() == [2, *range(C), 0]


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


def test_m2_declares_only_the_setting_it_uses():
    """M2 trains the paper's bound: no KL weight beta to set or schedule."""
    assert set(M2.settings) == {"n_samples"} and not hasattr(_m2(), "beta")
    with pytest.raises(ValueError, match="no setting 'beta'"):
        fit(_m2(), (_x(8), torch.zeros(8, dtype=torch.long)), epochs=1, beta=0.5, progress=False)
