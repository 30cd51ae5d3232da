"""The categorical code explorer (chapter 12): its decoder in numpy and in JavaScript equals the model's."""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vae_core.models import VAE, CategoricalVAE
from vae_core.widgets.categorical import CategoricalExplorer, one_hot_code

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "tests" / "js" / "categorical_forward.mjs"
N, K = 4, 5


@pytest.fixture
def model():
    torch.manual_seed(0)
    return CategoricalVAE(16, N, n_categories=K, hidden_dims=(12,), activation="tanh")


def codes(n=20, seed=1):
    return torch.randint(0, K, (n, N), generator=torch.Generator().manual_seed(seed))


def test_numpy_image_equals_the_models_decoder(model):
    w = CategoricalExplorer.from_model(model)
    assert (w.n_latents, w.n_categories, w.image_shape) == (N, K, [4, 4])
    c = codes()
    with torch.no_grad():
        expected = model.decode_mean(F.one_hot(c, K).float()).numpy()
    got = np.stack([w.image(row.tolist()).ravel() for row in c])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert w.codes == [0] * N
    np.testing.assert_allclose(one_hot_code([2, 0, 4, 1], K).reshape(N, K).argmax(1), [2, 0, 4, 1])


def test_javascript_decoder_equals_torch(model):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the JavaScript decoder cannot be run")
    w = CategoricalExplorer.from_model(model)
    c = codes(30)
    payload = {"esm": CategoricalExplorer._esm, "spec": w.spec, "codes": c.tolist(), "K": K}
    proc = subprocess.run([node, str(RUNNER)], input=json.dumps(payload), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["hasRender"]
    with torch.no_grad():
        logits = model.decode(F.one_hot(c, K).float()).numpy()
    np.testing.assert_allclose(np.array(out["raw"]), logits, atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.array(out["intensities"]), 1 / (1 + np.exp(-logits)), atol=1e-5, rtol=0)
    assert "not in 0..4" in out["error"]            # a class outside 0..K-1 is refused, not read past the row


def test_bad_arguments_are_explained(model):
    net, _ = model.mean_decoder()
    with pytest.raises(ValueError, match="must equal the decoder's input size 20"):
        CategoricalExplorer(net, 3, K, image_shape=(4, 4))
    with pytest.raises(ValueError, match="height\\*width = 16"):
        CategoricalExplorer(net, N, K, image_shape=(3, 5))
    with pytest.raises(ValueError, match="initial must be 4 class indices in 0..4"):
        CategoricalExplorer(net, N, K, image_shape=(4, 4), initial=[0, 1, 2, 5])
    with pytest.raises(TypeError, match="categorical latents"):
        CategoricalExplorer.from_model(VAE(16, 2))
    with pytest.raises(ValueError, match="class indices in 0..4"):
        one_hot_code([0, 7], K)
