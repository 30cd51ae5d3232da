"""The synthetic shapes with known factors and the mutual information gap (chapter 14)."""
import math

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from vae_core.factors import (FACTOR_SIZES, SCALES, discrete_mutual_information, mutual_information_gap,
                              render_shapes, shapes_grid)


def test_grid_has_every_combination_once_and_draws_the_right_pictures():
    data = shapes_grid()
    assert data.images.shape == (576, 256) and data.factors.shape == (576, 4)
    assert len({tuple(r) for r in data.factors.tolist()}) == 576
    assert set(data.images.unique().tolist()) == {0.0, 1.0}
    imgs = data.images.view(-1, 16, 16).numpy()
    f = data.factors.numpy()
    for img, (shape, scale, x, y) in zip(imgs[::97], f[::97]):
        s = SCALES[scale]
        expected = {0: (2 * s + 1) ** 2, 1: 2 * (2 * s + 1) - 1, 2: (2 * s + 1) ** 2 - (2 * s - 1) ** 2}[shape]
        assert img.sum() == expected
        rows, cols = np.nonzero(img)
        assert rows.mean() == pytest.approx(max(SCALES) + y) and cols.mean() == pytest.approx(max(SCALES) + x)
    # distinct factors give distinct pictures
    assert len({img.tobytes() for img in imgs}) == 576


def test_render_rejects_bad_factors():
    with pytest.raises(ValueError, match="factor 'x' takes values 0..7"):
        render_shapes(np.array([[0, 0, 8, 0]]))
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        render_shapes(np.zeros((3, 3), dtype=int))


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
