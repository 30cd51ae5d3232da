import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VAE_CORE_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def gen():
    """A seeded generator: tests are reproducible."""
    return torch.Generator().manual_seed(1234)


def mc_close(estimate_samples: torch.Tensor, exact: float, n_se: float = 4.0, atol: float = 1e-9):
    """Assert the mean of i.i.d. Monte-Carlo samples is within ``n_se`` standard errors of ``exact``."""
    mean = estimate_samples.double().mean().item()
    se = estimate_samples.double().std().item() / len(estimate_samples) ** 0.5
    assert abs(mean - exact) <= n_se * se + atol, f"MC mean {mean:.6g} vs exact {exact:.6g} (se {se:.3g})"


@pytest.fixture(scope="module")
def one_thread():
    """Small tensors: one thread avoids OpenMP synchronisation costs (much faster on a busy machine).

    Use it for a whole module with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
