r"""Explorers of pictures and numbers computed in Python in advance, shown without a kernel.

* :class:`BetaExplorer` (chapter 9): a β slider along a measured rate–distortion curve, with each
  β's reconstructions and latent traversals (:func:`sweep_panels` measures them).
* :class:`TraversalExplorer` (chapter 14): traversals of several models side by side, one slider.
* :class:`BoundExplorer` (chapter 11): the importance-weighted bound :math:`\mathcal L_k` against
  ``k``, climbing towards :math:`\log p(x)` (:func:`bound_summary` is its readout).

Moving a slider only picks another precomputed entry, so the pages work on the static website.
Pictures travel as one byte per pixel (:func:`~vae_core.widgets.frontend.pack_u8`);
:func:`traversal_images` is the one traversal both picture explorers use.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import anywidget
import numpy as np
import torch
import traitlets

from .base import ImageExplorer, SettingError, default_scale, image_shape_pair, index_in, plain, validates
from .frontend import esm_source, pack_u8, unpack_u8

__all__ = ["BetaExplorer", "TraversalExplorer", "BoundExplorer", "traversal_images", "sweep_panels",
           "rate_distortion", "elbo_levels", "bound_summary"]


@torch.no_grad()
def traversal_images(model, base, dims: Sequence[int], values: Sequence[float]) -> np.ndarray:
    r"""The model's mean images as :math:`z_j` runs over ``values`` from the code ``base``, for each
    ``j`` in ``dims``: float array ``(len(dims), len(values), input_dim)`` in [0, 1], through
    ``model.mean_decoder()`` (the same map the decoder explorer exports)."""
    net, output = model.mean_decoder()
    base = torch.as_tensor(base, dtype=torch.float32).reshape(-1).cpu()
    values = torch.as_tensor(list(values), dtype=torch.float32)
    z = base.repeat(len(dims), len(values), 1)
    for r, j in enumerate(dims):
        z[r, :, j] = values
    out = net(z)
    out = torch.sigmoid(out) if output == "sigmoid" else out.clamp(0, 1)
    return out.numpy().astype(np.float64)


def _finite_list(name: str, values, n: int | None = None) -> list[float]:
    """``values`` as floats: finite, and ``n`` of them (default: at least one)."""
    try:
        out = [float(v) for v in plain(values)]
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of numbers, got {values!r:.60}.") from None
    if n is not None and len(out) != n:
        raise SettingError(f"{name} must have one value per k ({n}), got {len(out)}.")
    if not out or not all(math.isfinite(v) for v in out):
        raise SettingError(f"{name} must be a non-empty sequence of finite numbers, got {out!r:.80}.")
    return out


# ------------------------------------------------------------------ chapter 9: β along the R–D curve

def elbo_levels(rates: Sequence[float], distortions: Sequence[float], n: int = 5) -> list[float]:
    r"""``n`` values of :math:`D + R` (= −ELBO) for the iso-ELBO lines of the plot, evenly spaced from the
    smallest :math:`D + R` of the sweep (the line through the best ELBO) to the largest."""
    s = [float(r) + float(d) for r, d in zip(rates, distortions)]
    if not s or n < 1:
        raise ValueError("elbo_levels needs at least one (rate, distortion) pair and n >= 1.")
    lo, hi = min(s), max(s)
    if n == 1 or hi == lo:
        return [lo]
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def _readout(beta: float, rate: float, distortion: float, learned: bool = False) -> str:
    kind = "learned" if learned else "β"
    return (f"{kind} = {_fmt_beta(beta)}: rate R = {rate:.2f} nats, distortion D = {distortion:.2f} nats, "
            f"ELBO = −(D + R) = {-(rate + distortion):.2f} nats")


def _fmt_beta(beta: float) -> str:
    """β for a label: 3 significant digits, no trailing zeros (the JS does the same)."""
    return f"{float(f'{beta:.3g}'):g}"


class BetaExplorer(ImageExplorer):
    r"""A β slider that moves along a measured rate–distortion curve and shows each β's pictures.

    Args:
        betas: the β of each trained model, increasing.
        rates, distortions: measured :math:`R` and :math:`D` (nats) of each model.
        originals: ``(n, H*W)`` test images in [0, 1] (shown as the first row).
        recons: ``(K, n, H*W)`` their reconstructions (decoder means) by each of the K models.
        traversals: ``(K, rows, steps, H*W)``: for each model, ``rows`` latent dimensions swept over
            ``traversal_values`` (the other coordinates at the encoder mean of one image).
        traversal_dims: ``(K, rows)`` which dimension each row moves; ``traversal_kl``: its KL (nats).
        traversal_values: the ``steps`` values of the swept coordinate.
        image_shape: ``(H, W)``.
        index: the β shown first (an index into ``betas``); synced.
        title: a heading.
        scale: screen pixels per image pixel.

    :meth:`readout` returns the text the browser shows for an index, and :meth:`recon_images` /
    :meth:`traversal_grid` the (byte-rounded) pictures it draws.
    """

    _esm = esm_source("beta_explorer.js")

    betas = traitlets.List(traitlets.Float()).tag(sync=True)
    rates = traitlets.List(traitlets.Float()).tag(sync=True)
    distortions = traitlets.List(traitlets.Float()).tag(sync=True)
    n_images = traitlets.Int(0).tag(sync=True)
    originals = traitlets.Unicode("").tag(sync=True)
    recons = traitlets.List(traitlets.Unicode()).tag(sync=True)
    traversals = traitlets.List(traitlets.Unicode()).tag(sync=True)
    traversal_dims = traitlets.List(traitlets.List(traitlets.Int())).tag(sync=True)
    traversal_kl = traitlets.List(traitlets.List(traitlets.Float())).tag(sync=True)
    traversal_values = traitlets.List(traitlets.Float()).tag(sync=True)
    levels = traitlets.List(traitlets.Float()).tag(sync=True)
    index = traitlets.Int(0).tag(sync=True)

    def __init__(self, betas, rates, distortions, originals, recons, traversals, traversal_dims, traversal_kl,
                 traversal_values, image_shape: Sequence[int] = (28, 28), index: int = 0,
                 title: str = "β along the rate–distortion curve", scale: int | None = None, **kwargs):
        betas, rates = _finite_list("betas", betas), _finite_list("rates", rates)
        distortions = _finite_list("distortions", distortions)
        K = len(betas)
        if not (len(rates) == len(distortions) == K):
            raise ValueError(f"betas, rates and distortions must have the same length, got {K}, {len(rates)}, "
                             f"{len(distortions)}.")
        if any(b < 0 for b in betas) or any(b2 <= b1 for b1, b2 in zip(betas, betas[1:])):
            raise ValueError(f"betas must be >= 0 and strictly increasing, got {betas}.")
        shape = image_shape_pair(image_shape)
        P = shape[0] * shape[1]
        arr = lambda v: np.asarray(v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v,  # noqa: E731
                                   dtype=np.float64)
        originals, recons, traversals = arr(originals), arr(recons), arr(traversals)
        if originals.ndim != 2 or originals.shape[1] != P:
            raise ValueError(f"originals must have shape (n, {P}) for image_shape {tuple(shape)}, got {originals.shape}.")
        n = originals.shape[0]
        if recons.shape != (K, n, P):
            raise ValueError(f"recons must have shape (len(betas), n, H*W) = {(K, n, P)}, got {recons.shape}.")
        values = _finite_list("traversal_values", traversal_values)
        if traversals.ndim != 4 or traversals.shape[0] != K or traversals.shape[2:] != (len(values), P):
            raise ValueError(f"traversals must have shape (len(betas), rows, len(traversal_values), H*W) = "
                             f"({K}, rows, {len(values)}, {P}), got {traversals.shape}.")
        rows = traversals.shape[1]
        dims = [[int(j) for j in r] for r in traversal_dims]
        kls = [_finite_list("traversal_kl", r) for r in traversal_kl]
        if len(dims) != K or len(kls) != K or any(len(r) != rows for r in dims + kls):
            raise ValueError(f"traversal_dims and traversal_kl must have shape (len(betas), rows) = ({K}, {rows}).")
        super().__init__(betas=betas, rates=rates, distortions=distortions, image_shape=shape, n_images=n,
                         originals=pack_u8(originals), recons=[pack_u8(r) for r in recons],
                         traversals=[pack_u8(t) for t in traversals], traversal_dims=dims, traversal_kl=kls,
                         traversal_values=values, levels=elbo_levels(rates, distortions), index=index,
                         title=str(title), scale=default_scale(shape, 56) if scale is None else scale, **kwargs)

    @validates("index")
    def _check_index(self, name, value):
        return index_in(name, value, len(self.betas))

    # -- what the browser shows, in Python -------------------------------------------------------
    def readout(self, index: int | None = None) -> str:
        i = self.index if index is None else index
        return _readout(self.betas[i], self.rates[i], self.distortions[i])

    def recon_images(self, index: int | None = None) -> np.ndarray:
        i = self.index if index is None else index
        return unpack_u8(self.recons[i], (self.n_images, *self.image_shape)) / 255.0

    def traversal_grid(self, index: int | None = None) -> np.ndarray:
        i = self.index if index is None else index
        rows = len(self.traversal_dims[i])
        return unpack_u8(self.traversals[i], (rows, len(self.traversal_values), *self.image_shape)) / 255.0

    @classmethod
    def from_models(cls, models: dict, x_measure: torch.Tensor, x_show: torch.Tensor, image_shape=(28, 28),
                    rows: int = 3, values: Sequence[float] = (-3, -2, -1, 0, 1, 2, 3), n_samples: int = 10,
                    generator: torch.Generator | None = None, **kwargs) -> "BetaExplorer":
        """The explorer of ``models`` ``{beta: trained model}``: measures everything with :func:`sweep_panels`."""
        p = sweep_panels(models, x_measure, x_show, rows=rows, values=values, n_samples=n_samples, generator=generator)
        return cls(image_shape=image_shape, **p, **kwargs)

    def __repr__(self) -> str:
        return f"BetaExplorer(betas={self.betas}, index={self.index}, image_shape={tuple(self.image_shape)})"


# ------------------------------------------------------------------ measuring a sweep

@torch.no_grad()
def rate_distortion(model, x: torch.Tensor, n_samples: int = 10,
                    generator: torch.Generator | None = None) -> tuple[float, float]:
    r"""``(R, D)`` in nats per example: :math:`R = \mathbb E_x\mathrm{KL}(q(z|x)\|p(z))` (closed form),
    :math:`D = -\mathbb E_x\mathbb E_q\log p(x|z)` with ``n_samples`` samples per example; in eval mode."""
    was = model.training
    model.eval()
    try:
        t = model.elbo(x, n_samples=n_samples, generator=generator)
    finally:
        model.train(was)
    return t.kl.mean().item(), -t.recon.mean().item()


@torch.no_grad()
def sweep_panels(models: dict, x_measure: torch.Tensor, x_show: torch.Tensor, rows: int = 3,
                 values: Sequence[float] = (-3, -2, -1, 0, 1, 2, 3), n_samples: int = 10,
                 generator: torch.Generator | None = None) -> dict:
    """Everything :class:`BetaExplorer` shows, for ``models`` ``{beta: trained VAE-family model}``.

    For each β (in increasing order): ``rate_distortion`` on ``x_measure``; decoder means of the
    encoder means of ``x_show``; and traversals of the ``rows`` dimensions with the largest average KL
    on ``x_measure``, starting at the encoder mean of ``x_show[0]``.
    """
    from ..evaluate import kl_per_dimension

    out = {k: [] for k in ("betas", "rates", "distortions", "recons", "traversals", "traversal_dims", "traversal_kl")}
    for beta in sorted(models):
        m = models[beta]
        m.eval()
        r, d = rate_distortion(m, x_measure, n_samples=n_samples, generator=generator)
        kl = kl_per_dimension(m, x_measure)
        dims = torch.argsort(kl, descending=True)[:rows].tolist()
        mu = m.encode(x_show)[0]
        out["betas"].append(float(beta))
        out["rates"].append(r)
        out["distortions"].append(d)
        out["recons"].append(m.decode_mean(mu).cpu().numpy())
        out["traversals"].append(traversal_images(m, mu[0], dims, values))
        out["traversal_dims"].append(dims)
        out["traversal_kl"].append(kl[dims].tolist())
    out["recons"] = np.stack(out["recons"])
    out["traversals"] = np.stack(out["traversals"])
    out["originals"] = x_show.cpu().numpy()
    out["traversal_values"] = [float(v) for v in values]
    return out


# ------------------------------------------------------------------ chapter 14: traversals side by side

class TraversalExplorer(ImageExplorer):
    """One slider, several models' traversals side by side (precomputed pictures, kernel-free).

    Args:
        panels: a list of ``{"name": str, "rows": [row labels], "images": array (rows, n_values, H*W)}``
            with grey levels in [0, 1] (1 = ink); every panel has the same ``n_values``.
        values: the ``n_values`` latent values of the steps, increasing.
        image_shape: ``(height, width)``.
        index: the step shown first (default: the middle one).
        title: a heading. scale: screen pixels per image pixel (default: about 48 px per picture).

    The current step is the synced trait ``index``. :meth:`from_models` builds the panels from models.
    """

    _esm = esm_source("traversal_explorer.js")

    panels = traitlets.List(traitlets.Dict()).tag(sync=True)
    values = traitlets.List(traitlets.Float()).tag(sync=True)
    index = traitlets.Int(0).tag(sync=True)

    def __init__(self, panels: Sequence[Mapping], values: Sequence[float], image_shape: Sequence[int],
                 index: int | None = None, title: str = "Latent traversals", scale: int | None = None, **kwargs):
        values = [float(v) for v in values]
        if len(values) < 2 or not all(math.isfinite(v) for v in values) or any(b <= a for a, b in zip(values, values[1:])):
            raise ValueError(f"values must be at least two increasing finite numbers, got {values!r}.")
        shape = image_shape_pair(image_shape)
        if not panels:
            raise ValueError("panels must hold at least one model's traversals.")
        state = []
        for p in panels:
            images = np.asarray(p["images"], dtype=np.float64)
            rows = [str(r) for r in p["rows"]]
            if images.shape != (len(rows), len(values), shape[0] * shape[1]):
                raise ValueError(f"panel {p.get('name')!r}: images must have shape (rows={len(rows)}, "
                                 f"n_values={len(values)}, pixels={shape[0] * shape[1]}), got {images.shape}.")
            if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
                raise ValueError(f"panel {p.get('name')!r}: grey levels must be finite and in [0, 1].")
            state.append({"name": str(p["name"]), "rows": rows,
                          "images": pack_u8(images)})
        if index is None:
            index = len(values) // 2
        super().__init__(panels=state, values=values, image_shape=shape, index=index, title=str(title),
                         scale=default_scale(shape, 48) if scale is None else scale, **kwargs)

    @validates("index")
    def _check_index(self, name, value):
        return index_in(name, value, len(self.values))

    @classmethod
    def from_models(cls, models: Mapping[str, object], image_shape: Sequence[int], base_x: torch.Tensor | None = None,
                    dims: Mapping[str, Sequence[int]] | None = None, value_range: Sequence[float] = (-3.0, 3.0),
                    n_values: int = 25, **kwargs) -> "TraversalExplorer":
        """Panels from models with ``mean_decoder()`` (and ``encode`` when ``base_x`` is given).

        ``base_x``: one image whose encoder mean is the base code of every traversal (default: the
        prior mean, zeros). ``dims``: per model name, which latent dimensions to show, in order
        (default: all). ``n_values`` steps over ``value_range``.
        """
        if isinstance(n_values, bool) or not isinstance(n_values, int) or n_values < 2:
            raise ValueError(f"n_values must be an int >= 2, got {n_values!r}.")
        lo, hi = (float(v) for v in value_range)
        values = np.linspace(lo, hi, n_values).tolist()
        panels = []
        for name, model in models.items():
            d = int(model.latent_dim)
            if base_x is None:
                base = torch.zeros(d)
            else:
                with torch.no_grad():
                    was = model.training
                    model.eval()
                    base = model.encode(torch.as_tensor(base_x, dtype=torch.float32).reshape(1, -1))[0][0]
                    model.train(was)
            rows = list(range(d)) if dims is None or name not in dims else [int(j) for j in dims[name]]
            panels.append({"name": name, "rows": [f"z[{j}]" for j in rows],
                           "images": traversal_images(model, base, rows, values)})
        return cls(panels, values, image_shape, **kwargs)

    def image(self, panel: int, row: int, index: int | None = None) -> np.ndarray:
        """The grey levels (0..255, 1-D) the page shows for ``panel``, ``row`` at step ``index``."""
        p = self.panels[panel]
        n = len(self.values)
        pixels = self.image_shape[0] * self.image_shape[1]
        arr = unpack_u8(p["images"], (len(p["rows"]), n, pixels))
        return arr[row, self.index if index is None else index]

    def __repr__(self) -> str:
        return (f"TraversalExplorer(models={[p['name'] for p in self.panels]}, steps={len(self.values)}, "
                f"image_shape={tuple(self.image_shape)})")


# ------------------------------------------------------------------ chapter 11: the bound against k

def bound_summary(ks: Sequence[int], bounds: Sequence[float], log_px: float, index: int) -> dict:
    r"""The readout at slider position ``index``: ``k``, ``bound`` (:math:`\mathcal L_k`), ``gap``
    (:math:`\log p(x) - \mathcal L_k`), ``gain`` (:math:`\mathcal L_k - \mathcal L_{k_0}`, the first
    ``k`` of the list) and ``closed`` (``gain`` over the first gap, the fraction of the gap closed)."""
    if not 0 <= index < len(ks):
        raise ValueError(f"index must be in 0..{len(ks) - 1}, got {index}.")
    first_gap = log_px - bounds[0]
    gain = bounds[index] - bounds[0]
    return {"k": int(ks[index]), "bound": float(bounds[index]), "gap": float(log_px - bounds[index]),
            "gain": float(gain), "closed": float(gain / first_gap) if first_gap > 0 else 1.0}


class BoundExplorer(anywidget.AnyWidget):
    r"""A ``k`` slider over precomputed :math:`\mathcal L_k`, climbing towards :math:`\log p(x)`.

    Args:
        ks: increasing positive ints (the slider's stops; shown on a log axis).
        bounds: :math:`\mathcal L_k` for each ``k``, in nats.
        log_px: :math:`\log p(x)`, in nats (exact, or an estimate with a much larger ``k``).
        spread: optional standard deviation of the single draws of :math:`\hat{\mathcal L}_k`, per ``k``.
        ess: optional mean effective sample size :math:`1/\sum_i\tilde w_i^2` per ``k``.
        log_px_label: how to call ``log_px`` in the figure (e.g. ``"exact log p(x)"``).
        index: the starting slider position.
        title: a heading.
    """

    _esm = esm_source("iwae_explorer.js")

    ks = traitlets.List(traitlets.Int()).tag(sync=True)
    bounds = traitlets.List(traitlets.Float()).tag(sync=True)
    spread = traitlets.List(traitlets.Float()).tag(sync=True)
    ess = traitlets.List(traitlets.Float()).tag(sync=True)
    log_px = traitlets.Float(0.0).tag(sync=True)
    log_px_label = traitlets.Unicode("log p(x)").tag(sync=True)
    index = traitlets.Int(0).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    def __init__(self, ks: Sequence[int], bounds: Sequence[float], log_px: float,
                 spread: Sequence[float] | None = None, ess: Sequence[float] | None = None,
                 log_px_label: str = "log p(x)", index: int = 0,
                 title: str = "The importance-weighted bound climbs with k", **kwargs):
        try:
            k_list = list(ks)
        except TypeError:
            raise TypeError(f"ks must be a sequence of positive ints, got {ks!r}.") from None
        if not k_list or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in k_list):
            raise ValueError(f"ks must be a non-empty sequence of positive ints, got {ks!r}.")
        if any(b <= a for a, b in zip(k_list, k_list[1:])):
            raise ValueError(f"ks must be increasing, got {k_list}.")
        b = _finite_list("bounds", bounds, len(k_list))
        lp = _finite_list("log_px", [log_px])[0]
        sp = [] if spread is None else _finite_list("spread", spread, len(k_list))
        es = [] if ess is None else _finite_list("ess", ess, len(k_list))
        super().__init__(ks=k_list, bounds=b, log_px=lp, spread=sp, ess=es, log_px_label=str(log_px_label),
                         index=index, title=str(title), **kwargs)

    @validates("index")
    def _check_index(self, name, value):
        return index_in(name, value, len(self.ks))

    def summary(self, index: int | None = None) -> dict:
        """The numbers the browser shows at ``index`` (default: the current position)."""
        return bound_summary(self.ks, self.bounds, self.log_px, self.index if index is None else index)

    def __repr__(self) -> str:
        return f"BoundExplorer(ks={self.ks}, log_px={self.log_px:.4g}, index={self.index})"
