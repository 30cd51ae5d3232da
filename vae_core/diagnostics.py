r"""Diagnosing a trained VAE: posterior collapse, and two remedies for it.

:mod:`vae_core.evaluate` measures a model (importance-sampled :math:`\log p(x)`, KL per latent
dimension, active units). This module adds what a diagnosis needs on top:

* :func:`log_marginal_vs_k` — the importance-sampled estimate :math:`\hat{\mathcal L}_K` for several
  ``K``, repeated, so its bias and spread can be plotted;
* :func:`reconstruction_variance_ratio` and :func:`decoder_sensitivity` — does the output depend on
  the input, and on each latent coordinate?
* :func:`collapse_report` — all the numbers of a diagnosis in one :class:`CollapseReport`.

The two remedies live where they belong: the KL warm-up is a schedule
(:func:`vae_core.schedules.linear_warmup`, ``fit(..., schedules={"beta": linear_warmup(2)})``) and
free bits is a model (:class:`vae_core.models.FreeBitsVAE`, objective
:func:`vae_core.objectives.free_bits_kl`); :class:`vae_core.data.EpochParts` lets a per-epoch
schedule act within one pass over a large data set.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Sequence

import torch

from ._validate import check_positive_float, check_positive_int, check_tensor
from .evaluate import active_units, evaluating, kl_per_dimension, log_marginal

__all__ = ["log_marginal_vs_k", "reconstruction_variance_ratio", "decoder_sensitivity",
           "CollapseReport", "collapse_report", "reports_table"]


# ------------------------------------------------------------------------------------------------
# Measurements
# ------------------------------------------------------------------------------------------------

@torch.no_grad()
def log_marginal_vs_k(model, x: torch.Tensor, ks: Sequence[int], repeats: int = 3,
                      generator: torch.Generator | None = None, batch_size: int = 100,
                      chunk: int = 250, per_example: bool = False) -> dict[int, torch.Tensor]:
    r"""The importance-sampled estimate :math:`\hat{\mathcal L}_K(x) = \log\frac1K\sum_k w_k` for each ``K``.

    Returns ``{K: tensor}`` with ``repeats`` independent repeats per ``K``: of shape ``(repeats,)``,
    the average over the examples of ``x`` (nats), or with ``per_example=True`` of shape
    ``(repeats, N)``, one estimate per example. The expectation rises with ``K`` towards
    :math:`\log p(x)` (Burda et al., 2015); ``K = 1`` estimates the ELBO. See
    :func:`vae_core.evaluate.log_marginal`.
    """
    check_tensor("x", x, min_dim=2)
    check_positive_int("repeats", repeats)
    ks = [check_positive_int("each K", k) for k in ks]
    if not ks:
        raise ValueError("ks must list at least one number of importance samples, e.g. [1, 10, 100].")
    out = {}
    for k in ks:
        est = torch.stack([log_marginal(model, x, n_samples=k, batch_size=batch_size, chunk=chunk,
                                        generator=generator) for _ in range(repeats)])
        out[k] = est if per_example else est.mean(1)
    return out


@torch.no_grad()
def reconstruction_variance_ratio(model, x: torch.Tensor, batch_size: int = 500) -> float:
    r"""How much of the data's variation survives the round trip through the code:

    .. math:: \rho = \frac{\sum_p \operatorname{Var}_x\big(\hat x_p(x)\big)}
              {\sum_p \operatorname{Var}_x(x_p)},
              \qquad \hat x(x) = \mathbb E_{p(x|z)}[x]\ \text{at}\ z = \mathbb E_{q(z|x)}[z],

    with the variance over the examples in ``x`` and the sum over pixels ``p``. A collapsed model
    reconstructs every input as the same image, so :math:`\rho = 0`; perfect reconstructions give 1.
    """
    check_tensor("x", x, min_dim=2)
    if len(x) < 2:
        raise ValueError(f"x must hold at least 2 examples to measure a variance, got {len(x)}.")
    with evaluating(model):
        recon = torch.cat([model.decode_mean(model.encode(xb)[0]) for xb in x.split(batch_size)])
    denom = x.var(0, unbiased=False).sum()
    if denom <= 0:
        raise ValueError("x has no variation (all examples are identical); the ratio is undefined.")
    return float(recon.var(0, unbiased=False).sum() / denom)


@torch.no_grad()
def decoder_sensitivity(model, z: torch.Tensor, low: float = -3.0, high: float = 3.0) -> torch.Tensor:
    r"""How much the decoded image moves when one latent coordinate sweeps from ``low`` to ``high``.

    For each dimension ``j``: the mean absolute pixel difference
    :math:`\frac1{ND}\sum_{n,p}\big|\hat x_p(z^{(n)}_{j\leftarrow \text{high}}) -
    \hat x_p(z^{(n)}_{j\leftarrow \text{low}})\big|` over the codes ``z`` (shape ``(N, d)``), with
    the other coordinates held at their values — what moving slider ``j`` of a latent explorer does.
    Shape ``(d,)``, in pixel units (probabilities for a Bernoulli decoder).
    """
    check_tensor("z", z, min_dim=2)
    if not low < high:
        raise ValueError(f"low must be smaller than high, got low={low}, high={high}.")
    d = z.shape[-1]
    out = torch.empty(d)
    for j in range(d):
        lo, hi = z.clone(), z.clone()
        lo[:, j], hi[:, j] = low, high
        out[j] = (model.decode_mean(hi) - model.decode_mean(lo)).abs().mean()
    return out


@dataclass
class CollapseReport:
    """The numbers of a collapse diagnosis (per-example means over a data set, in nats).

    Attributes:
        elbo, recon, kl: mean ELBO, reconstruction term and KL term (``elbo = recon - kl``).
        log_px: importance-sampled log p(x) with ``log_px_samples`` samples, or ``None``.
        kl_per_dim: mean KL of each latent dimension, shape ``(d,)``; sums to ``kl``.
        activity: :math:`\\operatorname{Var}_x \\mathbb E_q[z_j]` per dimension, shape ``(d,)``.
        active_units: how many dimensions have ``activity > threshold`` (Burda et al., 2015).
        threshold: the activity threshold used.
        recon_variance_ratio: see :func:`reconstruction_variance_ratio` (0 = collapsed).
    """
    elbo: float
    recon: float
    kl: float
    log_px: float | None
    kl_per_dim: torch.Tensor
    activity: torch.Tensor
    active_units: int
    threshold: float
    recon_variance_ratio: float
    log_px_samples: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def latent_dim(self) -> int:
        return len(self.kl_per_dim)

    @property
    def active_dims(self) -> list[int]:
        """Indices of the active dimensions, most informative (largest KL) first."""
        order = torch.argsort(self.kl_per_dim, descending=True).tolist()
        return [j for j in order if self.activity[j] > self.threshold]

    @property
    def inactive_dims(self) -> list[int]:
        """Indices of the inactive dimensions, smallest KL first."""
        order = torch.argsort(self.kl_per_dim).tolist()
        return [j for j in order if not self.activity[j] > self.threshold]

    @property
    def gap(self) -> float | None:
        """``log_px - elbo``: the estimated ELBO gap (an estimate of E_x KL(q(z|x) || p(z|x)))."""
        return None if self.log_px is None else self.log_px - self.elbo

    def row(self) -> dict:
        """The headline numbers as a flat dict (for a table)."""
        return {"ELBO": self.elbo, "log p(x)": self.log_px, "gap": self.gap, "KL": self.kl,
                "active units": f"{self.active_units} / {self.latent_dim}",
                "recon. variance ratio": self.recon_variance_ratio}


def collapse_report(model, x: torch.Tensor, threshold: float = 0.01, log_px_samples: int = 0,
                    n_samples: int = 1, generator: torch.Generator | None = None,
                    batch_size: int = 500) -> CollapseReport:
    """Measure ``model`` on ``x`` (in eval mode): ELBO terms, KL per dimension, active units,
    the reconstruction variance ratio and, when ``log_px_samples > 0``, the importance-sampled
    log p(x) with that many samples. Returns a :class:`CollapseReport`.
    """
    check_tensor("x", x, min_dim=2)
    check_positive_int("n_samples", n_samples)
    threshold = check_positive_float("threshold", threshold)
    if isinstance(log_px_samples, bool) or not isinstance(log_px_samples, int) or log_px_samples < 0:
        raise ValueError(f"log_px_samples must be an int >= 0 (0 skips log p(x)), got {log_px_samples!r}.")
    with evaluating(model):
        recon = kl = 0.0
        for xb in x.split(batch_size):
            terms = model.elbo(xb, n_samples=n_samples, generator=generator)
            recon += terms.recon.double().sum().item()
            kl += terms.kl.double().sum().item()
        recon, kl = recon / len(x), kl / len(x)
        per_dim = kl_per_dimension(model, x, batch_size=batch_size)
        count, activity = active_units(model, x, threshold=threshold, batch_size=batch_size)
        ratio = reconstruction_variance_ratio(model, x, batch_size=batch_size)
        log_px = None
        if log_px_samples:
            log_px = log_marginal(model, x, n_samples=log_px_samples,
                                  generator=generator).double().mean().item()
    return CollapseReport(elbo=recon - kl, recon=recon, kl=kl, log_px=log_px, kl_per_dim=per_dim,
                          activity=activity, active_units=count, threshold=threshold,
                          recon_variance_ratio=ratio, log_px_samples=log_px_samples)


def reports_table(reports: dict, digits: int = 1, fmt: str = "markdown") -> str:
    """A table with one row per named :class:`CollapseReport`.

    ``fmt="markdown"`` gives GitHub-style Markdown (for a terminal or a README), ``fmt="html"`` an
    HTML ``<table>`` (show it with ``IPython.display.HTML``; it renders on every page).
    """
    if not isinstance(reports, dict) or not reports:
        raise TypeError("reports must be a non-empty dict {setting name: CollapseReport}.")
    if fmt not in ("markdown", "html"):
        raise ValueError(f"fmt must be 'markdown' or 'html', got {fmt!r}.")
    for name, r in reports.items():
        if not isinstance(r, CollapseReport):
            raise TypeError(f"reports[{name!r}] must be a CollapseReport, got {type(r).__name__}.")
    k = {r.log_px_samples for r in reports.values() if r.log_px is not None}
    lp = f"log p(x), K={k.pop()}" if len(k) == 1 else "log p(x)"
    head = ["setting", "ELBO (nats)", f"{lp} (nats)", "gap (nats)", "KL (nats)", "active units",
            "recon. variance ratio"]

    def f(v):
        return "–" if v is None else f"{v:.{digits}f}"

    rows = [[str(name), f(r.elbo), f(r.log_px), f(r.gap), f(r.kl), f"{r.active_units} / {r.latent_dim}",
             f"{r.recon_variance_ratio:.2f}"] for name, r in reports.items()]
    if fmt == "markdown":
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    esc = html.escape
    out = ['<table class="vae-report-table">', "<thead><tr>"
           + "".join(f'<th style="text-align:{"left" if i == 0 else "right"}">{esc(h)}</th>'
                     for i, h in enumerate(head)) + "</tr></thead>", "<tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f'<td style="text-align:{"left" if i == 0 else "right"}">{esc(c)}</td>'
                                    for i, c in enumerate(row)) + "</tr>")
    out += ["</tbody>", "</table>"]
    return "\n".join(out)
