"""The kernel-free cluster explorer of chapter 13: its state, its numpy image, and its JavaScript."""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_core.models import VaDE
from vae_core.widgets import ClusterExplorer, esm_source

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "tests" / "js" / "cluster_explorer.mjs"


@pytest.fixture
def model():
    torch.manual_seed(0)
    m = VaDE(16, 3, n_clusters=4, hidden_dims=(8,))
    with torch.no_grad():
        m.pi_logits.copy_(torch.tensor([0.0, 1.0, -1.0, 0.5]))
        m._cluster_logvars.copy_(torch.randn(4, 3))
    return m


def test_from_model_carries_the_clusters_and_decodes_like_the_model(model):
    w = ClusterExplorer.from_model(model, title="t")
    assert (w.n_clusters, w.latent_dim, w.image_shape, w.cluster, w.s) == (4, 3, [4, 4], 0, [0.0] * 3)
    np.testing.assert_allclose(w.means, model.cluster_means.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(w.stds, torch.exp(0.5 * model.cluster_logvars).detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(w.weights, model.pi.detach().numpy(), atol=1e-6)
    json.dumps({k: v for k, v in w.get_state().items() if k != "_dom_classes"})   # plain JSON
    s = np.array([1.5, -0.5, 2.0])
    z = model.cluster_means[2].detach() + torch.exp(0.5 * model.cluster_logvars[2]).detach() * torch.tensor(s).float()
    np.testing.assert_allclose(w.code(2, s), z.numpy(), atol=1e-6)
    with torch.no_grad():
        expected = model.decode_mean(z).view(4, 4).numpy()
    np.testing.assert_allclose(w.image(2, s), expected, atol=1e-5)
    w.cluster, w.s = 1, [0.0, 1.0, 0.0]
    assert not np.allclose(w.image(), w.image(2, s))


@pytest.mark.parametrize("kwargs, match", [
    (dict(stds=-np.ones((4, 3))), "stds must be > 0"),
    (dict(means=np.zeros((4, 2))), "means must have shape"),
    (dict(weights=[0.5, 0.5]), "weights must be 4"),
    (dict(cluster=4), "cluster must be"),
    (dict(image_shape=(3, 5)), "image_shape"),
    (dict(value_range=(0, 3)), "value_range"),
    (dict(dims=[3]), "dims"),
])
def test_bad_arguments_are_explained(model, kwargs, match):
    args = dict(decoder=model.mean_decoder()[0], means=model.cluster_means.detach(),
                stds=torch.ones(4, 3), image_shape=(4, 4))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ClusterExplorer(**args)


def test_from_model_needs_a_mixture_prior():
    from vae_core.models import VAE
    with pytest.raises(TypeError, match="mixture-prior"):
        ClusterExplorer.from_model(VAE(16, 2))


def test_javascript_equals_numpy_and_torch(model, tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the JavaScript decoder cannot be run")
    w = ClusterExplorer.from_model(model)
    esm = tmp_path / "cluster_explorer_esm.js"
    esm.write_text(esm_source("cluster_explorer.js"), encoding="utf-8")
    rng = np.random.default_rng(0)
    queries = [[int(c), rng.uniform(-3, 3, 3).tolist()] for c in [0, 1, 2, 3, 2]]
    payload = dict(spec=w.spec, means=w.means, stds=w.stds, queries=queries, output=w.output)
    proc = subprocess.run([node, str(RUNNER), str(esm)], input=json.dumps(payload), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["hasRender"]
    for (c, s), z, pix in zip(queries, out["z"], out["intensities"]):
        np.testing.assert_allclose(z, w.code(c, s), atol=1e-12)
        np.testing.assert_allclose(np.array(pix).reshape(4, 4), w.image(c, s), atol=1e-5)
        with torch.no_grad():
            np.testing.assert_allclose(pix, model.decode_mean(torch.tensor(z).float()).numpy(), atol=1e-5)
