"""The decoder explorer: exported weights, the numpy and JavaScript forward passes, the four input maps."""
import base64
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vae_core.models import CVAE, M2, VAE, CategoricalVAE, VaDE
from vae_core.widgets import LatentExplorer, export_mlp
from vae_core.widgets.base import SettingError
from vae_core.widgets.export import SPEC_FORMAT, decode_image, mlp_forward_numpy
from vae_core.widgets.latent import decoder_inputs, one_hot_code

pytestmark = pytest.mark.usefixtures("one_thread")


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


# ------------------------------------------------------------------------ the JavaScript MLP runtime

def test_javascript_mlp_equals_torch_float32(decoder, run_js):
    """static/mlp.js, the one MLP runtime of every decoder explorer, runs the exported float32 weights
    as torch does: every activation, a paper-sized decoder, and the one-hot shortcut of "codes"."""
    z = torch.randn(20, 3, generator=torch.Generator().manual_seed(2)) * 3
    torch.manual_seed(3)
    paper = nn.Sequential(nn.Linear(2, 400), nn.ReLU(), nn.Linear(400, 784))
    zp = torch.randn(3, 2) * 2
    onehot = nn.Sequential(nn.Linear(4 * 5, 12), nn.Tanh(), nn.Linear(12, 16))
    codes = torch.randint(0, 5, (10, 4), generator=torch.Generator().manual_seed(4))
    out = run_js("mlp.js", f"""
const a = {json.dumps(export_mlp(decoder))}, p = {json.dumps(export_mlp(paper))}, h = {json.dumps(export_mlp(onehot))};
const raw = {json.dumps(z.tolist())}.map((v) => M.mlpForward(a, v));
const paperRaw = {json.dumps(zp.tolist())}.map((v) => M.mlpForward(p, v));
let bad = null;
try {{ M.oneHotForward(h, [0, 1, 2, 5], 5); }} catch (e) {{ bad = e.message; }}
return {{ raw, sig: raw.map((r) => M.toIntensities(r, "sigmoid")), paperRaw,
         paperIds: paperRaw.map((r) => M.toIntensities(r, "identity")),
         oneHot: {json.dumps(codes.tolist())}.map((c) => M.oneHotForward(h, c, 5)), bad }};""")
    with torch.no_grad():
        expected, expected_paper = decoder(z).numpy(), paper(zp).numpy()
        expected_onehot = onehot(F.one_hot(codes, 5).float().flatten(1)).numpy()
    np.testing.assert_allclose(np.array(out["raw"]), expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.array(out["sig"]), torch.sigmoid(torch.from_numpy(expected)).numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.array(out["paperRaw"]), expected_paper, atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.array(out["paperIds"]), np.clip(expected_paper, 0, 1), atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.array(out["oneHot"]), expected_onehot, atol=1e-4, rtol=0)
    assert "not in 0..4" in out["bad"]            # a class outside 0..K-1 is refused, not read past the row


# ------------------------------------------------------------------------ the widget

def small_decoder(d=2, hidden=8, pixels=16):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, pixels))


def test_widget_defaults_and_state():
    w = LatentExplorer(small_decoder(), image_shape=(4, 4))
    assert w.latent_dim == 2 and w.dims == [0, 1] and w.z == [0.0, 0.0]
    assert w.value_range == [-3.0, 3.0] and w.output == "sigmoid" and w.scale == 56
    assert "export default" in w._esm and "function mlpForward" in w._esm and ".vae-le" in w._css
    assert w._esm.count("function sigmoid") == 1     # one MLP runtime, inlined once
    assert w.input_map == "z" and w.initial == {"z": [0.0, 0.0]} and w.title == "Latent explorer"
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
    (dict(image_shape=(5, 5)), ValueError, "decoder outputs 16"),
    (dict(image_shape=(4, 4), output="softmax"), ValueError, "output"),
    (dict(image_shape=(4, 4), latent_dim=3), ValueError, "latent_dim"),
    (dict(image_shape=(4, 4), dims=[0, 0]), ValueError, "dims"),
    (dict(image_shape=(4, 4), dims=[2]), ValueError, "dims"),
    (dict(image_shape=(4, 4), value_range=(1, -1)), ValueError, "value_range"),
    (dict(image_shape=(4, 4), initial=[0.0]), ValueError, "initial"),
    (dict(image_shape=(4, 4), scale=0), ValueError, "scale"),
    (dict(image_shape=16), ValueError, "image_shape"),
    (dict(image_shape=(4, 4), input_map="xy"), ValueError, "input_map"),
    (dict(image_shape=(4, 4), n_categories=2), ValueError, "belong to input_map='codes'"),
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


def test_settings_are_checked_when_set_later_too():
    w = LatentExplorer(small_decoder(), image_shape=(4, 4))
    for trait, value in [("image_shape", [2, 8]), ("scale", 4), ("dims", [1]), ("z", [0.5, 0.5])]:
        setattr(w, trait, value)
    for trait, value, match in [("image_shape", [5, 5], "16"), ("colors", "viridis", "colors"),
                                ("dims", [2], "dims"), ("z", [1.0], "2 finite"), ("output", "softmax", "output")]:
        with pytest.raises(SettingError, match=match):
            setattr(w, trait, value)
    assert w.image_shape == [2, 8] and w.z == [0.5, 0.5]


def test_explorer_colors_option():
    net = torch.nn.Sequential(torch.nn.Linear(2, 4))
    assert LatentExplorer(net, image_shape=(2, 2)).colors == "ink"
    assert LatentExplorer(net, image_shape=(2, 2), colors="grey").colors == "grey"
    with pytest.raises(ValueError, match="colors must be 'ink' or 'grey'"):
        LatentExplorer(net, image_shape=(2, 2), colors="viridis")


def test_from_model_picks_the_input_map_of_every_model():
    from vae_core import MODELS
    expected = {"CVAE": "z+label", "M2": "z+label", "CategoricalVAE": "codes", "ScoreFunctionCategoricalVAE": "codes", "VaDE": "cluster"}
    for name, cls in MODELS.items():
        torch.manual_seed(0)
        model = cls(input_dim=16, latent_dim=3)
        w = LatentExplorer.from_model(model)
        assert w.input_map == expected.get(name, "z") and w.image_shape == [4, 4], name
        if w.input_map == "z":
            z = torch.tensor([[0.3, -1.0, 2.0]])
            np.testing.assert_allclose(w.image(z[0].tolist()).reshape(1, -1), model.decode_mean(z).detach().numpy(),
                                       atol=1e-5)
    with pytest.raises(ValueError, match="not a square image"):
        LatentExplorer.from_model(VAE(input_dim=12, latent_dim=2))
    with pytest.raises(TypeError, match="mean_decoder"):
        LatentExplorer.from_model(torch.nn.Linear(2, 4))


# ------------------------------------------------------------------------ the input maps

def _cvae(likelihood="bernoulli"):
    torch.manual_seed(0)
    return CVAE(16, 3, n_classes=5, hidden_dims=(8,), likelihood=likelihood)


def _categorical():
    torch.manual_seed(0)
    return CategoricalVAE(16, 4, n_categories=5, hidden_dims=(12,), activation="tanh")


def _vade():
    torch.manual_seed(0)
    m = VaDE(16, 3, n_clusters=4, hidden_dims=(8,))
    m.prior.set_parameters(torch.softmax(torch.tensor([0.0, 1.0, -1.0, 0.5]), 0), m.prior.means.detach(),
                           torch.randn(4, 3).exp())
    return m


def test_z_label_map_draws_the_models_decoder_for_every_class():
    for likelihood in ("bernoulli", "gaussian"):
        model = _cvae(likelihood)
        w = LatentExplorer.from_model(model, label=2)
        assert (w.latent_dim, w.map_data["class_names"], w.image_shape, w.label) == (3, list("01234"), [4, 4], 2)
        assert w.z == [0.0, 0.0, 0.0] and w.initial == {"z": [0.0] * 3, "label": 2}
        z = torch.tensor([0.5, -1.0, 2.0])
        for c in range(5):
            expected = model.decode_mean(z[None], torch.tensor([c])).detach().clamp(0, 1).numpy().reshape(4, 4)
            np.testing.assert_allclose(w.image(z.tolist(), label=c), expected, atol=1e-5)
        w.z, w.label = z.tolist(), 4
        np.testing.assert_allclose(w.image(), w.image(z.tolist(), label=4))
    torch.manual_seed(0)
    m2 = M2(16, 2, n_classes=3, hidden_dims=(8,), classifier_hidden=(8,))
    np.testing.assert_allclose(LatentExplorer.from_model(m2).image([0.3, -0.2], label=1).ravel(),
                               m2.decode_mean(torch.tensor([[0.3, -0.2]]), torch.tensor([1])).detach().numpy()[0],
                               atol=1e-5)
    w = LatentExplorer.from_model(_cvae(), styles={"a test 3": [0.1, 0.2, 0.3]}, class_names=list("abcde"))
    assert w.get_state()["styles"] == [{"name": "a test 3", "z": [0.1, 0.2, 0.3]}]


def test_codes_map_draws_the_models_decoder():
    model = _categorical()
    w = LatentExplorer.from_model(model)
    assert (w.latent_dim, w.map_data, w.codes, w.dims) == (4, {"n_categories": 5}, [0] * 4, [])
    c = torch.randint(0, 5, (20, 4), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model.decode_mean(F.one_hot(c, 5).float()).numpy()
    np.testing.assert_allclose(np.stack([w.image(codes=row.tolist()).ravel() for row in c]), expected, atol=1e-5)
    np.testing.assert_allclose(one_hot_code([2, 0, 4, 1], 5).reshape(4, 5).argmax(1), [2, 0, 4, 1])
    with pytest.raises(ValueError, match="class indices in 0..4"):
        one_hot_code([0, 7], 5)


def test_cluster_map_carries_the_clusters_and_decodes_like_the_model():
    model = _vade()
    w = LatentExplorer.from_model(model, title="t")
    assert (len(w.map_data["means"]), w.latent_dim, w.image_shape, w.cluster, w.z) == (4, 3, [4, 4], 0, [0.0] * 3)
    np.testing.assert_allclose(w.map_data["means"], model.cluster_means.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(w.map_data["stds"], torch.exp(0.5 * model.cluster_logvars).detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(w.map_data["weights"], model.pi.detach().numpy(), atol=1e-6)
    json.dumps({k: v for k, v in w.get_state().items() if k != "_dom_classes"})   # plain JSON
    s = np.array([1.5, -0.5, 2.0])
    z = model.cluster_means[2].detach() + torch.exp(0.5 * model.cluster_logvars[2]).detach() * torch.tensor(s).float()
    np.testing.assert_allclose(w.decoder_input(s, cluster=2), z.numpy(), atol=1e-6)
    with torch.no_grad():
        expected = model.decode_mean(z).view(4, 4).numpy()
    np.testing.assert_allclose(w.image(s, cluster=2), expected, atol=1e-5)
    w.cluster, w.z = 1, [0.0, 1.0, 0.0]
    assert not np.allclose(w.image(), w.image(s, cluster=2))


@pytest.mark.parametrize("make, kwargs, match", [
    (_cvae, dict(n_classes=9), "cannot be \\[z, onehot\\(y\\)\\]"),
    (_cvae, dict(n_classes=5, label=5), "label must be an int in \\[0, 5\\)"),
    (_cvae, dict(n_classes=5, class_names=["a"]), "5 names"),
    (_cvae, dict(n_classes=5, initial=[0.0]), "3 finite numbers"),
    (_cvae, dict(n_classes=5, styles={"x": [0.0, float("nan"), 1.0]}), "styles"),
    (_cvae, dict(n_classes="5"), "n_classes, a positive int"),
    (_categorical, dict(n_categories=3), "divides the decoder's input size 20"),
    (_categorical, dict(n_categories=5, initial=[0, 1, 2, 5]), "4 class indices in 0..4"),
    (_vade, dict(stds=-np.ones((4, 3))), "stds must be > 0"),
    (_vade, dict(means=np.zeros((4, 2))), "means must have shape"),
    (_vade, dict(weights=[0.5, 0.5]), "weights must be 4"),
    (_vade, dict(cluster=4), "cluster must be"),
    (_vade, dict(value_range=(0, 3)), "low < 0 < high"),
])
def test_input_maps_reject_bad_arguments(make, kwargs, match):
    found = {k: v for k, v in decoder_inputs(make()).items()
             if k not in ("n_classes", "n_categories")}
    if found["input_map"] == "cluster":
        found["stds"] = torch.ones(4, 3)
    with pytest.raises(ValueError, match=match):
        LatentExplorer(**{**found, **kwargs})


@pytest.mark.parametrize("make", [_cvae, _categorical, _vade, lambda: VAE(16, 3, hidden_dims=(8,))])
def test_javascript_input_maps_equal_numpy_and_torch(make, run_js):
    """latent.js draws, for each input map, what LatentExplorer.image computes and the model decodes."""
    model = make()
    w = LatentExplorer.from_model(model)
    rng = np.random.default_rng(0)
    states = [{"z": rng.uniform(-3, 3, w.latent_dim).tolist() if w.input_map != "codes" else [],
               "label": int(rng.integers(5)) if w.input_map == "z+label" else 0,
               "codes": rng.integers(0, 5, 4).tolist() if w.input_map == "codes" else [],
               "cluster": int(rng.integers(4)) if w.input_map == "cluster" else 0} for _ in range(5)]
    out = run_js("latent.js", f"""
const spec = {json.dumps(w.spec)}, data = {json.dumps(w.map_data)};
let bad = null;
try {{ M.withLabel([0, 0], 5, 5); }} catch (e) {{ bad = e.message; }}
return {{ pixels: {json.dumps(states)}.map((st) => M.decodePixels(spec, {json.dumps(w.input_map)}, data, st, {json.dumps(w.output)})),
         input: M.withLabel([0.5, -1], 2, 4), bad, render: typeof M.default.render }};""")
    assert out["render"] == "function" and "label must be an integer in 0..4" in out["bad"]
    assert out["input"] == [0.5, -1, 0, 0, 1, 0]
    for st, pixels in zip(states, out["pixels"]):
        np.testing.assert_allclose(np.array(pixels).reshape(4, 4), w.image(st["z"], label=st["label"], codes=st["codes"],
                                                                         cluster=st["cluster"]), atol=1e-5)
        x = torch.from_numpy(w.decoder_input(st["z"], label=st["label"], codes=st["codes"], cluster=st["cluster"])).float()[None]
        with torch.no_grad():
            if w.input_map == "z+label":
                expected = model.decode_mean(x[:, :3], torch.tensor([st["label"]]))
            elif w.input_map == "codes":
                expected = model.decode_mean(F.one_hot(torch.tensor([st["codes"]]), 5).float())
            else:
                expected = model.decode_mean(x)
        np.testing.assert_allclose(pixels, expected.numpy().ravel(), atol=1e-5)
