r"""The β explorer (chapter 9): a slider along a measured rate–distortion curve, computed in advance.

:class:`BetaExplorer` carries, for every β of a sweep, the measured rate :math:`R` and distortion
:math:`D` (nats), the reconstructions of a few test images and latent traversals of the most
informative dimensions, all as precomputed arrays in the widget state. Its front end
(``static/beta_explorer.js``) draws the R–D plane with the lines of constant ELBO
:math:`-(D + R)`, marks the chosen β, and shows its pictures; moving the slider never calls Python,
so the page works without a kernel.

Images travel as base64 of one byte per pixel (intensity × 255, rounded): :func:`pack_images` and
:func:`unpack_images` are the two directions, and the JavaScript unpacks them the same way.
:func:`sweep_panels` measures what the explorer shows for a list of trained models.
"""
from __future__ import annotations

import base64
import math
from typing import Sequence

import anywidget
import numpy as np
import torch
import traitlets

from .frontend import esm_source

__all__ = ["BetaExplorer", "pack_images", "unpack_images", "sweep_panels", "traversal_images", "rate_distortion",
           "elbo_levels"]


def pack_images(images) -> str:
    """Base64 of ``images`` (any shape, values in [0, 1]) as unsigned bytes ``round(255 * v)``, row-major."""
    a = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images, dtype=np.float64)
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise ValueError("images must be a non-empty array of finite values in [0, 1].")
    if a.min() < -1e-6 or a.max() > 1 + 1e-6:
        raise ValueError(f"images must lie in [0, 1] (pixel intensities), got values in [{a.min():.3g}, {a.max():.3g}].")
    return base64.b64encode(np.round(np.clip(a, 0, 1) * 255).astype(np.uint8).tobytes()).decode("ascii")


def unpack_images(b64: str, shape: Sequence[int] | None = None) -> np.ndarray:
    """The float intensities (byte / 255) of :func:`pack_images`'s string, reshaped to ``shape``."""
    a = np.frombuffer(base64.b64decode(b64), dtype=np.uint8).astype(np.float64) / 255.0
    return a if shape is None else a.reshape(shape)


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


class BetaExplorer(anywidget.AnyWidget):
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
    image_shape = traitlets.List(traitlets.Int()).tag(sync=True)
    n_images = traitlets.Int(0).tag(sync=True)
    originals = traitlets.Unicode("").tag(sync=True)
    recons = traitlets.List(traitlets.Unicode()).tag(sync=True)
    traversals = traitlets.List(traitlets.Unicode()).tag(sync=True)
    traversal_dims = traitlets.List(traitlets.List(traitlets.Int())).tag(sync=True)
    traversal_kl = traitlets.List(traitlets.List(traitlets.Float())).tag(sync=True)
    traversal_values = traitlets.List(traitlets.Float()).tag(sync=True)
    levels = traitlets.List(traitlets.Float()).tag(sync=True)
    index = traitlets.Int(0).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    scale = traitlets.Int(3).tag(sync=True)

    def __init__(self, betas, rates, distortions, originals, recons, traversals, traversal_dims, traversal_kl,
                 traversal_values, image_shape: Sequence[int] = (28, 28), index: int = 0,
                 title: str = "β along the rate–distortion curve", scale: int | None = None, **kwargs):
        def floats(name, v):
            try:
                out = [float(a) for a in (v.tolist() if hasattr(v, "tolist") else v)]
            except (TypeError, ValueError):
                raise TypeError(f"{name} must be a sequence of numbers, got {v!r:.60}.") from None
            if not out or not all(math.isfinite(a) for a in out):
                raise ValueError(f"{name} must be a non-empty sequence of finite numbers, got {out!r:.80}.")
            return out

        betas, rates, distortions = floats("betas", betas), floats("rates", rates), floats("distortions", distortions)
        K = len(betas)
        if not (len(rates) == len(distortions) == K):
            raise ValueError(f"betas, rates and distortions must have the same length, got {K}, {len(rates)}, "
                             f"{len(distortions)}.")
        if any(b < 0 for b in betas) or any(b2 <= b1 for b1, b2 in zip(betas, betas[1:])):
            raise ValueError(f"betas must be >= 0 and strictly increasing, got {betas}.")
        try:
            shape = [int(s) for s in image_shape]
        except TypeError:
            raise TypeError(f"image_shape must be a (height, width) pair, got {image_shape!r}.") from None
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"image_shape must be a (height, width) pair of positive ints, got {image_shape!r}.")
        P = shape[0] * shape[1]
        arr = lambda v: np.asarray(v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v,  # noqa: E731
                                   dtype=np.float64)
        originals, recons, traversals = arr(originals), arr(recons), arr(traversals)
        if originals.ndim != 2 or originals.shape[1] != P:
            raise ValueError(f"originals must have shape (n, {P}) for image_shape {tuple(shape)}, got {originals.shape}.")
        n = originals.shape[0]
        if recons.shape != (K, n, P):
            raise ValueError(f"recons must have shape (len(betas), n, H*W) = {(K, n, P)}, got {recons.shape}.")
        values = floats("traversal_values", traversal_values)
        if traversals.ndim != 4 or traversals.shape[0] != K or traversals.shape[2:] != (len(values), P):
            raise ValueError(f"traversals must have shape (len(betas), rows, len(traversal_values), H*W) = "
                             f"({K}, rows, {len(values)}, {P}), got {traversals.shape}.")
        rows = traversals.shape[1]
        dims = [[int(j) for j in r] for r in traversal_dims]
        kls = [floats("traversal_kl", r) for r in traversal_kl]
        if len(dims) != K or len(kls) != K or any(len(r) != rows for r in dims + kls):
            raise ValueError(f"traversal_dims and traversal_kl must have shape (len(betas), rows) = ({K}, {rows}).")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < K:
            raise ValueError(f"index must be an int in [0, {K}), got {index!r}.")
        if scale is None:
            scale = max(1, round(56 / max(shape)))
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale must be a positive int, got {scale!r}.")
        super().__init__(betas=betas, rates=rates, distortions=distortions, image_shape=shape, n_images=n,
                         originals=pack_images(originals), recons=[pack_images(r) for r in recons],
                         traversals=[pack_images(t) for t in traversals], traversal_dims=dims, traversal_kl=kls,
                         traversal_values=values, levels=elbo_levels(rates, distortions), index=index,
                         title=str(title), scale=scale, **kwargs)

    # -- what the browser shows, in Python -------------------------------------------------------
    def readout(self, index: int | None = None) -> str:
        i = self.index if index is None else index
        return _readout(self.betas[i], self.rates[i], self.distortions[i])

    def recon_images(self, index: int | None = None) -> np.ndarray:
        i = self.index if index is None else index
        return unpack_images(self.recons[i], (self.n_images, *self.image_shape))

    def traversal_grid(self, index: int | None = None) -> np.ndarray:
        i = self.index if index is None else index
        rows = len(self.traversal_dims[i])
        return unpack_images(self.traversals[i], (rows, len(self.traversal_values), *self.image_shape))

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
def traversal_images(model, z0: torch.Tensor, dims: Sequence[int], values: Sequence[float]) -> torch.Tensor:
    """``(len(dims), len(values), D)``: decoder means with coordinate ``dims[r]`` of ``z0`` set to each value."""
    vals = torch.as_tensor(list(values), dtype=z0.dtype, device=z0.device)
    z = z0.reshape(1, 1, -1).repeat(len(dims), len(vals), 1)
    for r, j in enumerate(dims):
        z[r, :, j] = vals
    return model.decode_mean(z)


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
        out["traversals"].append(traversal_images(m, mu[0], dims, values).cpu().numpy())
        out["traversal_dims"].append(dims)
        out["traversal_kl"].append(kl[dims].tolist())
    out["recons"] = np.stack(out["recons"])
    out["traversals"] = np.stack(out["traversals"])
    out["originals"] = x_show.cpu().numpy()
    out["traversal_values"] = [float(v) for v in values]
    return out
