"""vae_core.data.toys: the pinwheel of curved clusters and the orthonormal lift (chapter 13)."""
import math

import numpy as np
import pytest
import torch

from vae_core.data.toys import lift, pinwheel


def test_pinwheel_shapes_labels_and_seed():
    d = pinwheel(50, 4, seed=3)
    assert d.x.shape == (200, 2) and d.x.dtype == torch.float32
    assert d.y.dtype == torch.int64 and torch.bincount(d.y).tolist() == [50] * 4
    again = pinwheel(50, 4, seed=3)
    assert torch.equal(d.x, again.x) and torch.equal(d.y, again.y)
    assert not torch.equal(d.x, pinwheel(50, 4, seed=4).x)


def test_pinwheel_follows_its_definition():
    """Undo the rotation of each point: the radial coordinate is N(1, s_r^2), the tangential one N(0, s_t^2)."""
    rs, ts, rate, K = 0.3, 0.05, 0.25, 5
    d = pinwheel(20_000, K, radial_std=rs, tangential_std=ts, rate=rate, seed=0, shuffle=False)
    x, y = d.x.double().numpy(), d.y.numpy()
    # the radius is |u| and does not depend on the rotation; |u| ~ |(1 + rs e1, ts e2)|
    r = np.linalg.norm(x, axis=1)
    # for such a thin blob, the radius equals u_1 up to O(ts^2): mean 1, sd rs
    assert abs(r.mean() - 1.0) < 0.01 and abs(r.std() - rs) < 0.01
    # recover u_1 exactly by solving angle(x) = 2 pi k / K + rate e^{u_1} + atan2(u_2, u_1) for small u_2:
    # the arm's mean direction at radius r is 2 pi k/K + rate e^{r}; points lie within a few ts/r of it
    expected = 2 * math.pi * y / K + rate * np.exp(r)
    off = np.angle(np.exp(1j * (np.arctan2(x[:, 1], x[:, 0]) - expected)))
    assert np.median(np.abs(off)) < 2 * ts          # within the arm's thickness (radians at r ~ 1)
    # with rate 0 the arms are straight Gaussian blobs centred at angle 2 pi k / K
    s = pinwheel(5000, K, radial_std=rs, tangential_std=ts, rate=0.0, seed=1, shuffle=False)
    for k in range(K):
        mean = s.x[s.y == k].double().mean(0).numpy()
        np.testing.assert_allclose(mean, [math.cos(2 * math.pi * k / K), math.sin(2 * math.pi * k / K)], atol=0.02)


def test_pinwheel_curvature_defeats_a_mixture_of_ellipses():
    """The point of the data set: a Gaussian mixture fitted to straight arms finds them, to curved arms it does not."""
    from sklearn.mixture import GaussianMixture

    from vae_core.evaluate import cluster_accuracy
    straight = pinwheel(300, 5, rate=0.0, seed=0)
    curved = pinwheel(300, 5, rate=0.6, seed=0)
    acc = {name: cluster_accuracy(d.y, GaussianMixture(5, n_init=3, random_state=0).fit_predict(d.x.numpy()))
           for name, d in (("straight", straight), ("curved", curved))}
    assert acc["straight"] > 0.97 and acc["curved"] < 0.9, acc


def test_lift_keeps_distances_up_to_the_noise():
    p = pinwheel(100, 3, seed=0).x
    x, A = lift(p, 10, noise=0.0, seed=2)
    assert x.shape == (300, 10) and A.shape == (10, 2)
    torch.testing.assert_close(A.T @ A, torch.eye(2), atol=1e-6, rtol=0)
    sq = lambda a: ((a[:, None, :].double() - a[None, :, :].double()) ** 2).sum(-1)     # squared distances
    torch.testing.assert_close(sq(x), sq(p), atol=1e-5, rtol=0)
    torch.testing.assert_close(x @ A, p, atol=1e-5, rtol=0)                       # A^T undoes the map
    noisy, _ = lift(p, 10, noise=0.05, seed=2)
    resid = noisy - x
    assert abs(resid.std().item() - 0.05) < 0.005


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="n_per_arm must be a positive int"):
        pinwheel(0)
    with pytest.raises(TypeError, match="n_arms must be a positive int"):
        pinwheel(10, 2.5)
    with pytest.raises(ValueError, match="radial_std must be a finite number >= 0"):
        pinwheel(10, radial_std=-1.0)
    with pytest.raises(ValueError, match="scale must be > 0"):
        pinwheel(10, scale=0.0)
    with pytest.raises(TypeError, match="seed must be an int"):
        pinwheel(10, seed=1.5)
    with pytest.raises(ValueError, match="shape \\(N, d\\)"):
        lift(torch.zeros(5), 3)
    with pytest.raises(ValueError, match="dim must be at least"):
        lift(torch.zeros(5, 4), 3)
