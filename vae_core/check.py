r"""Self-checks for your own implementations: ``check.gaussian_kl(my_kl)`` and friends.

Each function here takes **your** function, calls it on random inputs drawn from a fixed seed, and
compares the answer with ``vae_core``'s own. When they disagree it tries the mistakes people
usually make (a sign, a missing :math:`\tfrac12`, :math:`\sigma` where :math:`\sigma^2` belongs, a
mean where a sum belongs, ...) and names the one that explains your numbers. Every check returns a
:class:`CheckResult`: ``.ok`` (a bool; the result itself is truthy only when ok), ``.problems`` (a
list of sentences) and a one-paragraph verdict that a notebook shows when the result is the last
expression of a cell (``print(result)`` shows it too).

======================================  =====================================  =====================================
check                                   your function                          compared with
======================================  =====================================  =====================================
:func:`gaussian_kl`                     ``fn(mu, logvar) -> (B,)``             ``distributions.kl_normal_standard``
:func:`reparameterize`                  ``fn(mu, logvar, eps) -> (B, d)``      ``estimators.reparameterize``
:func:`bernoulli_log_likelihood`        ``fn(x, logits) -> (B,)``              ``distributions.bernoulli_log_prob``
:func:`elbo`                            ``fn(x, logits, mu, logvar) -> (B,)``  ``objectives.gaussian_elbo``
:func:`gumbel_softmax`                  ``fn(logits, tau, noise) -> (B, K)``   ``gumbel.gumbel_softmax``
======================================  =====================================  =====================================

Conventions are the library's: encoders give ``(mu, logvar)`` with ``logvar`` :math:`=\log\sigma^2`,
Bernoulli decoders give logits, every per-example value is summed over data and latent dimensions.
The checks accept the library's own functions too (``check.gaussian_kl(kl_normal_standard)`` is ok).
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from .distributions import bernoulli_log_prob, kl_normal_standard
from .estimators import reparameterize as _library_reparameterize
from .gumbel import gumbel_sample
from .gumbel import gumbel_softmax as _library_gumbel_softmax
from .objectives import gaussian_elbo

__all__ = ["CheckResult", "gaussian_kl", "reparameterize", "bernoulli_log_likelihood", "elbo",
           "gumbel_softmax"]

#: every check draws its inputs from generators seeded with this number: same function, same verdict.
SEED = 2013

_NOISE_NAMES = ("eps", "epsilon", "noise", "e")
_GUMBEL_NAMES = ("noise", "g", "gumbel", "gumbels", "gumbel_noise")


# --------------------------------------------------------------------------- the result

@dataclass(eq=False, repr=False)
class CheckResult:
    """What a check found.

    Attributes:
        name: the check (``"gaussian_kl"``, ...).
        ok: True when your function agrees with the library on every test the check ran.
        problems: one sentence (or a few) per problem found; empty when ``ok``.
        reference: the library function it was compared with.
        tested: what was tried (inputs, shapes).
        max_abs_diff: the largest absolute difference from the library's values, when comparable.
    """
    name: str
    ok: bool
    problems: list = field(default_factory=list)
    reference: str = ""
    tested: str = ""
    max_abs_diff: float | None = None

    def __bool__(self) -> bool:
        return self.ok

    @property
    def verdict(self) -> str:
        """The one-paragraph verdict (plain text)."""
        if self.ok:
            diff = "" if self.max_abs_diff is None else f" (largest difference {self.max_abs_diff:.1e})"
            return (f"✓ check.{self.name}: ok. Your function agrees with {self.reference} on "
                    f"{self.tested}{diff}.")
        if len(self.problems) == 1:
            found = self.problems[0]
        else:
            found = " ".join(f"({i}) {p}" for i, p in enumerate(self.problems, 1))
        return (f"✗ check.{self.name}: not yet. {found} (Compared with {self.reference} on "
                f"{self.tested}.)")

    def __str__(self) -> str:
        return self.verdict

    def __repr__(self) -> str:
        return self.verdict

    def _repr_markdown_(self) -> str:
        head, rest = self.verdict.split(": ", 1)
        status, rest = rest.split(". ", 1)
        return f"**{head}: {status}.** {rest}"


# --------------------------------------------------------------------------- shared machinery

class _Failed(Exception):
    """Raised inside a check to stop it with one problem."""


def _require_function(check: str, fn, expected: str) -> None:
    if callable(fn):
        return
    if isinstance(fn, torch.Tensor):
        hint = (f" It looks like the result of calling your function: pass the function itself, "
                f"`check.{check}(my_fn)`, not `check.{check}(my_fn(...))`.")
    elif fn is None:
        hint = " Did the cell that defines your function run, and does the name refer to it?"
    else:
        hint = ""
    raise TypeError(f"check.{check} expects a function {expected}; got {type(fn).__name__} "
                    f"{_short(fn)}.{hint}")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _parameters(fn):
    try:
        return inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins and some C functions have no signature
        return None


def _call(fn, args: tuple, kwargs: dict, call_text: str):
    """Call ``fn``; a raised exception, or an input changed in place, becomes a _Failed."""
    inputs = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
    before = [a.detach().clone() for a in inputs]
    try:
        out = fn(*args, **kwargs)
    except Exception as err:  # the student's code may raise anything
        message = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise _Failed(f"Calling it as `{call_text}` raised {type(err).__name__}"
                      f"{': ' + message if message else ''}. Run that call in a cell to see the full "
                      f"traceback.") from None
    for a, b in zip(inputs, before):
        if not torch.equal(a.detach(), b):
            raise _Failed("It changed one of its inputs in place (a method ending in `_`, such as "
                          "`logvar.exp_()`, or an assignment into a slice); compute new tensors "
                          "instead, since autograd needs the inputs unchanged.")
    return out


def _as_tensor(out, expected: str) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        if not out.is_floating_point():
            raise _Failed(f"It returns a tensor of dtype {out.dtype}; expected floating-point values "
                          f"({expected}).")
        return out
    if out is None:
        raise _Failed("It returns None: is a `return` statement missing?")
    kind = type(out).__name__
    if type(out).__module__ == "numpy":
        raise _Failed(f"It returns a numpy {kind}; return a torch.Tensor ({expected}). Stay with torch "
                      f"operations so that gradients can flow through your function.")
    if isinstance(out, (int, float)):
        raise _Failed(f"It returns a Python number ({out!r}); expected a torch.Tensor ({expected}). "
                      f"Do not call `.item()`: it ends the gradient's path and keeps one number "
                      f"for the whole batch.")
    raise _Failed(f"It returns a {kind}; expected a torch.Tensor ({expected}).")


def _tolerance(out: torch.Tensor) -> float:
    return 1e-9 if out.dtype == torch.float64 else 1e-4


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float) -> bool:
    if a.shape != b.shape:
        return False
    a, b = a.detach().double(), b.detach().double()
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return False
    scale = max(1.0, b.abs().max().item()) if b.numel() else 1.0
    return bool(((a - b).abs() <= rtol * scale + rtol * b.abs()).all())


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _check_finite(out: torch.Tensor, hint: str) -> None:
    if not torch.isfinite(out.detach()).all():
        bad = "NaN" if torch.isnan(out.detach()).any() else "inf"
        raise _Failed(f"It returns {bad} for some of the inputs. {hint}")


def _check_values(out, ref, variants, *, rtol, what, fallback, scale_hints=(), offset_hints=()):
    """Compare ``out`` with ``ref``; on a mismatch name a known mistake. Returns the max difference."""
    if _close(out, ref, rtol):
        return (out.detach().double() - ref.double()).abs().max().item()
    for message, value in variants:
        if value is not None and _close(out, value, rtol):
            raise _Failed(message)
    o, r = out.detach().double(), ref.double()
    if r.dim() == 1 and len(r) > 1:
        # one constant factor or one constant offset for every example
        mask = r.abs() > 1e-6
        if mask.all():
            ratio = o / r
            c = ratio.mean().item()
            if (ratio - c).abs().max().item() <= 1e3 * rtol * max(1.0, abs(c)):
                extra = next((h for v, h in scale_hints if math.isclose(c, v, rel_tol=1e-6)), "")
                raise _Failed(f"Your {what} is {_fmt(c)} times the right value for every example. "
                              f"{extra}".strip())
        diff = o - r
        k = diff.mean().item()
        if (diff - k).abs().max().item() <= 1e3 * rtol * max(1.0, r.abs().max().item()):
            extra = next((h for v, h in offset_hints if math.isclose(k, v, rel_tol=1e-6)), "")
            raise _Failed(f"Your {what} differs from the right value by the same constant, {_fmt(k)}, "
                          f"for every example: a constant term is missing or extra. {extra}".strip())
    i = int((o - r).abs().flatten().argmax())
    raise _Failed(f"Your {what} differs from vae_core's (at element {i}: yours {_fmt(o.flatten()[i].item())}, "
                  f"vae_core's {_fmt(r.flatten()[i].item())}; largest difference "
                  f"{(o - r).abs().max().item():.3g}), and not in one of the ways this check knows. "
                  f"{fallback}")


def _check_per_example_shape(out: torch.Tensor, ref: torch.Tensor, rtol: float, per_dim: str):
    """``out`` must have ``ref``'s shape ``(B,)``. Returns ``(values to diagnose, shape problem or None)``;
    raises when the shape alone explains everything."""
    B = ref.shape[0]
    if out.shape == ref.shape:
        return out, None
    o = out.detach().double()
    if o.numel() == 1:
        o = o.reshape(())
        for value, text in ((ref.sum(), "the sum over the batch"), (ref.mean(), "the mean over the batch"),
                            (-ref.mean(), "minus the mean over the batch (the training loss)"),
                            (-ref.sum(), "minus the sum over the batch")):
            if _close(o, value.double(), rtol):
                raise _Failed(f"It returns one number, {text}, where one value per example (shape ({B},)) "
                              f"belongs. Keep the batch dimension here: the average over the batch, and "
                              f"any minus sign, belong in the training loss.")
        raise _Failed(f"It returns a single number where one value per example (shape ({B},)) belongs; "
                      f"keep the batch dimension (sum only over the last one).")
    if o.dim() == 2 and o.shape[0] == B:
        if o.shape[1] == 1:
            return out.reshape(B), None
        note = (f"It returns one value per {per_dim} (shape {tuple(out.shape)}) where one value per "
                f"example (shape ({B},)) belongs: sum over the last dimension, `.sum(-1)`.")
        if _close(o.sum(-1), ref.double(), rtol):
            raise _Failed(note)
        return out.sum(-1), note   # the values are wrong too: diagnose them after the shape
    raise _Failed(f"It returns shape {tuple(out.shape)} where one value per example, shape ({B},), belongs.")


def _finish(name: str, reference: str, tested: str, body: Callable[[], float | None]) -> CheckResult:
    problems: list = []
    diff = None
    try:
        diff = body(problems)
    except _Failed as failure:
        problems.append(str(failure))
    return CheckResult(name=name, ok=not problems, problems=problems, reference=reference, tested=tested,
                       max_abs_diff=diff if not problems else None)


def _gradient_check(fn_out: torch.Tensor, ref_out: torch.Tensor, inputs: dict, ref_inputs: dict,
                    rtol: float, weights: torch.Tensor) -> None:
    """The gradients of ``sum(w * out)`` must equal the library's, for every named input."""
    if not fn_out.requires_grad:
        raise _Failed("Its values are right, but no gradient flows through it: the result is cut off "
                      "from the inputs (`.detach()`, `.item()`, `torch.no_grad()`, numpy, or "
                      "`torch.normal(mu, std)`, which samples without a path back to mu and std). "
                      "Training needs that gradient.")
    names = list(inputs)
    got = torch.autograd.grad((weights * fn_out).sum(), [inputs[n] for n in names], allow_unused=True)
    want = torch.autograd.grad((weights * ref_out).sum(), [ref_inputs[n] for n in names], allow_unused=True)
    for n, g, w in zip(names, got, want):
        w = torch.zeros_like(ref_inputs[n]) if w is None else w
        if g is None:
            if w.abs().max() > 0:
                raise _Failed(f"Its values are right, but no gradient reaches `{n}`: somewhere the path from "
                              f"`{n}` to the result is cut (`.detach()`, `.item()`, numpy).")
            continue
        if not _close(g, w, max(rtol, 1e-7) * 10):
            raise _Failed(f"Its values are right, but its gradient with respect to `{n}` is not: part of "
                          f"the computation is cut off from `{n}` (`.detach()` or a constant copy).")


def _uniform(shape, low, high, gen):
    return low + (high - low) * torch.rand(shape, generator=gen, dtype=torch.float64)


# --------------------------------------------------------------------------- the Gaussian KL

def _kl_inputs(B=6, d=4):
    gen = torch.Generator().manual_seed(SEED)
    mu = 1.5 * torch.randn(B, d, generator=gen, dtype=torch.float64)
    logvar = _uniform((B, d), -2.5, 1.5, gen)      # sigma^2 from 0.08 to 4.5: sigma and sigma^2 differ
    return mu, logvar


def _kl_variants(mu, logvar):
    d = mu.shape[-1]
    var, std = logvar.exp(), (0.5 * logvar).exp()
    ref = kl_normal_standard(mu, logvar)
    half_sum = lambda t: 0.5 * t.sum(-1)  # noqa: E731
    return ref, [
        ("It has the wrong sign. KL(q‖p) is never negative: KL = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1). "
         "The familiar ½ Σ (1 + log σ² − μ² − σ²) is minus the KL, the term the ELBO adds.", -ref),
        ("It is missing the factor ½ in front of the sum (your values are twice the right ones).", 2 * ref),
        ("It has an extra factor ½ (your values are half the right ones).", 0.5 * ref),
        ("It uses σ = exp(½·logvar) where σ² = exp(logvar) belongs: the term inside the sum is σ², "
         "the variance, not the standard deviation.", half_sum(mu ** 2 + std - logvar - 1)),
        ("It treats logvar as log σ (it uses exp(2·logvar) and 2·logvar). The encoder's second output is "
         "log σ², so σ² = exp(logvar) and log σ² = logvar.",
         half_sum(mu ** 2 + torch.exp(2 * logvar) - 2 * logvar - 1)),
        ("It uses log σ = ½·logvar where log σ² = logvar belongs.", half_sum(mu ** 2 + var - 0.5 * logvar - 1)),
        ("It adds log σ² where it must be subtracted: KL = ½ Σ (μ² + σ² − log σ² − 1).",
         half_sum(mu ** 2 + var + logvar - 1)),
        ("It forgets the −1 inside the sum (your values are d/2 too large).", half_sum(mu ** 2 + var - logvar)),
        ("It uses μ where μ² belongs.", half_sum(mu + var - logvar - 1)),
        (f"It averages over the latent dimensions (d = {d} in this check) where a sum belongs. The KL of independent "
         f"dimensions is the sum of their KLs; a mean divides it by d, which in a loss is a silent "
         f"β = 1/d.", ref / d),
        ("It computes KL(p‖q), the other direction: ½ Σ ((1 + μ²)/σ² + log σ² − 1). The ELBO needs "
         "KL(q‖p) = ½ Σ (μ² + σ² − log σ² − 1), with q the encoder's Gaussian and p = N(0, I).",
         half_sum((1 + mu ** 2) / var + logvar - 1)),
        ("It uses logvar itself as σ. logvar is log σ², any real number: σ = exp(½·logvar).",
         half_sum(mu ** 2 + logvar ** 2 - torch.log(logvar ** 2) - 1)),
    ]


def gaussian_kl(fn) -> CheckResult:
    r"""Check ``fn(mu, logvar)``, the KL divergence :math:`\mathrm{KL}(q\,\|\,p)` of a diagonal Gaussian from N(0, I).

    ``fn`` receives ``mu`` and ``logvar`` of shape ``(B, d)`` (float64) and must return one value per
    example, shape ``(B,)``, equal to :func:`vae_core.distributions.kl_normal_standard`.
    """
    _require_function("gaussian_kl", fn, "fn(mu, logvar) returning the KL of each example, shape (B,)")
    mu, logvar = _kl_inputs()
    B, d = mu.shape

    def body(problems):
        out = _as_tensor(_call(fn, (mu, logvar), {}, "fn(mu, logvar)"), f"shape ({B},)")
        rtol = _tolerance(out)
        _check_finite(out, "The inputs include negative log-variances (σ² < 1): `torch.log(logvar)` or "
                           "`torch.sqrt(logvar)` is NaN there. logvar is log σ²; σ² = exp(logvar).")
        ref, variants = _kl_variants(mu, logvar)
        shaped, note = _check_per_example_shape(out, ref, rtol, "latent dimension")
        if note:
            problems.append(note)
        diff = _check_values(shaped, ref, variants, rtol=rtol, what="KL", fallback=(
            "Compare term by term with ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1), σ² = exp(logvar)."),
            scale_hints=[(-1.0, "That is a sign error."), (2.0, "The factor ½ is missing."),
                         (1 / d, f"You average over the latent dimensions (d = {d} here) where a sum belongs.")],
            offset_hints=[(d / 2, "The −1 inside the sum is missing."), (-d / 2, "There is one −1 too many.")])
        mu_g, lv_g = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
        mu_r, lv_r = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
        _gradient_check(_call(fn, (mu_g, lv_g), {}, "fn(mu, logvar)").reshape(B), kl_normal_standard(mu_r, lv_r),
                        {"mu": mu_g, "logvar": lv_g}, {"mu": mu_r, "logvar": lv_r}, rtol,
                        torch.linspace(0.5, 1.5, B, dtype=torch.float64))
        return diff

    return _finish("gaussian_kl", "vae_core.distributions.kl_normal_standard", f"{B} random (μ, log σ²) "
                   f"of d = {d} dimensions, with σ² from 0.08 to 4.5", body)


# --------------------------------------------------------------------------- reparameterization

def _reparam_mode(fn):
    """How to call ``fn``: ("noise", name or None), ("generator", None) or ("global", None)."""
    params = _parameters(fn)
    if params is None:
        return "noise", None
    for name in params:
        if name.lower() in _NOISE_NAMES:
            return "noise", name
    if "generator" in params:
        return "generator", None
    kinds = [p.kind for p in params.values()]
    positional = sum(k in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                     for k in kinds)
    if positional >= 3 or inspect.Parameter.VAR_POSITIONAL in kinds:
        return "noise", None
    return "global", None


def _reparam_variants(mu, logvar, eps):
    std, var = (0.5 * logvar).exp(), logvar.exp()
    return [
        ("It computes z = μ + σ²·ε: exp(logvar) is the variance σ², not the standard deviation. The "
         "samples then have variance σ⁴ instead of σ² (far too narrow when σ < 1, too wide when σ > 1). "
         "Use σ = exp(½·logvar): z = μ + exp(0.5 * logvar) * ε.", mu + var * eps),
        ("It uses logvar itself as the standard deviation (z = μ + logvar·ε). logvar is log σ²; "
         "σ = exp(½·logvar).", mu + logvar * eps),
        ("It uses ½·logvar = log σ as the standard deviation; exponentiate it: σ = exp(½·logvar).",
         mu + 0.5 * logvar * eps),
        ("It computes z = μ − σ·ε. Because ε is symmetric this has the right distribution, but it does not "
         "use the noise it was given the way the library does (z = μ + σ·ε), so the two cannot be "
         "compared sample by sample; write μ + σ·ε.", mu - std * eps),
        ("It ignores logvar (z = μ + ε): every sample then has variance 1 whatever the encoder says.",
         mu + eps),
        ("It forgets μ (z = σ·ε): every sample is centred at 0.", std * eps),
        ("It swaps the roles of μ and σ (z = μ·ε + σ).", mu * eps + std),
        ("It returns μ: the noise is missing (z = μ + σ·ε).", mu.clone()),
    ]


def _reparam_moments(fn, mode, problems) -> None:
    """Check the sample mean and variance of ``fn``'s draws (for functions that draw their own noise)."""
    n = 20_000
    mu_row = torch.tensor([-1.0, 0.5, 2.0, 0.0], dtype=torch.float64)
    lv_row = torch.tensor([-2.0, -0.6, 0.9, 1.6], dtype=torch.float64)
    mu, logvar = mu_row.expand(n, 4).clone(), lv_row.expand(n, 4).clone()
    if mode == "generator":
        z = _call(fn, (mu, logvar), {"generator": torch.Generator().manual_seed(SEED + 1)},
                  "fn(mu, logvar, generator=g)")
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED + 1)
            z = _call(fn, (mu, logvar), {}, "fn(mu, logvar)")
    z = _as_tensor(z, f"samples of shape {tuple(mu.shape)}")
    if z.shape != mu.shape:
        raise _Failed(f"It returns shape {tuple(z.shape)}; one sample per row of mu, shape {tuple(mu.shape)}, "
                      f"was expected.")
    _check_finite(z, "Negative log-variances are legal: `torch.sqrt(logvar)` or `torch.log(logvar)` is NaN "
                     "there. σ = exp(½·logvar).")
    z = z.detach().double()
    m, v = z.mean(0), z.var(0)
    sd_mean = 6 * v.clamp_min(1e-12).sqrt() / math.sqrt(n)
    def near(target):      # variance ratio within 6 standard errors (sd of a sample variance: sqrt(2/n))
        return bool((((v - target).abs() / target.clamp_min(1e-12)) < 6 * math.sqrt(2 / n) + 1e-3).all())

    var = lv_row.exp()
    if (v < 1e-12).all():
        raise _Failed("Its samples do not vary: it returns μ and the noise is missing (z = μ + σ·ε).")
    mean_ok = bool(((m - mu_row).abs() <= sd_mean).all())
    if not near(var):
        for target, message in (
                (var ** 2, "Its samples have variance σ⁴ instead of σ²: it computes z = μ + σ²·ε, with "
                           "exp(logvar), the variance, where σ = exp(½·logvar) belongs."),
                (lv_row ** 2, "Its samples have variance (logvar)²: it uses logvar itself as the standard "
                              "deviation; σ = exp(½·logvar)."),
                (torch.ones(4, dtype=torch.float64), "Its samples have variance 1 whatever logvar says: σ is "
                                                     "missing (z = μ + σ·ε)."),
                ((0.5 * lv_row) ** 2, "It uses ½·logvar = log σ as the standard deviation; σ = exp(½·logvar).")):
            if near(target):
                raise _Failed(message)
        raise _Failed("Its samples have the wrong variance: for log σ² = "
                      f"{[round(x, 2) for x in lv_row.tolist()]} they should have variance "
                      f"{[round(x, 3) for x in var.tolist()]}, and have {[round(x, 3) for x in v.tolist()]}.")
    if not mean_ok:
        if bool((m.abs() <= sd_mean).all()):
            raise _Failed("Its samples are centred at 0, not at μ: it forgets μ (z = μ + σ·ε).")
        raise _Failed(f"Its samples have the wrong mean: {[round(x, 3) for x in m.tolist()]} where μ = "
                      f"{mu_row.tolist()}.")
    # gradients: dz/dmu = 1 and dz/dlogvar = (z - mu) / 2 for z = mu + exp(logvar / 2) * eps
    mu_g = mu_row[None].repeat(5, 1).requires_grad_(True)
    lv_g = lv_row[None].repeat(5, 1).requires_grad_(True)
    if mode == "generator":
        zg = _call(fn, (mu_g, lv_g), {"generator": torch.Generator().manual_seed(SEED + 2)},
                   "fn(mu, logvar, generator=g)")
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED + 2)
            zg = _call(fn, (mu_g, lv_g), {}, "fn(mu, logvar)")
    if not zg.requires_grad:
        raise _Failed("Its samples have the right mean and variance, but no gradient flows back to mu and "
                      "logvar (`torch.normal(mu, std)`, `.detach()`, `torch.no_grad()` or numpy cut the "
                      "path). That path is the point of the reparameterization: draw ε ~ N(0, I) and "
                      "compute μ + σ·ε with torch operations.")
    g_mu, g_lv = torch.autograd.grad(zg.sum(), [mu_g, lv_g], allow_unused=True)
    if (g_mu is None or not g_mu.abs().any()) and (g_lv is None or not g_lv.abs().any()):
        raise _Failed("Its samples have the right mean and variance, but no gradient reaches mu or logvar: "
                      "`torch.normal(mu, std)` samples without a path back to its arguments, and so do "
                      "`.detach()` and numpy. That path is the point of the reparameterization: draw "
                      "ε ~ N(0, I) and compute μ + σ·ε with torch operations.")
    if g_mu is None or not torch.allclose(g_mu, torch.ones_like(g_mu)):
        raise _Failed("Its samples have the right law, but the gradient with respect to μ is not 1 for each "
                      "coordinate: μ must enter as z = μ + σ·ε.")
    if g_lv is None or not torch.allclose(g_lv, 0.5 * (zg - mu_g).detach(), atol=1e-6):
        raise _Failed("Its samples have the right law, but the gradient with respect to logvar is not "
                      "½·σ·ε = (z − μ)/2: σ must enter as exp(½·logvar) multiplying the noise.")


def _reparam_inputs(B=6, d=4):
    """``mu``, ``logvar``, and the noise ``eps`` that the library draws from a generator seeded with
    ``noise_seed``, so that ``estimators.reparameterize`` with that generator gives the reference samples."""
    gen = torch.Generator().manual_seed(SEED)
    mu = 1.5 * torch.randn(B, d, generator=gen, dtype=torch.float64)
    logvar = _uniform((B, d), -2.5, 1.5, gen)
    noise_seed = SEED + 3
    eps = torch.randn(B, d, generator=torch.Generator().manual_seed(noise_seed), dtype=torch.float64)
    return mu, logvar, eps, noise_seed


def reparameterize(fn) -> CheckResult:
    r"""Check a reparameterized Gaussian sampler, :math:`z = \mu + \exp(\tfrac12\log\sigma^2)\odot\varepsilon`.

    Three ways of calling ``fn`` are recognised from its signature:

    * ``fn(mu, logvar, eps)`` (a parameter named ``eps``, ``epsilon``, ``noise`` or ``e``, or any
      third positional parameter): the check supplies the standard-normal noise and compares sample
      by sample with :math:`\mu + \sigma\odot\varepsilon`; this names mistakes such as
      :math:`\mu + \sigma^2\odot\varepsilon` exactly. The recommended form.
    * ``fn(mu, logvar, generator=g)`` (like :func:`vae_core.estimators.reparameterize`): compared
      exactly when it draws ``torch.randn(mu.shape, generator=g)`` as the library does, else by the
      mean and variance of 20,000 samples.
    * ``fn(mu, logvar)`` drawing from torch's global generator: mean and variance of 20,000 samples
      (torch's global random state is left as it was).

    In every case the check also verifies that gradients flow back to ``mu`` and ``logvar``.
    """
    _require_function("reparameterize", fn, "fn(mu, logvar, eps) returning z = mu + sigma * eps, shape (B, d)")
    mode, noise_name = _reparam_mode(fn)
    mu, logvar, eps, noise_seed = _reparam_inputs()
    B, d = mu.shape

    def library(m, lv):
        return _library_reparameterize(m, lv, generator=torch.Generator().manual_seed(noise_seed))

    def call(m, lv, e):
        if noise_name:
            return _call(fn, (m, lv), {noise_name: e}, f"fn(mu, logvar, {noise_name}=eps)")
        return _call(fn, (m, lv, e), {}, "fn(mu, logvar, eps)")

    def body(problems):
        if mode != "noise":
            z = None
            if mode == "generator":
                z = _as_tensor(_call(fn, (mu, logvar), {"generator": torch.Generator().manual_seed(noise_seed)},
                                     "fn(mu, logvar, generator=g)"), f"shape ({B}, {d})")
                ref = library(mu, logvar)
                if _close(z, ref, _tolerance(z)):
                    mu_g, lv_g = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
                    mu_r, lv_r = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
                    zg = _call(fn, (mu_g, lv_g), {"generator": torch.Generator().manual_seed(noise_seed)},
                               "fn(mu, logvar, generator=g)")
                    _gradient_check(zg, library(mu_r, lv_r), {"mu": mu_g, "logvar": lv_g},
                                    {"mu": mu_r, "logvar": lv_r}, _tolerance(z), torch.ones(B, d, dtype=mu.dtype))
                    return (z.detach().double() - ref).abs().max().item()
            _reparam_moments(fn, mode, problems)
            return None
        z = _as_tensor(call(mu, logvar, eps), f"samples of shape ({B}, {d})")
        rtol = _tolerance(z)
        if z.shape != mu.shape:
            raise _Failed(f"It returns shape {tuple(z.shape)}; z has the shape of mu, ({B}, {d}).")
        _check_finite(z, "Negative log-variances are legal: `torch.sqrt(logvar)` or `torch.log(logvar)` is "
                         "NaN there. σ = exp(½·logvar).")
        ref = library(mu, logvar)          # = mu + exp(logvar / 2) * eps
        if not _close(z, ref, rtol):
            for message, value in _reparam_variants(mu, logvar, eps):
                if _close(z, value, rtol):
                    raise _Failed(message)
            again = _as_tensor(call(mu, logvar, eps), f"shape ({B}, {d})")
            if not _close(again, z, rtol):
                raise _Failed("It gives different samples for the same ε: it draws its own noise instead of using "
                              "the `eps` it is given. Write z = μ + σ·ε with that ε, so that the randomness "
                              "stays outside the function (and the check can compare sample by sample).")
            other = _as_tensor(call(mu, logvar, -eps), f"shape ({B}, {d})")
            if _close(other, z, rtol):
                raise _Failed("It returns the same z for ε and for −ε: it ignores the noise it is given. "
                              "Write z = μ + σ·ε.")
            _check_values(z, ref, [], rtol=rtol, what="sample", fallback="Write z = μ + exp(½·logvar)·ε.")
        mu_g, lv_g = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
        mu_r, lv_r = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
        zg = call(mu_g, lv_g, eps)
        _gradient_check(zg, library(mu_r, lv_r), {"mu": mu_g, "logvar": lv_g},
                        {"mu": mu_r, "logvar": lv_r}, rtol, torch.linspace(0.5, 1.5, d, dtype=torch.float64))
        return (z.detach().double() - ref).abs().max().item()

    tested = {"noise": f"{B}×{d} random (μ, log σ², ε) with σ² from 0.08 to 4.5, and its gradients",
              "generator": "seeded noise (generator=g): exact samples or the mean and variance of 20,000 draws, "
                           "and its gradients",
              "global": "the mean and variance of 20,000 draws, and its gradients"}[mode]
    return _finish("reparameterize", "vae_core.estimators.reparameterize", tested, body)


# --------------------------------------------------------------------------- Bernoulli log-likelihood

def bernoulli_log_likelihood(fn) -> CheckResult:
    r"""Check ``fn(x, logits)``, the Bernoulli log-likelihood :math:`\sum_i x_i\log p_i + (1-x_i)\log(1-p_i)`.

    Here :math:`p = \operatorname{sigmoid}(\text{logits})`.

    ``x`` is binary, shape ``(B, D)``; ``fn`` must return ``(B,)`` equal to
    :func:`vae_core.distributions.bernoulli_log_prob`. A second test uses float32 logits up to
    ±40, where ``sigmoid`` rounds to exactly 0 or 1 and ``log`` of it is ``-inf``: formulas in
    logits (``F.logsigmoid``, ``binary_cross_entropy_with_logits``) pass, ``log(sigmoid(...))`` does not.
    """
    _require_function("bernoulli_log_likelihood", fn,
                      "fn(x, logits) returning log p(x | logits) of each example, shape (B,)")
    gen = torch.Generator().manual_seed(SEED)
    B, D = 6, 10
    x = torch.bernoulli(torch.full((B, D), 0.5, dtype=torch.float64), generator=gen)
    x[0, :2] = torch.tensor([0.0, 1.0], dtype=torch.float64)   # both values present in every run
    logits = 2 * torch.randn(B, D, generator=gen, dtype=torch.float64)

    def body(problems):
        out = _as_tensor(_call(fn, (x, logits), {}, "fn(x, logits)"), f"shape ({B},)")
        rtol = _tolerance(out)
        _check_finite(out, "The logits are any real numbers (log p − log(1 − p)), not probabilities: "
                           "`torch.log(logits)` is NaN for negative ones. Use p = sigmoid(logits), or better "
                           "`F.logsigmoid(logits)` and `F.logsigmoid(-logits)`.")
        ref = bernoulli_log_prob(x, logits)
        shaped, note = _check_per_example_shape(out, ref, rtol, "pixel")
        if note:
            problems.append(note)
        log_p, log_1mp = F.logsigmoid(logits), F.logsigmoid(-logits)
        bce = F.binary_cross_entropy_with_logits
        variants = [
            ("It has the wrong sign: it returns the binary cross-entropy, −log p(x|z) (a loss, ≥ 0). The "
             "log-likelihood is its negative (≤ 0).", -ref),
            (f"It averages over the pixels (D = {D} in this check) where a sum belongs (your values are 1/D "
             f"of the right ones). `F.binary_cross_entropy_with_logits` averages by default: pass "
             f"`reduction='none'` and sum over the last dimension. In a VAE's loss the mean is a silent change "
             f"of β (the KL then weighs D times more).", ref / D),
            ("It returns the mean binary cross-entropy over the pixels: a sign error and a mean where "
             "a sum belongs. Use `-F.binary_cross_entropy_with_logits(logits, x, reduction='none').sum(-1)`.",
             -ref / D),
            ("It swaps p and 1 − p (x·log(1 − p) + (1 − x)·log p): check the sign of the logits, "
             "p = sigmoid(+logits).", bernoulli_log_prob(x, -logits)),
            ("It drops the (1 − x)·log(1 − p) term, so pixels that are 0 contribute nothing.",
             (x * log_p).sum(-1)),
            ("It drops the x·log p term, so pixels that are 1 contribute nothing.", ((1 - x) * log_1mp).sum(-1)),
            ("It applies the sigmoid twice: it treats sigmoid(logits) as logits. "
             "`binary_cross_entropy_with_logits` applies the sigmoid itself; pass it the raw logits.",
             bernoulli_log_prob(x, torch.sigmoid(logits))),
            ("It swaps the arguments of `F.binary_cross_entropy_with_logits(input, target)`: the logits come "
             "first, the data second.", -bce(x, logits, reduction="none").sum(-1)),
        ]
        diff = _check_values(shaped, ref, variants, rtol=rtol, what="log-likelihood", fallback=(
            "Compare with Σ_i x_i·log p_i + (1 − x_i)·log(1 − p_i), p = sigmoid(logits)."),
            scale_hints=[(-1.0, "That is a sign error (cross-entropy instead of log-likelihood)."),
                         (1 / D, f"That is a mean over the pixels (D = {D} here) where a sum belongs.")])
        lg, lr = logits.clone().requires_grad_(True), logits.clone().requires_grad_(True)
        _gradient_check(_call(fn, (x, lg), {}, "fn(x, logits)").reshape(B), bernoulli_log_prob(x, lr),
                        {"logits": lg}, {"logits": lr}, rtol,
                        torch.linspace(0.5, 1.5, B, dtype=torch.float64))
        # numerical stability: float32, logits far from 0 with both values of x
        big = torch.tensor([[40.0, -40.0, 40.0, -40.0, 3.0, -3.0]])
        xb = torch.tensor([[1.0, 0.0, 0.0, 1.0, 1.0, 0.0]])
        out_big = _as_tensor(_call(fn, (xb, big), {}, "fn(x, logits) with float32 logits of ±40"), "shape (1,)")
        want = bernoulli_log_prob(xb.double(), big.double())
        if not torch.isfinite(out_big).all() or not _close(out_big.reshape(1), want, 1e-4):
            got = out_big.detach().flatten().tolist()
            raise _Failed("Its formula agrees with vae_core for moderate logits, but not for large ones: with "
                          f"float32 logits ±40 it returns {[round(g, 3) for g in got]} where "
                          f"{round(want.item(), 3)} is right. sigmoid(40) rounds to exactly 1 in float32, and "
                          "log(1 − 1) = −inf (or NaN after 0·(−inf)); a trained decoder reaches such logits. "
                          "Compute in logits: `F.logsigmoid(logits)` for log p and `F.logsigmoid(-logits)` for "
                          "log(1 − p), or `-F.binary_cross_entropy_with_logits(logits, x, reduction='none')`.")
        return diff

    return _finish("bernoulli_log_likelihood", "vae_core.distributions.bernoulli_log_prob",
                   f"{B} random binary images of D = {D} pixels with random logits, plus float32 logits of ±40",
                   body)


# --------------------------------------------------------------------------- the ELBO (estimator B)

def _elbo_inputs(B=12, D=10, d=3):
    gen = torch.Generator().manual_seed(SEED)
    x = torch.bernoulli(torch.full((B, D), 0.5, dtype=torch.float64), generator=gen)
    logits = 2 * torch.randn(B, D, generator=gen, dtype=torch.float64)
    mu = 1.5 * torch.randn(B, d, generator=gen, dtype=torch.float64)
    logvar = _uniform((B, d), -2.5, 1.5, gen)
    return x, logits, mu, logvar


def _elbo_mode(fn) -> str:
    params = _parameters(fn)
    if params and next(iter(params)) == "log_px_z":
        return "library"     # objectives.gaussian_elbo(log_px_z, z, mu, logvar)
    return "student"


def _elbo_output(out) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "elbo") and isinstance(getattr(out, "elbo"), torch.Tensor):
        return out.elbo                      # an ELBOTerms or a similar named tuple
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]                        # (elbo, recon, kl)
    return out


def elbo(fn) -> CheckResult:
    r"""Check ``fn(x, logits, mu, logvar)``, the single-sample ELBO of estimator B (analytic KL).

    .. math:: \mathcal L = \log p_\theta(x\mid z)
              - \mathrm{KL}\big(\mathcal N(\mu,\operatorname{diag}\sigma^2)\,\|\,\mathcal N(0,I)\big)

    with ``logits`` the Bernoulli decoder's output at a sampled ``z``: ``x`` and ``logits`` have
    shape ``(B, D)``, ``mu`` and ``logvar`` ``(B, d)``. ``fn`` returns the per-example ELBO, shape
    ``(B,)`` (higher is better; the training loss is ``-elbo.mean()``), or a tuple whose first item
    (or an object whose ``.elbo``) is it. The library's :func:`vae_core.objectives.gaussian_elbo`,
    ``(log_px_z, z, mu, logvar)``, is recognised by its first parameter and checked as well.
    When the values are a combination ``a·log p(x|z) + b·KL + c`` the verdict says which ``a, b, c``.
    """
    _require_function("elbo", fn, "fn(x, logits, mu, logvar) returning the ELBO of each example, shape (B,)")
    x, logits, mu, logvar = _elbo_inputs()
    B, D = x.shape
    d = mu.shape[1]
    mode = _elbo_mode(fn)

    def run(lg, m, lv):
        if mode == "library":
            log_px_z = bernoulli_log_prob(x, lg)[None]
            out = _call(fn, (log_px_z, m[None], m, lv), {}, "gaussian_elbo(log_px_z, z, mu, logvar)")
        else:
            out = _call(fn, (x, lg, m, lv), {}, "fn(x, logits, mu, logvar)")
        return _as_tensor(_elbo_output(out), f"the ELBO of each example, shape ({B},)")

    def body(problems):
        out = run(logits, mu, logvar)
        rtol = _tolerance(out)
        _check_finite(out, "Logits are any real numbers and logvar may be negative: `log(logits)` or "
                           "`log(logvar)` gives NaN; p = sigmoid(logits) and σ² = exp(logvar).")
        recon, kl = bernoulli_log_prob(x, logits), kl_normal_standard(mu, logvar)
        ref = gaussian_elbo(recon[None], mu[None], mu, logvar).elbo
        shaped, note = _check_per_example_shape(out, ref, rtol, "pixel or latent dimension")
        if note:
            problems.append(note)
        _, kl_wrong = _kl_variants(mu, logvar)
        kl_sigma = next(v for m, v in kl_wrong if m.startswith("It uses σ = exp"))
        variants = [
            ("It adds the KL where it must be subtracted: ELBO = E[log p(x|z)] − KL(q‖p). With +KL, training "
             "rewards the encoder for moving q away from the prior, and the objective has no maximum.",
             recon + kl),
            ("It returns minus the ELBO (the per-example loss). check.elbo wants the bound itself, higher is "
             "better; the training loss is its negative mean.", -ref),
            ("The reconstruction term has the wrong sign: log p(x|z) is minus the binary cross-entropy. "
             "ELBO = −BCE − KL.", -recon - kl),
            (f"It averages the reconstruction term over the pixels (D = {D} in this check) where a sum "
             f"belongs. That objective is (1/D)·[log p(x|z) − D·KL]: the same optimum as a β-VAE with β = D, "
             f"the reconstruction weighted 1/D against the KL. This is a silent β; sum over the pixels.", recon / D - kl),
            (f"It averages the KL over the latent dimensions (d = {d} in this check) where a sum belongs: "
             f"a silent β = 1/d.",
             recon - kl / d),
            (f"It averages both terms, the reconstruction over the D = {D} pixels of this check and the KL "
             f"over its d = {d} latent dimensions, where sums belong: a silent β = D/d.", recon / D - kl / d),
            ("It leaves out the KL term: that is the reconstruction term alone, not a bound on log p(x).", recon),
            ("Its KL is missing the factor ½ (the KL counts twice, a silent β = 2).", recon - 2 * kl),
            ("Its KL uses σ = exp(½·logvar) where σ² = exp(logvar) belongs.", recon - kl_sigma),
            ("Its reconstruction swaps p and 1 − p: p = sigmoid(+logits).", bernoulli_log_prob(x, -logits) - kl),
        ]
        try:
            return _check_values(shaped, ref, variants, rtol=rtol, what="ELBO", fallback="")
        except _Failed as failure:
            if not str(failure).startswith("Your ELBO differs from vae_core's (at element"):
                raise
            # is it a linear combination a*recon + b*kl + c?
            A = torch.stack([recon, kl, torch.ones_like(recon)], 1)
            coef = torch.linalg.lstsq(A, shaped.detach().double()[:, None]).solution[:, 0]
            resid = (A @ coef - shaped.detach().double()).abs().max().item()
            if resid > 1e3 * rtol * max(1.0, ref.abs().max().item()):
                raise _Failed(str(failure) + " Build it from your checked pieces: "
                              "`bernoulli_log_likelihood(x, logits) - gaussian_kl(mu, logvar)`.") from None
            a, b, c = (0.0 if abs(v) < 1e-9 else v for v in coef.tolist())
            parts = [f"It equals {a:.4g}·log p(x|z) {'+' if b >= 0 else '−'} {abs(b):.4g}·KL "
                     f"{'+' if c >= 0 else '−'} {abs(c):.4g}, where the ELBO is 1·log p(x|z) − 1·KL + 0."]
            near = lambda u, v: abs(u - v) < 1e-6 * max(1.0, abs(v))  # noqa: E731
            if a < 0:
                parts.append("The reconstruction term has the wrong sign (log p(x|z) is minus the binary "
                             "cross-entropy).")
            if near(abs(a), 1 / D):
                parts.append(f"The reconstruction is averaged over the pixels (D = {D} here) where a sum belongs.")
            if b > 0:
                parts.append("The KL is added where it must be subtracted.")
            if near(abs(b), 1 / d):
                parts.append(f"The KL is averaged over the latent dimensions (d = {d} here) where a sum belongs.")
            if near(abs(b), 2.0):
                parts.append("The KL is missing its factor ½.")
            if abs(c) > 1e-6:
                parts.append("The constant term should not be there (a ±1 per latent dimension, or a "
                             "constant of the likelihood?).")
            raise _Failed(" ".join(parts)) from None

    def body_with_grad(problems):
        diff = body(problems)
        lg, m, lv = (t.clone().requires_grad_(True) for t in (logits, mu, logvar))
        lg_r, m_r, lv_r = (t.clone().requires_grad_(True) for t in (logits, mu, logvar))
        ref = gaussian_elbo(bernoulli_log_prob(x, lg_r)[None], m_r[None], m_r, lv_r).elbo
        _gradient_check(run(lg, m, lv).reshape(B), ref, {"logits": lg, "mu": m, "logvar": lv},
                        {"logits": lg_r, "mu": m_r, "logvar": lv_r}, _tolerance(ref),
                        torch.linspace(0.5, 1.5, B, dtype=torch.float64))
        return diff

    return _finish("elbo", "vae_core.objectives.gaussian_elbo (Bernoulli decoder, analytic KL)",
                   f"{B} random examples (D = {D} binary pixels with random logits, d = {d} latent dimensions) "
                   f"and its gradients", body_with_grad)


# --------------------------------------------------------------------------- Gumbel-softmax

def _gumbel_mode(fn):
    params = _parameters(fn)
    if params is not None:
        for name in params:
            if name.lower() in _GUMBEL_NAMES:
                return name
    return None


def gumbel_softmax(fn) -> CheckResult:
    r"""Check ``fn(logits, tau, noise)``, a Gumbel-softmax sample :math:`y=\mathrm{softmax}((\text{logits}+g)/\tau)`.

    The check supplies standard Gumbel noise ``g`` of the logits' shape ``(B, K)`` and tries two
    temperatures (0.5 and 2), so that a missing or misplaced :math:`\tau` shows. The noise is passed by
    name when ``fn`` has a parameter called ``noise``, ``g``, ``gumbel``, ``gumbels`` or ``gumbel_noise``
    (so :func:`vae_core.gumbel.gumbel_softmax` itself is accepted), else as the third positional
    argument. ``fn`` must return the relaxed sample ``(B, K)``, each row on the simplex, with gradients
    flowing to the logits.
    """
    _require_function("gumbel_softmax", fn, "fn(logits, tau, noise) returning softmax((logits + noise) / tau)")
    gen = torch.Generator().manual_seed(SEED)
    B, K = 6, 5
    logits = 1.5 * torch.randn(B, K, generator=gen, dtype=torch.float64)
    noise = gumbel_sample((B, K), generator=gen, dtype=torch.float64)
    name = _gumbel_mode(fn)
    taus = (0.5, 2.0)

    def call(lg, tau):
        if name:
            return _call(fn, (lg, tau), {name: noise}, f"fn(logits, tau={tau}, {name}=g)")
        return _call(fn, (lg, tau, noise), {}, f"fn(logits, tau={tau}, g)")

    def variants(tau):
        sm = lambda t, dim=-1: torch.softmax(t, dim=dim)  # noqa: E731
        return [
            ("It ignores τ: softmax(logits + g) is the sample at τ = 1 only. Divide by the temperature: "
             "softmax((logits + g) / τ).", sm(logits + noise)),
            ("It multiplies by τ where it must divide: softmax((logits + g) / τ), so that a small τ gives "
             "nearly one-hot samples.", sm((logits + noise) * tau)),
            ("It divides only the logits by τ: the noise belongs inside too, softmax((logits + g) / τ).",
             sm(logits / tau + noise)),
            ("It divides only the noise by τ: softmax((logits + g) / τ).", sm(logits + noise / tau)),
            ("It returns log-probabilities (log_softmax): the sample is the softmax itself, a point on the "
             "simplex (non-negative, summing to 1).", torch.log_softmax((logits + noise) / tau, -1)),
            ("It subtracts the Gumbel noise: argmax(logits − g) is not a sample of softmax(logits). "
             "Add it: softmax((logits + g) / τ).", sm((logits - noise) / tau)),
            ("It adds the noise to the probabilities softmax(logits): the Gumbel trick adds it to the logits "
             "(log-probabilities up to a constant).", sm((sm(logits) + noise) / tau)),
            ("It takes the softmax over the wrong dimension: the categories are the last one, `dim=-1`.",
             sm((logits + noise) / tau, 0)),
            ("It returns the unnormalised exp((logits + g) / τ): divide by the sum over the categories "
             "(that is the softmax).", torch.exp((logits + noise) / tau)),
            ("It returns the hard one-hot sample (the argmax). check.gumbel_softmax checks the relaxed "
             "sample softmax((logits + g) / τ), through which gradients flow; the one-hot value is the "
             "straight-through estimator's forward pass.",
             F.one_hot((logits + noise).argmax(-1), K).to(torch.float64)),
        ]

    def body(problems):
        diff = 0.0
        for tau in taus:
            y = _as_tensor(call(logits, tau), f"a sample of shape ({B}, {K})")
            rtol = _tolerance(y)
            if y.shape != logits.shape:
                raise _Failed(f"At τ = {tau} it returns shape {tuple(y.shape)}; the sample has the shape of the "
                              f"logits, ({B}, {K}).")
            _check_finite(y, "Logits are any real numbers (log-probabilities up to a constant): "
                             "`torch.log(logits)` is NaN for negative ones; add the noise to the logits "
                             "directly. Very small τ overflows `exp`: use `torch.softmax`, which is stable.")
            ref = _library_gumbel_softmax(logits, tau, noise=noise)
            if not _close(y, ref, rtol):
                for message, value in variants(tau):
                    if _close(y, value, rtol):
                        raise _Failed(message)
                sums = y.detach().double().sum(-1)
                extra = ("" if torch.allclose(sums, torch.ones_like(sums), atol=1e-4) else
                         " Its rows do not sum to 1, so they are not points on the simplex.")
                raise _Failed(f"At τ = {tau} it differs from softmax((logits + g) / τ) (largest difference "
                              f"{(y.detach().double() - ref).abs().max().item():.3g}), and not in one of the "
                              f"ways this check knows.{extra}")
            diff = max(diff, (y.detach().double() - ref).abs().max().item())
            lg, lr = logits.clone().requires_grad_(True), logits.clone().requires_grad_(True)
            _gradient_check(call(lg, tau), _library_gumbel_softmax(lr, tau, noise=noise), {"logits": lg},
                            {"logits": lr}, rtol, torch.linspace(0.5, 1.5, K, dtype=torch.float64))
        return diff

    return _finish("gumbel_softmax", "vae_core.gumbel.gumbel_softmax",
                   f"{B} rows of K = {K} random logits with given Gumbel noise, at τ = 0.5 and τ = 2, and its "
                   f"gradients", body)
