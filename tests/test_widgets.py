"""The kernel-free latent explorer: exported weights, numpy and JavaScript forward passes, widget."""
import base64
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from vae_core.widgets import (SPEC_FORMAT, LatentExplorer, decode_image, export_mlp,
                              mlp_forward_numpy)

ROOT = Path(__file__).resolve().parents[1]
JS = ROOT / "vae_core" / "widgets" / "static" / "latent_explorer.js"
JS_RUNNER = ROOT / "tests" / "js" / "mlp_forward.mjs"


def every_activation_decoder(d=3, out=12):
    """An MLP that uses every activation the browser supports, with non-default parameters."""
    return nn.Sequential(
        nn.Linear(d, 16), nn.Tanh(),
        nn.Linear(16, 16), nn.LeakyReLU(0.2),
        nn.Linear(16, 16), nn.Softplus(beta=2.0, threshold=3.0),
        nn.Linear(16, 16), nn.ELU(alpha=0.7),
        nn.Sequential(nn.Linear(16, 16), nn.ReLU()),        # nested Sequential is flattened
        nn.Linear(16, 16), nn.Sigmoid(), nn.Identity(),
        nn.Linear(16, out),
    )


@pytest.fixture
def decoder():
    torch.manual_seed(0)
    return every_activation_decoder()


def test_export_is_json_and_documents_its_layout(decoder):
    spec = export_mlp(decoder)
    assert json.loads(json.dumps(spec)) == spec
    assert spec["format"] == SPEC_FORMAT
    assert (spec["in_features"], spec["out_features"]) == (3, 12)
    names = [layer.get("name", layer["type"]) for layer in spec["layers"]]
    assert names == ["linear", "tanh", "linear", "leaky_relu", "linear", "softplus", "linear", "elu",
                     "linear", "relu", "linear", "sigmoid", "identity", "linear"]
    first = spec["layers"][0]
    w = np.frombuffer(base64.b64decode(first["weight"]), dtype="<f4").reshape(first["out"], first["in"])
    np.testing.assert_array_equal(w, decoder[0].weight.detach().numpy())


def test_numpy_forward_equals_torch(decoder):
    spec = export_mlp(decoder)
    z = torch.randn(50, 3, generator=torch.Generator().manual_seed(1)) * 3
    with torch.no_grad():
        expected = decoder(z).numpy()
    np.testing.assert_allclose(mlp_forward_numpy(spec, z.numpy()), expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(mlp_forward_numpy(spec, z[0].numpy()), expected[0], atol=1e-5, rtol=0)


def test_paper_sized_decoder_numpy_equals_torch():
    torch.manual_seed(0)
    dec = nn.Sequential(nn.Linear(20, 400), nn.Tanh(), nn.Linear(400, 784))
    z = torch.randn(8, 20)
    with torch.no_grad():
        expected = dec(z).numpy()
    np.testing.assert_allclose(mlp_forward_numpy(export_mlp(dec), z.numpy()), expected, atol=1e-5, rtol=0)


def test_book_decoders_are_accepted():
    from vae_core.nets import BernoulliMLP, GaussianMLP

    torch.manual_seed(0)
    z = torch.randn(4, 2)
    bern = BernoulliMLP(2, 64, hidden_dims=(32,))
    with torch.no_grad():
        np.testing.assert_allclose(mlp_forward_numpy(export_mlp(bern), z.numpy()), bern(z).numpy(), atol=1e-5)
    gauss = GaussianMLP(2, 64, hidden_dims=(32,))
    spec = export_mlp(gauss)                                # keeps the mean half only
    assert spec["out_features"] == 64
    with torch.no_grad():
        np.testing.assert_allclose(mlp_forward_numpy(spec, z.numpy()), gauss(z)[0].numpy(), atol=1e-5)


@pytest.mark.parametrize("bad", [nn.Dropout(0.1), nn.BatchNorm1d(4), nn.Softmax(dim=-1)])
def test_unsupported_module_is_named(bad):
    with pytest.raises(TypeError, match=type(bad).__name__):
        export_mlp(nn.Sequential(nn.Linear(2, 4), bad, nn.Linear(4, 4)))


def test_shapes_must_chain_and_a_linear_is_needed():
    with pytest.raises(ValueError, match="does not chain"):
        export_mlp(nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(5, 4)))
    with pytest.raises(ValueError, match="Linear"):
        export_mlp(nn.Sequential(nn.Tanh()))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        export_mlp("not a module")


def test_decode_image_applies_the_output_map():
    torch.manual_seed(0)
    dec = nn.Sequential(nn.Linear(2, 6))
    spec = export_mlp(dec)
    z = np.array([0.3, -2.0])
    raw = mlp_forward_numpy(spec, z)
    np.testing.assert_allclose(decode_image(spec, z, (2, 3), "sigmoid").ravel(), 1 / (1 + np.exp(-raw)))
    np.testing.assert_allclose(decode_image(spec, z, (2, 3), "identity").ravel(), np.clip(raw, 0, 1))
    with pytest.raises(ValueError, match="output"):
        decode_image(spec, z, (2, 3), "softmax")


# ------------------------------------------------------------------------ the JavaScript decoder

def run_js(spec, z, output="sigmoid"):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the JavaScript decoder cannot be run (make test installs it)")
    proc = subprocess.run([node, str(JS_RUNNER), str(JS)], input=json.dumps({"spec": spec, "z": z, "output": output}),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_javascript_forward_equals_torch(decoder):
    spec = export_mlp(decoder)
    z = torch.randn(20, 3, generator=torch.Generator().manual_seed(2)) * 3
    with torch.no_grad():
        expected = decoder(z).numpy()
    result = run_js(spec, z.tolist())
    assert result["hasRender"], "the module must export the anywidget `default { render }`"
    np.testing.assert_allclose(np.array(result["raw"]), expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.array(result["intensities"]), torch.sigmoid(torch.from_numpy(expected)).numpy(),
                               atol=1e-4, rtol=0)


def test_javascript_forward_equals_torch_paper_sized_identity_output():
    torch.manual_seed(3)
    dec = nn.Sequential(nn.Linear(2, 400), nn.ReLU(), nn.Linear(400, 784))
    z = torch.randn(3, 2) * 2
    with torch.no_grad():
        expected = dec(z).numpy()
    result = run_js(export_mlp(dec), z.tolist(), output="identity")
    np.testing.assert_allclose(np.array(result["raw"]), expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.array(result["intensities"]), np.clip(expected, 0, 1), atol=1e-4, rtol=0)


# ------------------------------------------------------------------------ the widget

def small_decoder(d=2, hidden=8, pixels=16):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, pixels))


def test_widget_defaults_and_state():
    w = LatentExplorer(small_decoder(), image_shape=(4, 4))
    assert w.latent_dim == 2 and w.dims == [0, 1] and w.z == [0.0, 0.0] and w.initial == [0.0, 0.0]
    assert w.value_range == [-3.0, 3.0] and w.output == "sigmoid" and w.scale == 56
    assert "export default" in w._esm and "mlpForward" in w._esm and ".vae-le" in w._css
    state = w.get_state()
    json.dumps({k: v for k, v in state.items() if k != "_dom_classes"})   # all plain JSON
    assert state["spec"]["format"] == SPEC_FORMAT
    np.testing.assert_allclose(w.image(), decode_image(w.spec, [0, 0], (4, 4)))
    w.z = [1.0, -1.0]
    np.testing.assert_allclose(w.image(), decode_image(w.spec, [1, -1], (4, 4)))


def test_widget_picks_at_most_eight_sliders_and_holds_the_rest():
    w = LatentExplorer(small_decoder(d=20), image_shape=(4, 4), initial=np.linspace(-1, 1, 20))
    assert w.dims == list(range(8)) and w.z == pytest.approx(list(np.linspace(-1, 1, 20)))
    w = LatentExplorer(small_decoder(d=20), image_shape=(4, 4), dims=[3, 7], value_range=(-2, 2), scale=3,
                       title="t")
    assert w.dims == [3, 7] and w.value_range == [-2.0, 2.0] and w.scale == 3 and w.title == "t"


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(image_shape=(5, 5)), ValueError, "outputs 16"),
    (dict(image_shape=(4, 4), output="softmax"), ValueError, "output"),
    (dict(image_shape=(4, 4), latent_dim=3), ValueError, "latent_dim"),
    (dict(image_shape=(4, 4), dims=[0, 0]), ValueError, "dims"),
    (dict(image_shape=(4, 4), dims=[2]), ValueError, "dims"),
    (dict(image_shape=(4, 4), value_range=(1, -1)), ValueError, "value_range"),
    (dict(image_shape=(4, 4), initial=[0.0]), ValueError, "initial"),
    (dict(image_shape=(4, 4), scale=0), ValueError, "scale"),
    (dict(image_shape=16), TypeError, "image_shape"),
])
def test_widget_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        LatentExplorer(small_decoder(), **kwargs)


@pytest.mark.slow
def test_executed_notebook_stores_the_widget_state(tmp_path):
    """Executing a notebook (as the book build does) saves the explorer's view and full state."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import torch\nfrom torch import nn\nfrom vae_core.widgets import LatentExplorer\n"
        "torch.manual_seed(0)\n"
        "LatentExplorer(nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 16)), image_shape=(4, 4))")]
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    views = [o["data"]["application/vnd.jupyter.widget-view+json"] for o in nb.cells[0].outputs
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 1
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    model = state[views[0]["model_id"]]
    assert model["model_module"] == "anywidget" and model["model_name"] == "AnyModel"
    assert model["state"]["spec"]["format"] == SPEC_FORMAT
    assert "mlpForward" in model["state"]["_esm"]


def test_explorer_colors_option():
    import torch
    from vae_core.widgets import LatentExplorer

    net = torch.nn.Sequential(torch.nn.Linear(2, 4))
    assert LatentExplorer(net, image_shape=(2, 2)).colors == "ink"
    assert LatentExplorer(net, image_shape=(2, 2), colors="grey").colors == "grey"
    with pytest.raises(ValueError, match="colors must be 'ink' or 'grey'"):
        LatentExplorer(net, image_shape=(2, 2), colors="viridis")


def test_from_model_exports_any_models_mean_decoder():
    from vae_core import MODELS
    for name, cls in MODELS.items():
        if cls.uses_labels:   # a conditional decoder takes [z, onehot(y)]: ConditionalExplorer (test_conditional_widget.py)
            continue
        torch.manual_seed(0)
        model = cls(input_dim=16, latent_dim=3)
        w = LatentExplorer.from_model(model)
        if hasattr(model, "n_categories"):   # a categorical code reaches the decoder one-hot: N*K inputs
            code = torch.nn.functional.one_hot(torch.tensor([[1, 0, 2]]), model.n_categories).float()
            z = code.flatten(1)
        else:
            z = code = torch.tensor([[0.3, -1.0, 2.0]])
        assert w.image_shape == [4, 4] and w.latent_dim == z.shape[1]
        np.testing.assert_allclose(w.image(z[0].tolist()).reshape(1, -1),
                                   model.decode_mean(code).detach().numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="not a square image"):
        LatentExplorer.from_model(MODELS["VAE"](input_dim=12, latent_dim=2))
    with pytest.raises(TypeError, match="mean_decoder"):
        LatentExplorer.from_model(torch.nn.Linear(2, 4))
