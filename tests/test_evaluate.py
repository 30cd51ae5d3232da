"""Importance-sampled log p(x) against exact evidence; latent diagnostics."""
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import mutual_info_score

from linear_gaussian import make
from vae_core import VAE
from vae_core.data.shapes import FACTOR_SIZES, shapes_grid
from vae_core.evaluate import (active_units, discrete_mutual_information, evaluating, kl_per_dimension, log_marginal,
                               mutual_information_gap)


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


# -- the mutual information gap (chapter 14) ----------------------------------------------------
def test_mutual_information_matches_scikit_learn(gen):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 2000)
    b = (a + rng.integers(0, 3, 2000)) % 6
    assert discrete_mutual_information(a, b) == pytest.approx(mutual_info_score(a, b), abs=1e-12)
    assert discrete_mutual_information(a, a) == pytest.approx(-(np.bincount(a) / 2000 * np.log(np.bincount(a) / 2000)).sum())


def test_mig_is_one_for_a_perfect_code_and_invariant_to_scaling_and_order():
    f = shapes_grid().factors.numpy()
    codes = f.astype(float)
    mig, gaps, mi = mutual_information_gap(codes, f)
    assert mig == pytest.approx(1.0) and np.allclose(gaps, 1.0)
    assert np.allclose(np.diag(mi), [math.log(n) for n in FACTOR_SIZES])      # I(z_k; v_k) = H(v_k) = log n_k
    again, _, _ = mutual_information_gap(np.c_[-3 * codes[:, 2], codes[:, 0], 7 + codes[:, 3], codes[:, 1]], f)
    assert again == pytest.approx(1.0)


def test_mig_is_low_for_mixed_or_uninformative_codes():
    f = shapes_grid().factors.numpy().astype(float)
    # x and y each spread over two dimensions equally: their gaps vanish, shape and scale stay perfect
    mixed = np.c_[f[:, 0], f[:, 1], f[:, 2] + f[:, 3], f[:, 2] - f[:, 3]]
    mig, gaps, _ = mutual_information_gap(mixed, f.astype(int))
    assert gaps[:2] == pytest.approx([1.0, 1.0]) and (gaps[2:] < 0.05).all()
    assert mig == pytest.approx(0.5, abs=0.03)
    noise = np.random.default_rng(1).normal(size=(576, 5))
    assert mutual_information_gap(noise, f.astype(int))[0] < 0.05


def test_mig_input_checks():
    with pytest.raises(ValueError, match="at least 2 latent dimensions"):
        mutual_information_gap(np.zeros((4, 1)), np.zeros((4, 1), dtype=int))
    with pytest.raises(ValueError, match="same number of rows"):
        mutual_information_gap(np.zeros((4, 2)), np.zeros((5, 1), dtype=int))
    with pytest.raises(ValueError, match="zero entropy"):
        mutual_information_gap(np.random.default_rng(0).normal(size=(4, 2)), np.zeros((4, 1), dtype=int))


def test_evaluating_restores_the_mode_and_disables_gradients():
    model = VAE(8, 2, (8,))
    model.train()
    with evaluating(model):
        assert not model.training and not torch.is_grad_enabled()
    assert model.training
    model.eval()
    with pytest.raises(RuntimeError):
        with evaluating(model):
            raise RuntimeError("boom")
    assert not model.training
