"""One contract for every model in MODELS: what fit, the evaluators and checkpoints rely on.

Each Part IV model is added to ``vae_core.models.MODELS`` and is then checked here, unchanged.
"""
import math

import pytest
import torch

from vae_core import MODELS, Batch, Output, fit, load_checkpoint, log_marginal, mean_elbo, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

D, d, N_CLASSES = 12, 3, 10


def _data(n=120, seed=0):
    """Binary images made from 4 prototypes with 5 % flipped pixels, and labels in 0..9."""
    g = torch.Generator().manual_seed(seed)
    protos = (torch.rand(4, D, generator=g) > 0.5).float()
    idx = torch.randint(0, 4, (n,), generator=g)
    x = (protos[idx] + (torch.rand(n, D, generator=g) < 0.05).float()) % 2
    return x, (idx * 2 + torch.randint(0, 2, (n,), generator=g)) % N_CLASSES


def _model(name, seed=0):
    torch.manual_seed(seed)
    return MODELS[name](input_dim=D, latent_dim=d)


def _gen(seed=7):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(params=sorted(MODELS))
def name(request):
    return request.param


def test_output_has_the_contract_fields(name):
    x, y = _data(16)
    out = _model(name).loss(Batch(x, y), generator=_gen())
    assert isinstance(out, Output)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss) and out.loss.requires_grad
    assert out.elbo.shape == (16,) and torch.isfinite(out.elbo).all()
    assert {"recon", "kl"} <= set(out.terms)
    for term, value in out.terms.items():
        assert value.shape == (16,), f"term {term} must be per-example"
    assert (out.terms["kl"] >= -1e-5).all(), "a KL divergence is non-negative"
    assert out.discriminator_loss is None or out.discriminator_loss.dim() == 0


def test_fit_a_few_steps_gives_a_finite_history_with_every_term(name):
    x, y = _data()
    h = fit(_model(name), (x[:100], y[:100]), (x[100:], y[100:]), epochs=3, batch_size=25, lr=3e-3,
            progress=False)
    assert len(h) == 3 and all(math.isfinite(v) for v in h.train_elbo + h.test_elbo)
    assert {"recon", "kl"} <= set(h.terms) and all(len(v) == 3 for v in h.terms.values())
    assert all(math.isfinite(v) for values in h.terms.values() for v in values)


def test_same_seed_identical_history(name):
    x, y = _data()
    runs = [fit(_model(name), (x, y), epochs=2, batch_size=40, seed=5, progress=False).as_dict()
            for _ in range(2)]
    for run in runs:
        run.pop("seconds")
    assert runs[0] == runs[1]


def test_log_weights_shape_and_log_marginal_above_the_elbo(name):
    x, y = _data(40)
    model = _model(name)
    fit(model, (x, y), epochs=2, batch_size=20, lr=3e-3, progress=False)
    log_w = model.log_weights(Batch(x, y), 7, generator=_gen())
    assert log_w.shape == (7, 40) and torch.isfinite(log_w).all()
    # log p(x) >= E[L_k] >= ELBO on average; the IS estimate with k = 300 is well above a 1-sample ELBO
    assert log_marginal(model, x, y=y, n_samples=300, generator=_gen()).mean().item() >= \
        mean_elbo(model, x, y=y, generator=_gen()) - 0.05


def test_sample_shape(name):
    model = _model(name)
    s = model.sample(5, generator=_gen())
    assert s.shape == (5, D) and torch.isfinite(s).all()


def test_checkpoint_round_trip_gives_identical_outputs(name, tmp_path):
    x, y = _data(20)
    model = _model(name)
    fit(model, (x, y), epochs=1, batch_size=10, progress=False)
    save_checkpoint(model, tmp_path / "ck")
    again, _ = load_checkpoint(tmp_path / "ck")
    assert type(again) is type(model) and again.config == model.config
    model.eval()
    a, b = model.loss(Batch(x, y), generator=_gen()), again.loss(Batch(x, y), generator=_gen())
    torch.testing.assert_close(a.elbo, b.elbo, rtol=0, atol=0)
    torch.testing.assert_close(model.log_weights(Batch(x, y), 3, generator=_gen()),
                               again.log_weights(Batch(x, y), 3, generator=_gen()), rtol=0, atol=0)


def test_bad_input_gives_clear_errors(name):
    x, y = _data(8)
    model = _model(name)
    bad = x.clone()
    bad[0, 0], bad[3, 2], bad[5, 1] = float("nan"), float("inf"), float("nan")
    with pytest.raises(ValueError, match="2 NaN and 1 infinite"):
        model.loss(Batch(bad, y))
    with pytest.raises(ValueError, match=f"shape \\(batch, {D}\\)"):
        model.loss(Batch(x[:, :-1], y))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model.loss(Batch(x.tolist(), y))
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        model.log_weights(Batch(x, y), 0)
    with pytest.raises(ValueError, match="latent_dim must be a positive int"):
        MODELS[name](input_dim=D, latent_dim=0)
    with pytest.raises(TypeError, match="input_dim must be a positive int"):
        MODELS[name](input_dim="12", latent_dim=d)


def test_parameter_groups_are_model_and_optionally_discriminator(name):
    groups = _model(name).parameter_groups()
    assert set(groups) <= {"model", "discriminator"} and "model" in groups


#: the models that train a discriminator (a "discriminator" parameter group).
WITH_DISCRIMINATOR = sorted(n for n in MODELS if "discriminator" in _model(n).parameter_groups())


def test_some_models_have_a_discriminator():
    assert {"FactorVAE", "ImplicitPriorVAE"} <= set(WITH_DISCRIMINATOR)


@pytest.mark.parametrize("name", WITH_DISCRIMINATOR)
def test_discriminator_loss_leaves_encoder_and_decoder_gradients_untouched(name):
    model = _model(name)
    groups = model.parameter_groups()
    x, y = _data(16)
    out = model.loss(Batch(x, y), generator=_gen())
    model_params = [p for p in (groups["model"]["params"] if isinstance(groups["model"], dict) else groups["model"])]
    grads = torch.autograd.grad(out.discriminator_loss, model_params, allow_unused=True)
    assert all(g is None or not g.any() for g in grads)
