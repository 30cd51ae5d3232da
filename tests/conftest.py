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


@pytest.fixture
def run_js(tmp_path):
    """``run_js(module, body)``: run JavaScript under node against an explorer's front end.

    ``module`` (a file of ``vae_core/widgets/static``) is imported as ``M``, exactly as the browser
    gets it (:func:`vae_core.widgets.frontend.esm_source`, siblings inlined); ``body`` is the body of
    an async function whose return value comes back through JSON (typed arrays as lists). Skips
    when node is not installed.
    """
    import itertools
    import json
    import shutil
    import subprocess

    from vae_core.widgets.frontend import esm_source

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the explorers' JavaScript cannot be run (make test installs it)")
    calls = itertools.count()

    def run(module: str, body: str):
        k = next(calls)
        (tmp_path / f"mod{k}.mjs").write_text(esm_source(module), encoding="utf-8")
        harness = tmp_path / f"harness{k}.mjs"
        harness.write_text(
            f'import * as M from "./mod{k}.mjs";\nconst out = await (async () => {{\n{body}\n}})();\n'
            "process.stdout.write(JSON.stringify(out, (key, v) => (ArrayBuffer.isView(v) ? Array.from(v) : v)));\n",
            encoding="utf-8")
        proc = subprocess.run([node, str(harness)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"node failed on {module}:\n{proc.stderr[-3000:]}"
        return json.loads(proc.stdout)

    return run
