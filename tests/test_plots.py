"""Figures (vae_core.plots): numbers, not looks."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy.special import ndtri  # noqa: E402
from scipy.stats import norm  # noqa: E402

from vae_core import VAE, plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------------------------------- grids
def test_tile_images_puts_image_i_at_row_i_div_nrow_and_column_i_mod_nrow():
    h, w, n, nrow, pad = 3, 2, 7, 3, 1
    images = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, h * w)  # image i is all i
    images[:, 0] += 0.5  # the top-left pixel of each image is marked
    tiled = plots.tile_images(images, (h, w), nrow=nrow, pad=pad)
    assert tiled.shape == (3 * h + 2 * pad, 3 * w + 2 * pad)
    for i in range(n):
        r, c = divmod(i, nrow)
        tile = tiled[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w]
        np.testing.assert_array_equal(tile.reshape(-1), images[i].numpy())  # row-major pixels
    # the two unused tiles of the last row and the padding are empty (NaN)
    assert np.isnan(tiled[2 * (h + pad):, 1 * (w + pad):]).all()
    assert np.isnan(tiled[h, :]).all() and np.isnan(tiled[:, w]).all()


def test_tile_images_default_layout_is_square_and_accepts_3d_arrays():
    imgs = np.random.default_rng(0).random((10, 4, 5))
    tiled = plots.tile_images(imgs, (4, 5), pad=0)
    assert tiled.shape == (3 * 4, 4 * 5)  # ceil(sqrt(10)) = 4 per row, 3 rows
    np.testing.assert_array_equal(tiled[4:8, 5:10], imgs[5])


def test_image_grid_draws_the_tiles_and_the_title():
    images = torch.rand(6, 12)
    ax = plots.image_grid(images, (3, 4), nrow=3, title="six images")
    assert ax.get_title() == "six images"
    shown = ax.get_images()[0].get_array()
    np.testing.assert_allclose(np.ma.filled(shown, np.nan), plots.tile_images(images, (3, 4), 3))


def test_image_rows_labels_each_row():
    x = torch.rand(5, 6)
    ax = plots.image_rows([x, 1 - x], (2, 3), ["data", "reconstruction"], title="t")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["data", "reconstruction"]
    tiled = np.ma.filled(ax.get_images()[0].get_array(), np.nan)
    np.testing.assert_allclose(tiled[3:5, 8:11], (1 - x[2]).reshape(2, 3).numpy())


@pytest.mark.parametrize("call, err, match", [
    (lambda: plots.tile_images(torch.rand(3, 10), (3, 3)), ValueError, r"shape \(N, 9\)"),
    (lambda: plots.tile_images(torch.rand(3, 9), 9), TypeError, "image_shape must be a"),
    (lambda: plots.tile_images(torch.rand(3, 9), (3, 3), nrow=0), ValueError, "nrow"),
    (lambda: plots.image_rows([torch.rand(3, 4)], (2, 2), ["a", "b"]), ValueError, "one entry per row"),
    (lambda: plots.plot_history({"run": 3}), TypeError, "History"),
    (lambda: plots.plot_history({}, x="time"), ValueError, "examples_seen"),
])
def test_bad_input_says_what_was_expected(call, err, match):
    with pytest.raises(err, match=match):
        call()


# ------------------------------------------------------------------------------------- history
def test_plot_history_plots_train_and_test_against_examples_seen():
    from vae_core.train import History
    h = History(epoch=[1, 2, 3], train_elbo=[-200.0, -150.0, -130.0], test_elbo=[-180.0, -140.0, -128.0],
                seconds=[1.0, 1.0, 1.0], examples_seen=[100, 200, 300])
    ax = plots.plot_history({"d=2": h, "d=20": h.as_dict()}, logx=True)
    lines = ax.get_lines()
    assert len(lines) == 4
    np.testing.assert_array_equal(lines[0].get_xdata(), [100, 200, 300])
    np.testing.assert_array_equal(lines[0].get_ydata(), h.train_elbo)
    np.testing.assert_array_equal(lines[1].get_ydata(), h.test_elbo)
    assert ax.get_xlabel() == "training examples seen"
    assert "ELBO" in ax.get_ylabel() and "nats" in ax.get_ylabel()
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["d=2: train", "d=2: test", "d=20: train",
                                                                   "d=20: test"]
    ax = plots.plot_history(h, x="epoch")
    assert ax.get_xlabel() == "epoch" and ax.get_title()
    # a train_curve result: its "samples" are the examples seen
    ax = plots.plot_history({"samples": [10, 20], "train_elbo": [-3.0, -2.0], "test_elbo": [-3.5, -2.5]})
    np.testing.assert_array_equal(ax.get_lines()[1].get_xdata(), [10, 20])
    with pytest.raises(ValueError, match="no 'epoch' entry"):
        plots.plot_history({"samples": [1], "train_elbo": [-1.0], "test_elbo": [-1.0]}, x="epoch")


# ------------------------------------------------------------------------------------ manifold
@pytest.mark.parametrize("n", [1, 4, 15])
def test_manifold_grid_is_the_inverse_normal_cdf_of_a_uniform_grid(n):
    u, z = plots.manifold_grid(n)
    np.testing.assert_allclose(u, (np.arange(n) + 0.5) / n)
    assert z.shape == (n, n, 2)
    np.testing.assert_allclose(z[0, :, 0], ndtri(u), rtol=0, atol=1e-12)          # z0 along columns
    np.testing.assert_allclose(z[:, 0, 1], ndtri(u)[::-1], rtol=0, atol=1e-12)    # z1 grows upwards
    np.testing.assert_allclose(norm.cdf(z[..., 0]), np.broadcast_to(u, (n, n)), atol=1e-12)
    torch.testing.assert_close(torch.special.ndtri(torch.tensor(u)), torch.tensor(z[0, :, 0]))
    # each grid cell holds the same prior mass: the grid is equally spaced in probability
    assert np.allclose(np.diff(norm.cdf(z[0, :, 0])), 1 / n) if n > 1 else True


def test_latent_manifold_decodes_each_grid_point_into_its_tile():
    n, h, w = 5, 2, 3

    def fake_decoder(z):  # image = (z0 in the first 3 pixels, z1 in the last 3)
        return torch.cat([z[:, :1].repeat(1, 3), z[:, 1:2].repeat(1, 3)], dim=1)

    ax = plots.latent_manifold(fake_decoder, n=n, image_shape=(h, w), vmin=-3, vmax=3)
    grid = ax.manifold_z
    tiled = np.ma.filled(ax.get_images()[0].get_array(), np.nan)
    for r in range(n):
        for c in range(n):
            tile = tiled[r * h:(r + 1) * h, c * w:(c + 1) * w]
            np.testing.assert_allclose(tile[0], grid[r, c, 0], rtol=0, atol=1e-6)
            np.testing.assert_allclose(tile[1], grid[r, c, 1], rtol=0, atol=1e-6)
    assert "z_{0}" in ax.get_xlabel() and "z_{1}" in ax.get_ylabel()
    assert ax.get_title()
    labels = [float(t.get_text()) for t in ax.get_xticklabels()]
    assert labels[0] == pytest.approx(ndtri(0.5 / n), abs=0.01) and labels[-1] == pytest.approx(-labels[0], abs=0.01)


def test_manifold_of_a_vae_moves_the_chosen_dims_and_keeps_the_others_at_base():
    torch.manual_seed(0)
    model = VAE(6, 4, (5,))
    base = torch.tensor([0.3, -0.2, 0.7, 1.1])
    grid, images = plots.manifold_images(model, n=3, latent_dims=(2, 0), base=base)
    z = base.repeat(9, 1)
    z[:, 2] = torch.tensor(grid[..., 0].reshape(-1), dtype=torch.float32)
    z[:, 0] = torch.tensor(grid[..., 1].reshape(-1), dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(images, model.decode_mean(z))
    assert model.training  # restored
    with pytest.raises(ValueError, match="distinct indices"):
        plots.manifold_images(model, latent_dims=(1, 1))


def test_table_html_escapes_cells_and_checks_row_lengths():
    out = plots.table_html(["N_z", "bound"], [[3, "-1.5"], ["<b>", "a & b"]], caption="c < d")
    assert out.count("<tr>") == 3 and out.count("<td") == 4 and out.count("<th ") == 2
    assert "&lt;b&gt;" in out and "a &amp; b" in out and "<caption>c &lt; d</caption>" in out
    assert '<td style="text-align:right;' in out and ">-1.5</td>" in out
    with pytest.raises(ValueError, match="row 0 has 1 cells, expected 2"):
        plots.table_html(["a", "b"], [[1]])
