"""The traversal explorer (chapter 14): the pictures it carries are the models' decodings, and the
browser's JavaScript reads back exactly those pictures."""
import json

import numpy as np
import pytest
import torch

from vae_core.models import FactorVAE, LadderVAE, VAE
from vae_core.widgets import TraversalExplorer
from vae_core.widgets.precomputed import traversal_images

pytestmark = pytest.mark.usefixtures("one_thread")


def _models():
    torch.manual_seed(0)
    return {"VAE": VAE(16, 3, hidden_dims=(8,)), "FactorVAE": FactorVAE(16, 3, hidden_dims=(8,)),
            "LadderVAE": LadderVAE(16, 2, lower_latent_dims=(3,), hidden_dims=8)}


def test_traversal_images_are_the_decoders_means():
    model = _models()["VAE"]
    base = torch.tensor([0.5, -1.0, 2.0])
    values = [-2.0, 0.0, 1.5]
    imgs = traversal_images(model, base, [2, 0], values)
    assert imgs.shape == (2, 3, 16)
    for r, j in enumerate([2, 0]):
        for i, v in enumerate(values):
            z = base.clone()
            z[j] = v
            np.testing.assert_allclose(imgs[r, i], model.decode_mean(z[None])[0].detach().numpy(), atol=1e-6)
    # the traversed coordinate really moves the picture, the base code is kept elsewhere
    assert not np.allclose(imgs[0, 0], imgs[0, 2])


def test_from_models_panels_rows_and_base_code():
    models = _models()
    x = (torch.rand(16, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    w = TraversalExplorer.from_models(models, image_shape=(4, 4), base_x=x, dims={"VAE": [2, 1]}, n_values=5)
    assert [p["name"] for p in w.panels] == ["VAE", "FactorVAE", "LadderVAE"]
    assert w.panels[0]["rows"] == ["z[2]", "z[1]"] and w.panels[2]["rows"] == ["z[0]", "z[1]"]
    assert w.values == pytest.approx(np.linspace(-3, 3, 5).tolist()) and w.index == 2
    base = models["FactorVAE"].encode(x[None])[0][0].detach()
    expected = traversal_images(models["FactorVAE"], base, [1], w.values)[0, 4]
    assert np.abs(w.image(1, 1, 4).astype(int) - np.rint(expected * 255)).max() <= 1     # 8-bit rounding
    # the Ladder VAE traverses its top layer through the prior means of the layers below
    expected = models["LadderVAE"].decode_top(torch.tensor([[0.0, 3.0]]))[0].detach().numpy()
    assert np.abs(w.image(2, 1, 4).astype(int) - np.rint(expected * 255)).max() <= 1


def test_bad_arguments():
    good = [{"name": "a", "rows": ["z[0]"], "images": np.zeros((1, 3, 4))}]
    with pytest.raises(ValueError, match="increasing"):
        TraversalExplorer(good, [0.0, 0.0, 1.0], (2, 2))
    with pytest.raises(ValueError, match=r"shape \(rows=1, n_values=3, pixels=9\)"):
        TraversalExplorer(good, [0.0, 1.0, 2.0], (3, 3))
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        TraversalExplorer([{**good[0], "images": np.full((1, 3, 4), 2.0)}], [0.0, 1.0, 2.0], (2, 2))
    with pytest.raises(ValueError, match="index must be an int in \\[0, 3\\)"):
        TraversalExplorer(good, [0.0, 1.0, 2.0], (2, 2), index=3)


def test_javascript_reads_back_the_same_pictures(run_js):
    w = TraversalExplorer.from_models(_models(), image_shape=(4, 4), n_values=7)
    queries = [[0, 0], [1, 6], [2, 3]]
    out = run_js("traversal_explorer.js", f"""
const bytes = M.unpackU8({json.dumps(w.panels[0]["images"])});
let outOfRange = null;
try {{ M.frame(bytes, 0, 7, 7, 16); }} catch (err) {{ outOfRange = err.message; }}
return {{ frames: {json.dumps(queries)}.map(([row, index]) => M.frame(bytes, row, index, 7, 16)), outOfRange,
         hasRender: typeof M.default.render === "function" }};""")
    assert out["hasRender"] and "no picture" in out["outOfRange"]
    for (row, index), got in zip(queries, out["frames"]):
        np.testing.assert_array_equal(np.array(got), w.image(0, row, index))
