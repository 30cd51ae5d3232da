"""The kernel-free conditional explorer (chapter 10): [z, onehot(y)] through the decoder in numpy and in JS."""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_core.models import CVAE, M2, VAE
from vae_core.widgets import ConditionalExplorer

ROOT = Path(__file__).resolve().parents[1]
JS_RUNNER = ROOT / "tests" / "js" / "conditional_decode.mjs"

pytestmark = pytest.mark.usefixtures("one_thread")


def _cvae(likelihood="bernoulli"):
    torch.manual_seed(0)
    return CVAE(16, 3, n_classes=5, hidden_dims=(8,), likelihood=likelihood)


def test_explorer_draws_the_models_decoder_for_every_class():
    for likelihood in ("bernoulli", "gaussian"):
        model = _cvae(likelihood)
        w = ConditionalExplorer.from_model(model, label=2)
        assert (w.latent_dim, w.n_classes, w.image_shape, w.label) == (3, 5, [4, 4], 2)
        assert w.class_names == ["0", "1", "2", "3", "4"] and w.z == [0.0, 0.0, 0.0]
        z = torch.tensor([0.5, -1.0, 2.0])
        for c in range(5):
            expected = model.decode_mean(z[None], torch.tensor([c])).detach().clamp(0, 1).numpy().reshape(4, 4)
            np.testing.assert_allclose(w.image(c, z.tolist()), expected, atol=1e-5)
        w.z, w.label = z.tolist(), 4
        np.testing.assert_allclose(w.image(), w.image(4, z.tolist()))


def test_explorer_state_is_plain_json_and_carries_the_front_end():
    w = ConditionalExplorer.from_model(_cvae(), styles={"a test 3": [0.1, 0.2, 0.3]},
                                       class_names=list("abcde"), title="t")
    state = w.get_state()
    json.dumps({k: v for k, v in state.items() if k != "_dom_classes"})
    assert state["styles"] == [{"name": "a test 3", "z": [0.1, 0.2, 0.3]}]
    assert "export default" in w._esm and "function decodeClass" in w._esm and "function mlpForward" in w._esm
    assert "import " not in "\n".join(line for line in w._esm.splitlines() if not line.lstrip().startswith("//"))
    assert ".vae-ce" in w._css


def test_m2_decoder_is_explored_the_same_way():
    torch.manual_seed(0)
    model = M2(16, 2, n_classes=3, hidden_dims=(8,), classifier_hidden=(8,))
    w = ConditionalExplorer.from_model(model)
    np.testing.assert_allclose(w.image(1, [0.3, -0.2]).ravel(),
                               model.decode_mean(torch.tensor([[0.3, -0.2]]), torch.tensor([1])).detach().numpy()[0],
                               atol=1e-5)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(n_classes=9), ValueError, "cannot be \\[z, onehot\\(y\\)\\]"),
    (dict(n_classes=5, image_shape=(5, 5)), ValueError, "height \\* width = 16"),
    (dict(n_classes=5, label=5), ValueError, "label must be a class index in 0..4"),
    (dict(n_classes=5, class_names=["a"]), ValueError, "5 names"),
    (dict(n_classes=5, initial=[0.0]), ValueError, "initial must be 3 finite numbers"),
    (dict(n_classes=5, styles={"x": [0.0, float("nan"), 1.0]}), ValueError, "styles"),
    (dict(n_classes=5, dims=[3]), ValueError, "dims"),
    (dict(n_classes=5, output="softmax"), ValueError, "output"),
    (dict(n_classes="5"), TypeError, "n_classes must be a positive int"),
])
def test_explorer_rejects_bad_arguments(kwargs, error, match):
    net, _ = _cvae().mean_decoder()
    kwargs.setdefault("image_shape", (4, 4))
    with pytest.raises(error, match=match):
        ConditionalExplorer(net, **kwargs)


def test_from_model_needs_a_conditional_model():
    with pytest.raises(TypeError, match="not a conditional model"):
        ConditionalExplorer.from_model(VAE(16, 2))


def test_javascript_decoder_equals_torch(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the JavaScript decoder cannot be run")
    model = _cvae()
    w = ConditionalExplorer.from_model(model)
    module = tmp_path / "conditional_explorer.mjs"
    module.write_text(w._esm, encoding="utf-8")          # what the browser receives
    g = torch.Generator().manual_seed(1)
    cases = [{"z": (torch.randn(3, generator=g) * 2).tolist(), "label": c % 5} for c in range(7)]
    proc = subprocess.run([node, str(JS_RUNNER), str(module)], capture_output=True, text=True, timeout=120,
                          input=json.dumps({"spec": w.spec, "cases": cases, "n_classes": 5, "output": "sigmoid"}))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["hasRender"] and "label must be an integer in 0..4" in result["bad"]
    for case, pixels, inp in zip(cases, result["intensities"], result["inputs"]):
        assert inp == case["z"] + [1.0 if k == case["label"] else 0.0 for k in range(5)]
        expected = model.decode_mean(torch.tensor([case["z"]]), torch.tensor([case["label"]])).detach().numpy()[0]
        np.testing.assert_allclose(pixels, expected, atol=1e-5)
