r"""The importance-weighted bound against ``k`` (chapter 11), shown in the browser.

:class:`BoundExplorer` carries precomputed values of :math:`\mathcal L_k` (the mean over repeated
draws of :math:`\log\frac1k\sum_i w_i`) for a list of ``k``, the model's :math:`\log p(x)` and,
optionally, the spread of the draws and the effective sample size of the normalised weights. A
``k`` slider moves along the curve; the readout says how much of the gap between the ELBO
(:math:`k = 1`) and :math:`\log p(x)` that ``k`` closes. No Python runs when the slider moves, so it
works on a static page. :func:`bound_summary` computes the readout's numbers exactly as the front end
(``static/iwae_explorer.js``) does, so tests can check what the browser shows.

Typical use (the explorer must be the value of the cell, or passed to ``display``)::

    from vae_core.widgets import BoundExplorer
    BoundExplorer(ks=[1, 10, 100], bounds=[-5.1, -4.6, -4.4], log_px=-4.3)
"""
from __future__ import annotations

import math
from typing import Sequence

import anywidget
import traitlets

from .frontend import esm_source

__all__ = ["BoundExplorer", "bound_summary"]


def _finite_list(name: str, values, n: int | None = None) -> list[float]:
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of numbers, got {values!r}.") from None
    if n is not None and len(out) != n:
        raise ValueError(f"{name} must have one value per k ({n}), got {len(out)}.")
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{name} must be finite, got {out}.")
    return out


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
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(k_list):
            raise ValueError(f"index must be an int in 0..{len(k_list) - 1}, got {index!r}.")
        super().__init__(ks=k_list, bounds=b, log_px=lp, spread=sp, ess=es, log_px_label=str(log_px_label),
                         index=index, title=str(title), **kwargs)

    def summary(self, index: int | None = None) -> dict:
        """The numbers the browser shows at ``index`` (default: the current position)."""
        return bound_summary(self.ks, self.bounds, self.log_px, self.index if index is None else index)

    def __repr__(self) -> str:
        return f"BoundExplorer(ks={self.ks}, log_px={self.log_px:.4g}, index={self.index})"
