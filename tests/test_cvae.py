"""The conditional VAE (chapter 10): one class is a VAE, the bound is the mean of its log-weights, clear label errors."""
import math

import pytest
import torch

from vae_core import fit
from vae_core.models import CVAE, VAE, Batch

pytestmark = pytest.mark.usefixtures("one_thread")

D, d, C = 12, 3, 4


def _gen(seed=3):
    return torch.Generator().manual_seed(seed)


def _x(n=16, seed=0):
    return (torch.rand(n, D, generator=_gen(seed)) > 0.5).float()


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
