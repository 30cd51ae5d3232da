"""vae_core.data.sources (chapter 14): independent sources mixed into 10-D, their binned labels, and the
angle between a model's code axes and the source axes."""
import math

import numpy as np
import pytest
import torch

from vae_core.data.sources import mixed_sources, rotation_to_sources, source_factors


def test_mixed_sources_shapes_moments_and_embedding():
    u = mixed_sources(20_000, "uniform", seed=3)
    g = mixed_sources(20_000, "gaussian", seed=3)
    assert u.x.shape == (20_000, 10) and u.sources.shape == (20_000, 2) and u.x.dtype == torch.float32
    torch.testing.assert_close(u.mixing, g.mixing)                       # the same embedding for both kinds
    torch.testing.assert_close(u.mixing.T @ u.mixing, torch.eye(2), atol=1e-6, rtol=0)   # orthonormal columns
    assert u.sources.abs().max() <= math.sqrt(3) + 1e-6
    for d in (u, g):
        torch.testing.assert_close(d.sources.var(0), torch.ones(2), atol=0.05, rtol=0)
        # isotropic in the source plane: PCA has no preferred axes
        proj = d.x @ d.mixing
        torch.testing.assert_close(torch.cov(proj.T), torch.eye(2) + 0.05 ** 2 * torch.eye(2), atol=0.05, rtol=0)
        resid = d.x - d.sources @ d.mixing.T
        assert resid.std().item() == pytest.approx(0.05, rel=0.05)
    torch.testing.assert_close(mixed_sources(10, seed=1).x, mixed_sources(10, seed=1).x)
    with pytest.raises(ValueError, match="kind"):
        mixed_sources(10, "laplace")
    with pytest.raises(ValueError, match="data_dim"):
        mixed_sources(10, n_sources=3, data_dim=2)


def test_rotated_uniform_sources_are_dependent_in_the_rotated_axes():
    """The coordinates of a 45-degree-rotated square are uncorrelated but dependent (their squares
    correlate negatively); a rotated Gaussian's are independent."""
    R = torch.tensor([[1.0, -1.0], [1.0, 1.0]]) / math.sqrt(2)
    for kind, dependent in (("uniform", True), ("gaussian", False)):
        s = mixed_sources(50_000, kind, seed=0).sources @ R.T
        assert abs(torch.corrcoef(s.T)[0, 1]) < 0.02
        c2 = torch.corrcoef((s ** 2).T)[0, 1].item()
        assert (c2 < -0.2) if dependent else (abs(c2) < 0.02)


def test_source_factors_are_equal_mass_bins():
    s = mixed_sources(1000, "gaussian", seed=0).sources
    f = source_factors(s, 10)
    assert f.shape == (1000, 2) and f.min() == 0 and f.max() == 9
    for j in range(2):
        counts = np.bincount(f[:, j], minlength=10)
        assert counts.min() >= 99 and counts.max() <= 101
        # monotone in the source
        order = np.argsort(s[:, j].numpy())
        assert (np.diff(f[order, j]) >= 0).all()
    with pytest.raises(ValueError, match="n_bins"):
        source_factors(s, 1)


@pytest.mark.parametrize("angle, expected", [(0, 0), (10, 10), (30, 30), (45, 45), (60, 30), (100, 10), (-20, 20)])
def test_rotation_to_sources_reads_the_angle_modulo_axis_symmetries(angle, expected):
    s = mixed_sources(3000, "uniform", seed=0).sources
    a = math.radians(angle)
    R = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    codes = s @ R.T
    assert rotation_to_sources(codes, s) == pytest.approx(expected, abs=0.05)   # sample standardisation
    # scaling, a shift, a reflection and a swap of the code axes change nothing
    flipped = (codes * torch.tensor([-3.0, 0.5]) + 2)[:, [1, 0]]
    assert rotation_to_sources(flipped, s) == pytest.approx(expected, abs=0.05)


def test_rotation_to_sources_checks_its_input():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        rotation_to_sources(torch.zeros(5, 3), torch.zeros(5, 2))
    with pytest.raises(TypeError):
        rotation_to_sources(np.zeros((5, 2)), torch.zeros(5, 2))
