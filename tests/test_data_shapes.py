"""vae_core.data.shapes: the synthetic shapes with known factors (chapter 14)."""

import numpy as np
import pytest

from vae_core.data.shapes import SCALES, render_shapes, shapes_grid


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
