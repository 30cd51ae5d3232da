r"""Diagnosing a trained VAE: posterior collapse, and two remedies for it.

:mod:`vae_core.evaluate` measures a model (importance-sampled :math:`\log p(x)`, KL per latent
dimension, active units). This module adds what a diagnosis needs on top:

* :func:`log_marginal_vs_k` — the importance-sampled estimate :math:`\hat{\mathcal L}_K` for several
  ``K``, repeated, so its bias and spread can be plotted;
* :func:`kl_per_example_dimension` — :math:`\mathrm{KL}(q(z_j|x_i)\,\|\,p(z_j))` for every example
  ``i`` and dimension ``j`` (closed form or Monte Carlo);
* :func:`reconstruction_variance_ratio` and :func:`decoder_sensitivity` — does the output depend on
  the input, and on each latent coordinate?
* :func:`collapse_report` — all the numbers of a diagnosis in one :class:`CollapseReport`;
* two remedies: a KL warm-up schedule :func:`linear_warmup` (Bowman et al., 2016; Sønderby et al.,
  2016), usable as ``fit(..., beta=linear_warmup(2))``, and the free-bits objective
  :func:`free_bits_kl` / :class:`FreeBitsVAE` (Kingma et al., 2016);
* :class:`EpochParts` — one pass over a large training set seen by ``fit`` as several short epochs,
  so that a per-epoch schedule can act within a short run.

Checkpoints: importing this module registers ``FreeBitsVAE`` in ``vae_core.models.MODELS``, so
``load_checkpoint`` can rebuild it.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Sequence

import torch

from ._checks import check_positive_float, check_positive_int, check_tensor
from .estimators import reparameterize
from .evaluate import active_units, kl_per_dimension, log_marginal
from .models import MODELS
from .models.vae import VAE
from .objectives import KL_MODES, ELBOTerms

__all__ = ["LinearWarmup", "linear_warmup", "EpochParts", "kl_per_example_dimension", "free_bits_kl",
           "FreeBitsVAE", "log_marginal_vs_k", "reconstruction_variance_ratio", "decoder_sensitivity",
           "CollapseReport", "collapse_report", "reports_table"]


# ------------------------------------------------------------------------------------------------
# Remedy 1: KL warm-up
# ------------------------------------------------------------------------------------------------

class LinearWarmup:
    r"""The KL weight of a linear warm-up, as a function of the (1-based) epoch:

    .. math:: \beta(e) = \beta_0 + (\beta_1 - \beta_0)\,\min\!\Big(1, \frac{e - 1}{E}\Big),
              \qquad e = 1, 2, \dots

    so the first epoch trains at :math:`\beta_0` (default 0: a plain autoencoder with noise), the
    weight grows by :math:`(\beta_1-\beta_0)/E` per epoch, and from epoch :math:`E+1` on it stays
    at :math:`\beta_1` (default 1: the ELBO). Pass it to ``fit(..., beta=LinearWarmup(E))``.
    """

    def __init__(self, epochs: int, start: float = 0.0, end: float = 1.0):
        self.epochs = check_positive_int("epochs", epochs)
        self.start, self.end = _check_beta("start", start), _check_beta("end", end)

    def __call__(self, epoch: int) -> float:
        if isinstance(epoch, bool) or not isinstance(epoch, int):
            raise TypeError(f"epoch must be an int (1 for the first epoch), got {epoch!r}.")
        if epoch < 1:
            raise ValueError(f"epochs are counted from 1 (as fit does), got epoch={epoch}.")
        frac = min(1.0, (epoch - 1) / self.epochs)
        return self.start + (self.end - self.start) * frac

    def values(self, n_epochs: int) -> list[float]:
        """``[beta(1), ..., beta(n_epochs)]``: the schedule a run of ``n_epochs`` epochs sees."""
        return [self(e) for e in range(1, check_positive_int("n_epochs", n_epochs) + 1)]

    def __repr__(self) -> str:
        return f"linear_warmup(epochs={self.epochs}, start={self.start:g}, end={self.end:g})"


def linear_warmup(epochs: int, start: float = 0.0, end: float = 1.0) -> LinearWarmup:
    """A KL warm-up schedule ``epoch -> beta`` from ``start`` to ``end`` over ``epochs`` epochs.

    ``linear_warmup(2).values(4) == [0.0, 0.5, 1.0, 1.0]``. See :class:`LinearWarmup`.
    """
    return LinearWarmup(epochs, start, end)


class EpochParts:
    """A training set seen by ``fit`` as ``parts`` short epochs per pass over the data.

    ``fit`` changes the KL weight and calls its callback once per epoch. On a large data set a
    short run is one or two passes, too coarse for a warm-up; ``fit(model, EpochParts(train, 6),
    epochs=6, beta=linear_warmup(3))`` makes one pass in six steps of the schedule. Each pass draws
    one permutation (and, for ``binarize="dynamic"``, one fresh binarization) and hands out its
    ``parts`` consecutive slices (sizes differ by at most one), one per call of :meth:`epoch_data`;
    every example is seen once per pass.

    Args:
        data: a data set from :func:`vae_core.data.load`, or a float tensor ``(N, D)``.
        parts: how many epochs one pass is cut into (1 gives ordinary epochs).
    """

    def __init__(self, data, parts: int):
        if hasattr(data, "epoch_data") and hasattr(data, "x"):
            self.x = data.x
        elif isinstance(data, torch.Tensor):
            self.x = check_tensor("data", data, min_dim=2).reshape(len(data), -1)
        else:
            raise TypeError(f"data must be a data set from vae_core.data.load(...) or a float tensor "
                            f"(N, D), got {type(data).__name__}.")
        self.parts = check_positive_int("parts", parts)
        if parts > len(self.x):
            raise ValueError(f"parts must be at most the number of examples ({len(self.x)}), got {parts}.")
        self._data = data
        self._pass: torch.Tensor | None = None
        self._slices: list[torch.Tensor] = []

    def __len__(self) -> int:
        """Examples per (short) epoch, rounded up."""
        return math.ceil(len(self.x) / self.parts)

    @property
    def input_dim(self) -> int:
        return self.x.shape[1]

    def epoch_data(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """The next part of the current pass (a new pass starts when the last one is used up)."""
        if not self._slices:
            full = self._data.epoch_data(generator=generator) if hasattr(self._data, "epoch_data") else self.x
            self._pass = full
            self._slices = list(torch.randperm(len(full), generator=generator).tensor_split(self.parts))
        return self._pass[self._slices.pop(0)]

    def __repr__(self) -> str:
        return f"EpochParts(n={len(self.x)}, parts={self.parts})"


def _check_beta(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number >= 0 (a KL weight), got {value!r}.") from None
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a finite number >= 0 (a KL weight), got {value!r}.")
    return v


# ------------------------------------------------------------------------------------------------
# Remedy 2: free bits
# ------------------------------------------------------------------------------------------------

def kl_per_example_dimension(mu: torch.Tensor, logvar: torch.Tensor,
                             z: torch.Tensor | None = None) -> torch.Tensor:
    r""":math:`\mathrm{KL}(q(z_j|x_i)\,\|\,\mathcal N(0,1))` per example and dimension, shape ``(B, d)``.

    With ``z=None`` the closed form :math:`\tfrac12(\mu_j^2 + \sigma_j^2 - \log\sigma_j^2 - 1)`.
    With samples ``z`` of shape ``(L, B, d)`` drawn from ``q``, the Monte-Carlo estimate
    :math:`\frac1L\sum_l \log q(z^{(l)}_j|x) - \log p(z^{(l)}_j)
    = \frac1L\sum_l \tfrac12\big(z_j^{(l)2} - (z^{(l)}_j-\mu_j)^2/\sigma_j^2 - \log\sigma_j^2\big)`.
    Summing over ``j`` gives the KL term of the ELBO.
    """
    check_tensor("mu", mu, min_dim=2)
    check_tensor("logvar", logvar, min_dim=2)
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape (B, d), got {tuple(mu.shape)} "
                         f"and {tuple(logvar.shape)}.")
    if z is None:
        return 0.5 * (mu ** 2 + logvar.exp() - logvar - 1)
    check_tensor("z", z, min_dim=3)
    if z.shape[1:] != mu.shape:
        raise ValueError(f"z must have shape (L, {', '.join(map(str, mu.shape))}) (samples first), "
                         f"got {tuple(z.shape)}.")
    return (0.5 * (z ** 2 - (z - mu) ** 2 / logvar.exp() - logvar)).mean(0)


def free_bits_kl(kl: torch.Tensor, free_bits: float) -> torch.Tensor:
    r"""The free-bits KL term (Kingma et al., 2016), one group per latent dimension.

    Given per-example, per-dimension KLs ``kl`` of shape ``(B, d)`` and :math:`\lambda` =
    ``free_bits`` (nats per dimension), let :math:`m_j = \frac1B\sum_i \mathrm{KL}_{ij}` be the
    batch average of dimension ``j``. Free bits replaces the KL term :math:`\sum_j m_j` by

    .. math:: \sum_j \max(\lambda, m_j),

    so a dimension whose average KL is below :math:`\lambda` is not pushed further towards the
    prior: its first :math:`\lambda` nats are free. Returned per example (shape ``(B,)``) as

    .. math:: \widetilde{\mathrm{KL}}_i = \sum_j \begin{cases}\mathrm{KL}_{ij} & m_j > \lambda\\
              \lambda & m_j \le \lambda\end{cases}

    whose batch mean is exactly :math:`\sum_j\max(\lambda, m_j)` and whose gradient flows only
    through the dimensions above the floor. With ``free_bits=0`` (and KL >= 0) it is ``kl.sum(-1)``.
    """
    check_tensor("kl", kl, min_dim=2)
    if kl.dim() != 2:
        raise ValueError(f"kl must have shape (B, d) (examples, latent dimensions), got {tuple(kl.shape)}.")
    lam = _check_beta("free_bits", free_bits)
    above = kl.mean(0) > lam                                     # (d,): which dimensions pay their KL
    return torch.where(above, kl, torch.full_like(kl, lam)).sum(-1)


class FreeBitsVAE(VAE):
    r"""A :class:`~vae_core.models.vae.VAE` trained with the free-bits objective

    .. math:: \widetilde{\mathcal L} = \frac1B\sum_i \mathbb E_q[\log p(x_i|z)]
              - \beta \sum_j \max\big(\lambda, \tfrac1B\textstyle\sum_i \mathrm{KL}_{ij}\big)

    (see :func:`free_bits_kl`). Free bits is a training device: by default it is applied only in
    training mode, and in eval mode :meth:`elbo` returns the ordinary ELBO, so test ELBOs and
    ``log_marginal`` measure the same quantity as for a plain VAE.

    Args:
        free_bits: :math:`\lambda`, the floor in nats per latent dimension (``0`` gives a plain VAE).
        other arguments: as :class:`~vae_core.models.vae.VAE`.
    """

    def __init__(self, input_dim: int, latent_dim: int, hidden_dims=(400,), likelihood: str = "bernoulli",
                 activation: str = "tanh", free_bits: float = 0.5):
        super().__init__(input_dim, latent_dim, hidden_dims, likelihood, activation)
        self.free_bits = _check_beta("free_bits", free_bits)
        self.config["free_bits"] = self.free_bits

    def elbo(self, x: torch.Tensor, n_samples: int = 1, beta: float = 1.0, kl: str = "analytic",
             generator: torch.Generator | None = None, free_bits: bool | None = None) -> ELBOTerms:
        """Per-example ``(objective, recon, kl)``.

        ``objective = recon - beta * free_bits_kl`` when free bits applies (``free_bits=True``, or
        ``None`` in training mode), else the ELBO ``recon - beta * kl``. ``recon`` and ``kl`` are
        always the true terms, so ``recon - kl`` is the ELBO in both cases.
        """
        check_positive_int("n_samples", n_samples)
        if beta != 0:
            check_positive_float("beta", beta)
        if kl not in KL_MODES:
            raise ValueError(f"kl must be one of {KL_MODES}, got {kl!r}.")
        apply = self.training if free_bits is None else bool(free_bits)
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, n_samples, generator=generator)   # (L, B, d)
        recon = self.log_likelihood(x, z).mean(0)
        kl_dims = kl_per_example_dimension(mu, logvar, None if kl == "analytic" else z)
        kl_true = kl_dims.sum(-1)
        penalty = free_bits_kl(kl_dims, self.free_bits) if apply else kl_true
        return ELBOTerms(recon - beta * penalty, recon, kl_true)


# Checkpoints rebuild models by class name from this registry.
MODELS.setdefault("FreeBitsVAE", FreeBitsVAE)


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
    was_training = model.training
    model.eval()
    try:
        recon = torch.cat([model.decode_mean(model.encode(xb)[0]) for xb in x.split(batch_size)])
    finally:
        model.train(was_training)
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
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
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
    finally:
        model.train(was_training)
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
