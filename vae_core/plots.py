r"""Figures the chapters share: image grids, ELBO curves and the learned 2-D manifold.

Every function draws on a matplotlib ``Axes`` (a new figure when ``ax`` is ``None``), labels it,
and returns it, so a chapter can place several panels in one figure.

* :func:`tile_images` / :func:`image_grid`: images ``(N, D)`` laid out row by row, image ``i`` at
  row ``i // nrow`` and column ``i % nrow`` (``nrow`` images per row, as in torchvision).
* :func:`image_rows`: a few labelled rows, e.g. test images above their reconstructions.
* :func:`plot_history`: train and test ELBO per epoch or per example seen, for one or several runs.
* :func:`manifold_grid` / :func:`latent_manifold`: the paper's Fig. 4. A uniform grid
  :math:`u_k = (k + \tfrac12)/n` on the unit square is mapped through the inverse CDF of the standard
  normal, :math:`z = \Phi^{-1}(u)`, so that the grid covers the prior with equal probability mass per
  cell; the decoder's mean output is drawn at each point.
* :func:`plot_lower_bound_curves`: the paper's Fig. 2, the bound against training samples seen for
  several latent sizes (from :func:`vae_core.paper.lower_bound_curves`).
* :func:`table_html`: a small HTML table for results (renders in Jupyter and on the static site).
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from ._validate import check_positive_int
from .evaluate import evaluating

__all__ = ["tile_images", "image_grid", "image_rows", "plot_history", "manifold_grid",
           "manifold_images", "latent_manifold", "plot_lower_bound_curves", "table_html"]


def _new_axes(ax, figsize):
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _check_shape(image_shape) -> tuple[int, int]:
    try:
        h, w = (int(s) for s in image_shape)
    except (TypeError, ValueError):
        raise TypeError(f"image_shape must be a (height, width) pair such as ds.image_shape, "
                        f"got {image_shape!r}.") from None
    if h < 1 or w < 1:
        raise ValueError(f"image_shape must hold two positive ints, got {image_shape!r}.")
    return h, w


def _as_images(images, image_shape) -> np.ndarray:
    """``(N, D)`` or ``(N, H, W)`` tensor/array -> float array ``(N, H, W)``."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().float().numpy()
    arr = np.asarray(images, dtype=np.float64)
    h, w = _check_shape(image_shape)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim == 2 and arr.shape[1] == h * w:
        return arr.reshape(len(arr), h, w)
    if arr.ndim == 3 and arr.shape[1:] == (h, w):
        return arr
    raise ValueError(f"images must have shape (N, {h * w}) or (N, {h}, {w}) for image_shape "
                     f"{(h, w)}, got {arr.shape}.")


def tile_images(images, image_shape, nrow: int | None = None, pad: int = 1,
                pad_value: float = np.nan) -> np.ndarray:
    """Lay images out in a grid: one 2-D array, ``nrow`` images per row, ``pad`` pixels between.

    Image ``i`` occupies rows ``r*(H+pad) : r*(H+pad)+H`` and columns ``c*(W+pad) : c*(W+pad)+W``
    with ``r, c = divmod(i, nrow)``. Empty tiles and the padding hold ``pad_value`` (NaN draws as
    the background colour).

    Args:
        images: ``(N, D)`` flattened images (or ``(N, H, W)``), tensor or array.
        image_shape: ``(H, W)`` with ``H * W == D``; pass ``ds.image_shape``.
        nrow: images per row; default ``ceil(sqrt(N))``.
        pad: pixels between tiles (0 for none).
    """
    imgs = _as_images(images, image_shape)
    n, h, w = imgs.shape
    if n == 0:
        raise ValueError("images is empty; pass at least one image.")
    nrow = math.ceil(math.sqrt(n)) if nrow is None else check_positive_int("nrow", nrow)
    if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
        raise ValueError(f"pad must be an int >= 0, got {pad!r}.")
    ncols = min(nrow, n)
    nrows = math.ceil(n / nrow)
    out = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad), pad_value, dtype=np.float64)
    for i in range(n):
        r, c = divmod(i, nrow)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = imgs[i]
    return out


def image_grid(images, image_shape, nrow: int | None = None, ax=None, title: str | None = None,
               cmap: str = "gray_r", vmin: float = 0.0, vmax: float = 1.0, pad: int = 1):
    """Draw images in a grid (see :func:`tile_images` for the layout) and return the axes.

    Pixel values are shown on ``[vmin, vmax]`` (intensities in [0, 1] by default, dark ink on a
    light background with ``cmap="gray_r"``); padding is drawn in light grey.
    """
    import matplotlib.pyplot as plt

    tiled = tile_images(images, image_shape, nrow, pad=pad)
    h, w = _check_shape(image_shape)
    ax = _new_axes(ax, (min(12.0, 0.9 * tiled.shape[1] / (w + pad)) + 0.2,
                        min(12.0, 0.9 * tiled.shape[0] / (h + pad)) + 0.4))
    cm = plt.get_cmap(cmap).with_extremes(bad="#d9d9d9")
    ax.imshow(np.ma.masked_invalid(tiled), cmap=cm, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def image_rows(rows: Sequence, image_shape, labels: Sequence[str] | None = None, ax=None,
               title: str | None = None, n: int | None = None, **kwargs):
    """Draw several equally long rows of images, one row each, with a label left of each row.

    Typical use: ``image_rows([x[:10], recon[:10]], shape, ["data", "reconstruction"])``.
    """
    if len(rows) == 0:
        raise ValueError("rows is empty; pass a list of image batches, one per row.")
    arrays = [_as_images(r, image_shape) for r in rows]
    n = min(len(a) for a in arrays) if n is None else check_positive_int("n", n)
    if any(len(a) < n for a in arrays):
        raise ValueError(f"every row needs at least n={n} images, got {[len(a) for a in arrays]}.")
    if labels is not None and len(labels) != len(rows):
        raise ValueError(f"labels must have one entry per row ({len(rows)}), got {len(labels)}.")
    stacked = np.concatenate([a[:n] for a in arrays])
    h, w = _check_shape(image_shape)
    ax = _new_axes(ax, (min(12.0, 0.8 * n) + 1.0, 0.8 * len(rows) + 0.5))
    image_grid(stacked, image_shape, nrow=n, ax=ax, title=title, **kwargs)
    if labels is not None:
        pad = kwargs.get("pad", 1)
        ax.set_yticks([r * (h + pad) + (h - 1) / 2 for r in range(len(rows))])
        ax.set_yticklabels(labels)
        ax.tick_params(axis="y", length=0)
    return ax


def _history_dict(h) -> dict:
    if hasattr(h, "as_dict"):
        return h.as_dict()
    if isinstance(h, Mapping):
        return dict(h)
    raise TypeError(f"each history must be a vae_core.train.History or a dict of lists, got {type(h).__name__}.")


def plot_history(histories, x: str = "examples_seen", ax=None, title: str | None = None,
                 logx: bool = False, train: bool = True, test: bool = True):
    """ELBO curves: the train ELBO (dashed) and the test ELBO (solid) of one or several runs.

    Args:
        histories: a ``History`` from :func:`vae_core.fit` (or a dict with the same lists, such as
            the one :func:`vae_core.paper.train_curve` returns, whose ``samples`` serve as
            ``examples_seen``), or a mapping ``label -> History`` to compare runs; each run gets
            one colour.
        x: ``"examples_seen"`` (training examples processed, the paper's axis) or ``"epoch"``.
        logx: logarithmic x-axis.

    The train value of an epoch is the average of the minibatch bounds while the weights moved, so
    early in training it lags the test value computed after the epoch.
    """
    import matplotlib.pyplot as plt

    if x not in ("examples_seen", "epoch"):
        raise ValueError(f"x must be 'examples_seen' or 'epoch', got {x!r}.")
    if hasattr(histories, "as_dict") or (isinstance(histories, Mapping) and "train_elbo" in histories):
        histories = {"": histories}
    if not isinstance(histories, Mapping) or not histories:
        raise TypeError("histories must be a History or a non-empty mapping label -> History.")
    ax = _new_axes(ax, (6.0, 3.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (label, h) in enumerate(histories.items()):
        d = _history_dict(h)
        if x == "examples_seen" and "examples_seen" not in d and "samples" in d:
            d["examples_seen"] = d["samples"]
        if x not in d:
            raise ValueError(f"history {label!r} has no {x!r} entry; it has {sorted(d)}.")
        xs = d[x]
        colour = colours[k % len(colours)]
        prefix = f"{label}: " if label else ""
        if train and d.get("train_elbo"):
            ax.plot(xs, d["train_elbo"], "--", marker="o", ms=3, color=colour, label=f"{prefix}train")
        tests = d.get("test_elbo") or []
        if test and tests and all(v is not None for v in tests):
            ax.plot(xs, tests, "-", marker="s", ms=3, color=colour, label=f"{prefix}test")
    ax.set_xlabel("training examples seen" if x == "examples_seen" else "epoch")
    ax.set_ylabel("ELBO (nats per example)")
    if logx:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(title or "ELBO during training")
    return ax


def manifold_grid(n: int = 15, dims: int = 2) -> tuple[np.ndarray, np.ndarray]:
    r"""The latent grid of the paper's Fig. 4: ``(u, z)`` with :math:`z = \Phi^{-1}(u)`.

    ``u`` holds the ``n`` cell midpoints :math:`u_k = (k + \tfrac12)/n` of the unit interval (the
    end points 0 and 1 would map to :math:`\mp\infty`). ``z`` has shape ``(n, n, 2)`` and is laid
    out as an image: ``z[r, c] = (Φ⁻¹(u_c), Φ⁻¹(u_{n-1-r}))``, so the first coordinate grows to the
    right and the second grows upwards (row 0 is the top row).
    """
    from scipy.special import ndtri

    check_positive_int("n", n)
    if dims != 2:
        raise ValueError(f"the manifold grid is two-dimensional; got dims={dims!r}.")
    u = (np.arange(n) + 0.5) / n
    v = ndtri(u)
    z = np.stack(np.meshgrid(v, v[::-1]), axis=-1)  # (n, n, 2): [..., 0] varies along columns
    return u, z


def _decoder_fn(model) -> Callable[[torch.Tensor], torch.Tensor]:
    if hasattr(model, "decode_mean"):
        return model.decode_mean
    if callable(model):
        return model
    raise TypeError(f"model must have decode_mean(z) (a vae_core.VAE) or be a callable z -> images, "
                    f"got {type(model).__name__}.")


@torch.no_grad()
def manifold_images(model, n: int = 15, latent_dims: Sequence[int] = (0, 1),
                    base: torch.Tensor | None = None) -> tuple[np.ndarray, torch.Tensor]:
    r"""Decode the grid of :func:`manifold_grid`: returns ``(z_grid (n, n, 2), images (n*n, D))``.

    Args:
        model: a ``VAE`` (its ``decode_mean`` is used) or a callable ``z -> mean image``.
        latent_dims: the two coordinates of ``z`` that the grid moves; for a model with more than
            two latent dimensions the others stay at ``base`` (default 0, the prior mean).
        base: a latent code ``(d,)`` the grid is laid over.
    """
    decode = _decoder_fn(model)
    _, grid = manifold_grid(n)
    i, j = (int(k) for k in latent_dims)
    d = getattr(model, "latent_dim", None)
    if d is None:
        d = 2 if base is None else int(base.numel())
    if i == j or not (0 <= i < d and 0 <= j < d):
        raise ValueError(f"latent_dims must be two distinct indices in [0, {d}), got {tuple(latent_dims)}.")
    p = next(model.parameters()) if hasattr(model, "parameters") else None
    dtype = p.dtype if p is not None else torch.float32
    device = p.device if p is not None else "cpu"
    z = torch.zeros(n * n, d, dtype=dtype, device=device)
    if base is not None:
        if base.numel() != d:
            raise ValueError(f"base must have {d} values, got {base.numel()}.")
        z[:] = base.reshape(1, d).to(dtype=dtype, device=device)
    flat = torch.as_tensor(grid.reshape(-1, 2), dtype=dtype, device=device)
    z[:, i], z[:, j] = flat[:, 0], flat[:, 1]
    with evaluating(model) if isinstance(model, torch.nn.Module) else torch.no_grad():
        images = decode(z)
    return grid, images.detach().cpu()


def _symmetric_ticks(n: int, n_ticks: int) -> np.ndarray:
    """Tile indices to label: the two ends, the quarter points and the centre, mirror-symmetric."""
    if n <= n_ticks:
        return np.arange(n)
    q = int(round((n - 1) / 4))
    idx = {0, q, n - 1 - q, n - 1}
    if n % 2 == 1:
        idx.add((n - 1) // 2)
    return np.array(sorted(idx))


def latent_manifold(model, n: int = 15, image_shape=(28, 28), ax=None, title: str | None = None,
                    latent_dims: Sequence[int] = (0, 1), base: torch.Tensor | None = None,
                    cmap: str = "gray_r", vmin: float = 0.0, vmax: float = 1.0, n_ticks: int = 5):
    r"""The learned manifold (the paper's Fig. 4): decoder means over an inverse-CDF grid of ``z``.

    The axes carry the latent values: ticks on the x-axis give :math:`z_{i}` and on the y-axis
    :math:`z_{j}` (``latent_dims = (i, j)``) at some tile centres. Returns the axes; the grid and
    the images are attached as ``ax.manifold_z`` and ``ax.manifold_images``.
    """
    h, w = _check_shape(image_shape)
    grid, images = manifold_images(model, n, latent_dims, base)
    ax = _new_axes(ax, (6.0, 6.0 * (n * h) / (n * w)))
    image_grid(images, (h, w), nrow=n, ax=ax, title=title or "Learned manifold", cmap=cmap,
               vmin=vmin, vmax=vmax, pad=0)
    ticks = _symmetric_ticks(n, n_ticks)
    ax.set_xticks(ticks * w + (w - 1) / 2)
    ax.set_xticklabels([f"{grid[0, c, 0]:.2f}" for c in ticks])
    ax.set_yticks(ticks * h + (h - 1) / 2)
    ax.set_yticklabels([f"{grid[r, 0, 1]:.2f}" for r in ticks])
    i, j = latent_dims
    ax.set_xlabel(f"$z_{{{i}}} = \\Phi^{{-1}}(u)$")
    ax.set_ylabel(f"$z_{{{j}}} = \\Phi^{{-1}}(v)$")
    ax.manifold_z = grid
    ax.manifold_images = images
    return ax


def _auto_ylim(curves: Mapping) -> tuple[float, float] | None:
    """Limits that skip the first decade of samples when choosing the lower end (early transients)."""
    late, every = [], []
    for c in curves.values():
        first = c["samples"][0]
        for s, *vals in zip(c["samples"], c["train_elbo"], c["test_elbo"]):
            every += vals
            if s >= 10 * first:
                late += vals
    vals = [v for v in (late or every) if v is not None and math.isfinite(v)]
    if not vals:
        return None
    lo, hi = min(vals), max(every)
    pad = 0.05 * (hi - lo or 1.0)
    return lo - pad, hi + pad


def plot_lower_bound_curves(result: Mapping, axes=None, title: str | None = None, ylim="auto"):
    """The paper's Fig. 2 layout: one panel per latent size, train (dashed) and test (solid) bound
    against the number of training samples evaluated (log axis).

    Args:
        result: the dict returned by :func:`vae_core.paper.lower_bound_curves` (or read
            back from its JSON file).
        axes: a sequence of as many axes as latent sizes; default a new row of panels.
        ylim: ``(low, high)``; ``"auto"`` (default) chooses the lower limit from the points after
            the first decade of samples, so that the large early values do not flatten the curves
            (those points leave the axes); ``None`` keeps matplotlib's limits.

    Returns the array of axes.
    """
    import matplotlib.pyplot as plt

    curves = result.get("curves") if isinstance(result, Mapping) else None
    if not curves:
        raise ValueError("result must be the dict of vae_core.paper.lower_bound_curves, "
                         "with a non-empty 'curves' entry.")
    keys = list(curves)
    if isinstance(ylim, str):
        if ylim != "auto":
            raise ValueError(f"ylim must be 'auto', None or a (low, high) pair, got {ylim!r}.")
        ylim = _auto_ylim(curves)
    if axes is None:
        fig, axes = plt.subplots(1, len(keys), figsize=(2.6 * len(keys) + 0.6, 3.2), sharey=True,
                                 squeeze=False)
        axes = axes[0]
        if title:
            fig.suptitle(title)
    if len(axes) != len(keys):
        raise ValueError(f"need {len(keys)} axes, one per latent size, got {len(axes)}.")
    for ax, key in zip(axes, keys):
        c = curves[key]
        ax.plot(c["samples"], c["train_elbo"], "--", color="C3", label="train")
        ax.plot(c["samples"], c["test_elbo"], "-", color="C0", label="test")
        ax.set_xscale("log")
        ax.set_title(f"$N_z = {c['latent_dim']}$")
        ax.set_xlabel("training samples evaluated")
        ax.grid(alpha=0.3)
        if ylim is not None:
            ax.set_ylim(*ylim)
    axes[0].set_ylabel("lower bound (nats per example)")
    axes[0].legend(fontsize="small", loc="lower right")
    return axes


def table_html(header: Sequence, rows: Sequence[Sequence], caption: str | None = None,
               align: Sequence[str] | None = None) -> str:
    """A plain HTML table: ``header`` cells, then one ``<tr>`` per row; every cell is escaped text.

    Numbers are formatted with ``str``; format them beforehand for fixed decimals. ``align`` gives
    one CSS ``text-align`` per column (default: left for the first column, right for the others).
    Show it with ``IPython.display.HTML(table_html(...))``.
    """
    import html

    header = [str(h) for h in header]
    if not header:
        raise ValueError("header is empty; pass one title per column.")
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"row {i} has {len(row)} cells, expected {len(header)} (one per header cell).")
    align = list(align) if align is not None else ["left"] + ["right"] * (len(header) - 1)
    if len(align) != len(header):
        raise ValueError(f"align must have {len(header)} entries, got {len(align)}.")
    style = 'style="text-align:{};vertical-align:top;padding:0.25em 0.6em"'
    head = "".join(f"<th {style.format(a)}>{html.escape(h)}</th>" for h, a in zip(header, align))
    body = "".join("<tr>" + "".join(f"<td {style.format(a)}>{html.escape(str(c))}</td>"
                                    for c, a in zip(row, align)) + "</tr>" for row in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f'<table class="vae-table">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
