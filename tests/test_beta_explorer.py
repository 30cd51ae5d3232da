"""The β explorer of chapter 9: packed images, the measured sweep, and its JavaScript against numpy."""
import json

import numpy as np
import pytest
import torch

from vae_core import VAE
from vae_core.widgets import BetaExplorer
from vae_core.widgets.frontend import pack_u8, unpack_u8
from vae_core.widgets.precomputed import _fmt_beta, elbo_levels, rate_distortion, sweep_panels, traversal_images

pytestmark = pytest.mark.usefixtures("one_thread")

SHAPE = (3, 4)
P = 12


def _models(betas=(0.5, 1.0, 4.0)):
    out = {}
    for i, b in enumerate(betas):
        torch.manual_seed(i)
        out[b] = VAE(P, 3, hidden_dims=(8,))
        out[b].beta = b
    return out


def _x(n=20):
    return (torch.rand(n, P, generator=torch.Generator().manual_seed(0)) > 0.5).float()


def test_pack_unpack_round_trip_to_a_byte():
    a = np.random.default_rng(0).random((2, 5, P))
    a[0, 0, :3] = [0.0, 1.0, 0.5]
    b = unpack_u8(pack_u8(a), a.shape) / 255
    assert np.abs(a - b).max() <= 0.5 / 255 + 1e-12
    assert b[0, 0, 0] == 0 and b[0, 0, 1] == 1
    np.testing.assert_array_equal(unpack_u8(pack_u8(torch.as_tensor(a))) / 255, b.ravel())
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pack_u8(a * 2)


def test_sweep_measures_rate_distortion_reconstructions_and_traversals():
    models, x = _models(), _x()
    p = sweep_panels(models, x, x[:4], rows=2, values=[-2.0, 0.0, 2.0], n_samples=5,
                     generator=torch.Generator().manual_seed(1))
    assert p["betas"] == [0.5, 1.0, 4.0]
    assert p["recons"].shape == (3, 4, P) and p["traversals"].shape == (3, 2, 3, P)
    m = models[4.0]
    r, d = rate_distortion(m, x, n_samples=5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        t = m.elbo(x, n_samples=5, generator=torch.Generator().manual_seed(1))
        mu, logvar = m.encode(x)
    assert r == pytest.approx(t.kl.mean().item()) and d == pytest.approx(-t.recon.mean().item())
    kl_dims = (0.5 * (mu ** 2 + logvar.exp() - logvar - 1)).mean(0)
    assert p["traversal_dims"][2] == torch.argsort(kl_dims, descending=True)[:2].tolist()
    np.testing.assert_allclose(p["traversal_kl"][2], kl_dims[p["traversal_dims"][2]].numpy(), rtol=1e-5)
    # row r of a traversal: the encoder mean of the first image with one coordinate replaced
    j = p["traversal_dims"][2][1]
    z = mu[0].repeat(3, 1)
    z[:, j] = torch.tensor([-2.0, 0.0, 2.0])
    with torch.no_grad():
        np.testing.assert_allclose(p["traversals"][2, 1], m.decode_mean(z).numpy(), rtol=1e-6)
        np.testing.assert_allclose(p["recons"][2], m.decode_mean(mu[:4]).numpy(), rtol=1e-6)
    assert traversal_images(m, mu[0], [0], [1.0]).shape == (1, 1, P)


def _explorer(**kw):
    models, x = _models(), _x()
    return BetaExplorer.from_models(models, x, x[:4], image_shape=SHAPE, rows=2, values=[-2.0, 0.0, 2.0],
                                    generator=torch.Generator().manual_seed(1), **kw)


def test_explorer_state_and_readout():
    w = _explorer(index=1)
    assert w.betas == [0.5, 1.0, 4.0] and w.index == 1 and w.image_shape == list(SHAPE)
    assert w.recon_images(2).shape == (4, *SHAPE) and w.traversal_grid(0).shape == (2, 3, *SHAPE)
    r, d = w.rates[1], w.distortions[1]
    assert w.readout() == f"β = 1: rate R = {r:.2f} nats, distortion D = {d:.2f} nats, ELBO = −(D + R) = {-(r + d):.2f} nats"
    assert w.levels == elbo_levels(w.rates, w.distortions)
    assert w.levels[0] == min(a + b for a, b in zip(w.rates, w.distortions))
    assert w.levels[-1] == max(a + b for a, b in zip(w.rates, w.distortions)) and len(w.levels) == 5


@pytest.mark.parametrize("change, match", [
    (dict(index=3), "index must be an int"),
    (dict(betas=[1.0, 0.5, 4.0]), "strictly increasing"),
    (dict(rates=[1.0, 2.0]), "same length"),
    (dict(image_shape=(4, 4)), "originals must have shape"),
    (dict(traversal_values=[0.0]), "traversals must have shape"),
])
def test_explorer_rejects_inconsistent_arrays(change, match):
    models, x = _models(), _x()
    p = sweep_panels(models, x, x[:4], rows=2, values=[-2.0, 0.0, 2.0])
    p.update(change)
    image_shape = p.pop("image_shape", SHAPE)
    with pytest.raises(ValueError, match=match):
        BetaExplorer(image_shape=image_shape, **p)


def test_javascript_helpers_equal_python(run_js):
    w = _explorer()
    betas = [0.001, 0.125, 0.5, 1.0, 2.0, 4.0, 16.0, 1000.0, 1.0 / 3.0]
    res = run_js("beta_explorer.js", f"""
const state = {json.dumps({"recons": w.recons, "rates": w.rates, "distortions": w.distortions, "betas": w.betas})};
return {{
  recons: state.recons.map((s) => M.unpackImages(s)),
  levels: M.elboLevels(state.rates, state.distortions),
  levels3: M.elboLevels([1.5, 2.25, 30.0], [80.0, 70.5, 60.25], 3),
  readouts: state.betas.map((b, i) => M.readout(b, state.rates[i], state.distortions[i])),
  betas: {json.dumps(betas)}.map(M.formatBeta),
  hasRender: typeof M.default.render === "function",
}};""")
    for i in range(3):
        np.testing.assert_array_equal(res["recons"][i], w.recon_images(i).ravel())
    np.testing.assert_allclose(res["levels"], w.levels, rtol=1e-15)
    np.testing.assert_allclose(res["levels3"], elbo_levels([1.5, 2.25, 30.0], [80.0, 70.5, 60.25], 3), rtol=1e-15)
    assert res["readouts"] == [w.readout(i) for i in range(3)]
    assert res["betas"] == [_fmt_beta(b) for b in betas]
    assert res["hasRender"]
