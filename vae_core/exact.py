r"""Small latent-variable models whose evidence and posterior are known exactly.

Part I of the book checks every identity on these models before trusting it on a neural network.
Everything here runs in float64, so closed forms agree to ~1e-12.

* :class:`LinearGaussian` — :math:`z\sim\mathcal N(0,I_d)`, :math:`x|z\sim\mathcal N(Wz+b,\sigma^2 I_D)`:
  exact :math:`\log p(x)`, exact Gaussian posterior, and the ELBO of a diagonal Gaussian
  :math:`q(z)=\mathcal N(\mu,\operatorname{diag}\sigma_q^2)` in closed form, so that
  :math:`\log p(x) = \mathrm{ELBO}(q) + \mathrm{KL}(q\,\|\,p(z|x))` can be checked to round-off.
* :class:`NonlinearGaussian1D` — :math:`z\sim\mathcal N(0,1)`, :math:`x|z\sim\mathcal N(f(z),\sigma^2)`:
  no closed form, but exact on a grid (:func:`grid_posterior_1d`); its posterior can be bimodal.
* :func:`grid_log_evidence` — :math:`\log\int p(x,z)\,dz` on an :math:`n^d` tensor grid (cost grows
  as :math:`n^d`).
* :func:`fit_per_datapoint_vi` and :class:`AmortizedLinearEncoder` /
  :func:`fit_amortized_linear_encoder` — the two ways of doing variational inference.
* :class:`GaussianMixture1D` with :func:`mixture_elbo`, :func:`em_step`, :func:`fit_em` — EM as
  coordinate ascent on the ELBO.
* :func:`gaussian_expectation`, :func:`kl_forward`, :func:`kl_reverse`, :func:`fit_forward_kl`,
  :func:`fit_reverse_kl` — fitting one Gaussian to a mixture with either direction of the KL.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import torch
from torch import nn

from ._validate import check_positive_float, check_positive_int, check_tensor
from .distributions import LOG_2PI, gaussian_log_prob, kl_mvn, kl_normal_standard, standard_normal_log_prob
from .estimators import reparameterize

__all__ = [
    "DTYPE", "LinearGaussian", "NonlinearGaussian1D", "grid_log_evidence", "grid_posterior_1d",
    "adam", "VIResult", "fit_per_datapoint_vi", "AmortizedLinearEncoder", "fit_amortized_linear_encoder",
    "GaussianMixture1D", "mixture_elbo", "em_step", "EMHistory", "fit_em",
    "gaussian_expectation", "kl_forward", "kl_reverse", "GaussianFit", "fit_forward_kl", "fit_reverse_kl",
]

#: every toy model computes in float64
DTYPE = torch.float64


def _f64(name: str, value, min_dim: int = 0) -> torch.Tensor:
    """``value`` as a float64 tensor (numbers and sequences are accepted for model parameters)."""
    if isinstance(value, torch.Tensor):
        if not (value.is_floating_point() or value.dtype in (torch.int32, torch.int64)):
            raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}.")
        t = value.to(DTYPE)  # keeps the autograd graph (kl_reverse is optimised through here)
    else:
        try:
            t = torch.as_tensor(value, dtype=DTYPE)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{name} must be a number, a sequence of numbers or a tensor, "
                            f"got {type(value).__name__}.") from None
    if t.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dimension(s), got shape {tuple(t.shape)}.")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite, got {t}.")
    return t


def _data(name: str, x: torch.Tensor, last: int | None = None) -> torch.Tensor:
    """A data tensor (``(..., last)``) promoted to float64."""
    check_tensor(name, x)
    if last is not None and x.shape[-1] != last:
        raise ValueError(f"{name} must have {last} values in its last dimension, got shape {tuple(x.shape)}.")
    return x.to(DTYPE)


# ==================================================================================== linear-Gaussian


class LinearGaussian:
    r"""The linear-Gaussian latent-variable model (probabilistic PCA / factor analysis with
    isotropic noise):

    .. math:: z \sim \mathcal N(0, I_d), \qquad x\,|\,z \sim \mathcal N(Wz + b,\ \sigma^2 I_D).

    Everything is Gaussian, so (with :math:`\Lambda = I + W^\top W/\sigma^2`)

    .. math::
        p(x) &= \mathcal N(x;\ b,\ WW^\top + \sigma^2 I), \\
        p(z|x) &= \mathcal N\big(z;\ \Lambda^{-1}W^\top(x-b)/\sigma^2,\ \Lambda^{-1}\big).

    Args:
        W: the ``(D, d)`` loading matrix (a number means ``D = d = 1``).
        b: the ``(D,)`` offset (default zeros).
        sigma: the observation noise standard deviation :math:`\sigma > 0`.
    """

    def __init__(self, W, b=None, sigma: float = 1.0):
        W = _f64("W", W)
        if W.dim() == 0:
            W = W.reshape(1, 1)
        if W.dim() != 2:
            raise ValueError(f"W must be a (D, d) matrix (or a number for the 1-D model), got shape {tuple(W.shape)}.")
        self.W = W
        self.D, self.d = W.shape
        self.b = torch.zeros(self.D, dtype=DTYPE) if b is None else _f64("b", b).reshape(-1)
        if self.b.shape != (self.D,):
            raise ValueError(f"b must have D={self.D} values, got shape {tuple(self.b.shape)}.")
        self.sigma = check_positive_float("sigma", sigma)

    @classmethod
    def random(cls, D: int, d: int, sigma: float = 0.5, seed: int = 0) -> "LinearGaussian":
        """A model with standard-normal ``W`` and ``b`` drawn from a seeded generator."""
        check_positive_int("D", D)
        check_positive_int("d", d)
        g = torch.Generator().manual_seed(seed)
        return cls(torch.randn(D, d, generator=g, dtype=DTYPE), torch.randn(D, generator=g, dtype=DTYPE), sigma)

    def __repr__(self) -> str:
        return f"LinearGaussian(D={self.D}, d={self.d}, sigma={self.sigma:g})"

    # ------------------------------------------------------------------ densities
    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Ancestral sampling: ``z ~ p(z)``, then ``x ~ p(x|z)``; returns ``(z, x)``, shapes ``(n, d)``, ``(n, D)``."""
        check_positive_int("n", n)
        z = torch.randn(n, self.d, generator=generator, dtype=DTYPE)
        x = z @ self.W.T + self.b + self.sigma * torch.randn(n, self.D, generator=generator, dtype=DTYPE)
        return z, x

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(z) = \log\mathcal N(z; 0, I)`, summed over the last dimension."""
        return standard_normal_log_prob(_data("z", z, self.d))

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(x|z) = \log\mathcal N(x; Wz+b, \sigma^2 I)`; ``x`` and ``z`` broadcast in leading dims."""
        x, z = _data("x", x, self.D), _data("z", z, self.d)
        mean = z @ self.W.T + self.b
        return gaussian_log_prob(x, mean, torch.full_like(mean, 2 * math.log(self.sigma)))

    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(x, z) = \log p(x|z) + \log p(z)`."""
        return self.log_likelihood(x, z) + self.log_prior(z)

    def marginal_cov(self) -> torch.Tensor:
        r"""The evidence covariance :math:`C = WW^\top + \sigma^2 I_D`."""
        return self.W @ self.W.T + self.sigma ** 2 * torch.eye(self.D, dtype=DTYPE)

    def log_evidence(self, x: torch.Tensor) -> torch.Tensor:
        r"""Exact :math:`\log p(x) = -\tfrac12\big[D\log 2\pi + \log\det C + (x-b)^\top C^{-1}(x-b)\big]`,
        with :math:`C = WW^\top+\sigma^2 I` (Cholesky, no inverse). Shape: ``x.shape[:-1]``."""
        r = (_data("x", x, self.D) - self.b).unsqueeze(-1)
        L = torch.linalg.cholesky(self.marginal_cov())
        y = torch.linalg.solve_triangular(L, r, upper=False).squeeze(-1)
        logdet = 2 * torch.log(torch.diagonal(L)).sum()
        return -0.5 * (self.D * LOG_2PI + logdet + (y ** 2).sum(-1))

    def posterior_precision(self) -> torch.Tensor:
        r""":math:`\Lambda = I_d + W^\top W / \sigma^2` (the same for every ``x``)."""
        return torch.eye(self.d, dtype=DTYPE) + self.W.T @ self.W / self.sigma ** 2

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Exact posterior :math:`p(z|x) = \mathcal N(m(x), \Lambda^{-1})` with
        :math:`m(x) = \Lambda^{-1}W^\top(x-b)/\sigma^2`. Returns ``(mean (..., d), cov (d, d))``."""
        x = _data("x", x, self.D)
        cov = torch.cholesky_inverse(torch.linalg.cholesky(self.posterior_precision()))
        mean = (x - self.b) @ (self.W / self.sigma ** 2) @ cov  # cov is symmetric
        return mean, cov

    def optimal_diagonal_q(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The diagonal Gaussian that maximises the ELBO: mean :math:`m(x)` and variances
        :math:`1/\Lambda_{jj}` (it matches the posterior's *precision* diagonal, not its variances).
        Returns ``(mu, logvar)``; it equals the posterior when :math:`W^\top W` is diagonal."""
        mean, _ = self.posterior(x)
        logvar = -torch.log(torch.diagonal(self.posterior_precision()))
        return mean, logvar.expand_as(mean)

    # ------------------------------------------------------------------ ELBO in closed form
    def expected_log_likelihood(self, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        r""":math:`\mathbb E_{q}[\log p(x|z)]` for :math:`q = \mathcal N(\mu, \operatorname{diag} s^2)`:

        .. math:: -\tfrac D2\log(2\pi\sigma^2) - \frac{\lVert x - W\mu - b\rVert^2
                  + \sum_j s_j^2 \lVert W_{:,j}\rVert^2}{2\sigma^2}
        """
        x, mu, logvar = _data("x", x, self.D), _data("mu", mu, self.d), _data("logvar", logvar, self.d)
        resid = x - mu @ self.W.T - self.b
        spread = (logvar.exp() * (self.W ** 2).sum(0)).sum(-1)
        return (-0.5 * self.D * (LOG_2PI + 2 * math.log(self.sigma))
                - ((resid ** 2).sum(-1) + spread) / (2 * self.sigma ** 2))

    def elbo(self, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        r"""Closed-form ELBO :math:`\mathbb E_q[\log p(x|z)] - \mathrm{KL}(q\,\|\,p(z))` of a diagonal
        Gaussian :math:`q = \mathcal N(\mu, \operatorname{diag} e^{\text{logvar}})`."""
        return self.expected_log_likelihood(x, mu, logvar) - kl_normal_standard(mu.to(DTYPE), logvar.to(DTYPE))

    def kl_to_posterior(self, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        r"""The gap :math:`\mathrm{KL}(q\,\|\,p(z|x))` in closed form (full-covariance KL,
        :func:`vae_core.distributions.kl_mvn`). Then ``elbo + kl_to_posterior == log_evidence``."""
        x, mu, logvar = _data("x", x, self.D), _data("mu", mu, self.d), _data("logvar", logvar, self.d)
        post_mean, post_cov = self.posterior(x)
        shape = torch.broadcast_shapes(mu.shape, post_mean.shape, logvar.shape)
        cov_q = torch.diag_embed(logvar.expand(shape).exp())
        return kl_mvn(mu.expand(shape), cov_q, post_mean.expand(shape), post_cov.expand(*shape, self.d))

    def elbo_samples(self, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, n_samples: int,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Monte-Carlo terms :math:`\log p(x, z_l) - \log q(z_l)`, :math:`z_l\sim q`, shape ``(L, ...)``.
        Their mean estimates the ELBO; their standard deviation over :math:`\sqrt L` is its standard error."""
        mu, logvar = _data("mu", mu, self.d), _data("logvar", logvar, self.d)
        z = reparameterize(mu, logvar, n_samples, generator=generator)
        return self.log_joint(x, z) - gaussian_log_prob(z, mu.expand_as(z), logvar.expand_as(z))


# ==================================================================================== 1-D nonlinear model


def _square(z: torch.Tensor) -> torch.Tensor:
    return z ** 2


class NonlinearGaussian1D:
    r"""A 1-D model with no closed-form evidence: :math:`z\sim\mathcal N(0,1)`,
    :math:`x|z\sim\mathcal N(f(z), \sigma^2)`. The default :math:`f(z) = z^2` makes the posterior
    bimodal for :math:`x > 0` (both :math:`\pm\sqrt x` explain the data).

    Args:
        f: the decoder mean, a function of a float64 tensor (default ``z**2``).
        sigma: observation noise standard deviation.
    """

    def __init__(self, f: Callable[[torch.Tensor], torch.Tensor] | None = None, sigma: float = 0.5):
        if f is not None and not callable(f):
            raise TypeError(f"f must be a function of z, got {type(f).__name__}.")
        self.f = _square if f is None else f
        self.sigma = check_positive_float("sigma", sigma)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, x)``, each of shape ``(n,)``."""
        check_positive_int("n", n)
        z = torch.randn(n, generator=generator, dtype=DTYPE)
        return z, self.f(z) + self.sigma * torch.randn(n, generator=generator, dtype=DTYPE)

    def log_joint(self, x, z: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(x,z) = \log\mathcal N(z;0,1) + \log\mathcal N(x; f(z), \sigma^2)` (broadcasting, no event dim)."""
        x = _f64("x", x)
        z = _f64("z", z)
        return (-0.5 * (LOG_2PI + z ** 2)
                - 0.5 * (LOG_2PI + 2 * math.log(self.sigma) + (x - self.f(z)) ** 2 / self.sigma ** 2))


# ==================================================================================== grids


def grid_posterior_1d(log_joint: Callable[[torch.Tensor], torch.Tensor], lo: float = -6.0, hi: float = 6.0,
                      n: int = 2001) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Evidence and posterior of a 1-D latent by the trapezoid rule on ``n`` points of ``[lo, hi]``:

    .. math:: \log p(x) \approx \log \sum_i w_i\, p(x, z_i), \qquad
              p(z_i|x) = p(x, z_i) / p(x),

    with trapezoid weights :math:`w_i`. ``log_joint(z)`` returns :math:`\log p(x, z)` for a grid
    ``z`` of shape ``(n,)``. Returns ``(z, posterior density (n,), log_evidence)``.
    """
    check_positive_int("n", n)
    if n < 2 or not hi > lo:
        raise ValueError(f"need n >= 2 and hi > lo, got n={n}, lo={lo}, hi={hi}.")
    z = torch.linspace(lo, hi, n, dtype=DTYPE)
    lj = log_joint(z)
    if lj.shape != z.shape:
        raise ValueError(f"log_joint must return one value per grid point, shape {tuple(z.shape)}, got {tuple(lj.shape)}.")
    dz = (hi - lo) / (n - 1)
    logw = torch.full_like(z, math.log(dz))
    logw[[0, -1]] = math.log(dz / 2)
    log_evidence = torch.logsumexp(lj + logw, 0)
    return z, torch.exp(lj - log_evidence), log_evidence


def grid_log_evidence(log_joint: Callable[[torch.Tensor], torch.Tensor], d: int, lo: float = -6.0,
                      hi: float = 6.0, n: int = 30, chunk_size: int = 1 << 18) -> torch.Tensor:
    r""":math:`\log \int p(x,z)\,dz` over :math:`z\in[\mathrm{lo},\mathrm{hi}]^d` by the midpoint rule on
    the tensor grid of :math:`n^d` cell centres (cell volume :math:`\Delta^d`, :math:`\Delta = (hi-lo)/n`):

    .. math:: \log p(x) \approx \log\sum_{i_1..i_d} p(x, z_{i_1..i_d}) + d \log\Delta .

    The work is :math:`n^d` evaluations of ``log_joint`` (which maps ``(M, d)`` points to ``(M,)``
    values); they are made ``chunk_size`` at a time and combined exactly with logsumexp.
    """
    check_positive_int("d", d)
    check_positive_int("n", n)
    check_positive_int("chunk_size", chunk_size)
    if not hi > lo:
        raise ValueError(f"need hi > lo, got lo={lo}, hi={hi}.")
    delta = (hi - lo) / n
    axis = lo + (torch.arange(n, dtype=DTYPE) + 0.5) * delta
    total = n ** d
    partial = []
    for start in range(0, total, chunk_size):
        idx = torch.arange(start, min(start + chunk_size, total))
        digits = torch.stack([(idx // n ** k) % n for k in range(d)], dim=-1)
        partial.append(torch.logsumexp(log_joint(axis[digits]), 0))
    return torch.logsumexp(torch.stack(partial), 0) + d * math.log(delta)


# ==================================================================================== amortized vs per-datapoint VI


def adam(params: list[torch.Tensor], loss_fn: Callable[[], torch.Tensor], steps: int, lr: float,
         betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> list[float]:
    r"""Minimise ``loss_fn()`` over ``params`` (leaf tensors with ``requires_grad``) by Adam
    (Kingma & Ba, 2015), written out in full:

    .. math:: m \leftarrow \beta_1 m + (1-\beta_1) g,\quad v \leftarrow \beta_2 v + (1-\beta_2) g^2,\quad
              \theta \leftarrow \theta - \eta\,\frac{m/(1-\beta_1^t)}{\sqrt{v/(1-\beta_2^t)}+\epsilon}.

    Part I uses this instead of ``torch.optim.Adam`` (the same update) because the first use of
    ``torch.optim`` costs seconds of imports, longer than these toy problems take. Returns the loss
    at every step.
    """
    check_positive_int("steps", steps)
    b1, b2 = betas
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    losses = []
    for t in range(1, steps + 1):
        loss = loss_fn()
        grads = torch.autograd.grad(loss, params)
        losses.append(loss.item())
        with torch.no_grad():
            for p, g, mi, vi in zip(params, grads, m, v):
                mi.mul_(b1).add_(g, alpha=1 - b1)
                vi.mul_(b2).addcmul_(g, g, value=1 - b2)
                p.sub_(lr * (mi / (1 - b1 ** t)) / ((vi / (1 - b2 ** t)).sqrt() + eps))
    return losses


class VIResult(NamedTuple):
    """Per-datapoint variational parameters and the ELBO after every step, shape ``(steps, B)``."""
    mu: torch.Tensor
    logvar: torch.Tensor
    history: torch.Tensor


def fit_per_datapoint_vi(model: LinearGaussian, x: torch.Tensor, steps: int = 300, lr: float = 0.05,
                         init: tuple[torch.Tensor, torch.Tensor] | None = None) -> VIResult:
    r"""Classic variational inference: for *each* datapoint :math:`x_i` optimise its own
    :math:`(\mu_i, \log s_i^2)` by gradient ascent (Adam) on the closed-form
    :math:`\mathrm{ELBO}(x_i;\mu_i,s_i)`. Nothing is shared between datapoints, so a new
    :math:`x` needs a new optimisation. Starts at the prior (:math:`\mu=0, \log s^2=0`) unless ``init``."""
    check_positive_int("steps", steps)
    x = _data("x", x, model.D)
    shape = (*x.shape[:-1], model.d)
    if init is None:
        mu0, lv0 = torch.zeros(shape, dtype=DTYPE), torch.zeros(shape, dtype=DTYPE)
    else:
        mu0, lv0 = (_data(n, t, model.d).expand(shape) for n, t in zip(("mu", "logvar"), init))
    mu = mu0.clone().requires_grad_(True)
    logvar = lv0.clone().requires_grad_(True)
    history = []

    def loss():
        elbo = model.elbo(x, mu, logvar)
        history.append(elbo.detach())
        return -elbo.sum()  # the datapoints do not interact: the sum optimises each one

    adam([mu, logvar], loss, steps, lr)
    with torch.no_grad():
        history.append(model.elbo(x, mu, logvar))  # the ELBO at the returned parameters
    return VIResult(mu.detach(), logvar.detach(), torch.stack(history[1:]))


class AmortizedLinearEncoder(nn.Module):
    r"""An amortized encoder for :class:`LinearGaussian`: :math:`\mu(x) = Ax + c`, and
    :math:`\log s^2` a learned vector shared by all :math:`x` (the exact posterior has exactly this
    form, so the family is rich enough). One forward pass replaces a per-datapoint optimisation."""

    def __init__(self, D: int, d: int):
        super().__init__()
        self.mean = nn.Linear(check_positive_int("D", D), check_positive_int("d", d)).to(DTYPE)
        nn.init.zeros_(self.mean.weight)
        nn.init.zeros_(self.mean.bias)
        self.logvar = nn.Parameter(torch.zeros(d, dtype=DTYPE))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` for a batch ``x`` of shape ``(B, D)``."""
        x = _data("x", x, self.mean.in_features)
        mu = self.mean(x)
        return mu, self.logvar.expand_as(mu)


def fit_amortized_linear_encoder(model: LinearGaussian, x_train: torch.Tensor, steps: int = 500,
                                 lr: float = 0.05, batch_size: int = 256, seed: int = 0) -> AmortizedLinearEncoder:
    r"""Train an :class:`AmortizedLinearEncoder` once, by Adam on minibatches, to maximise the
    average closed-form ELBO :math:`\frac1B\sum_i \mathrm{ELBO}(x_i;\ \mu(x_i), s)` over ``x_train``."""
    check_positive_int("steps", steps)
    check_positive_int("batch_size", batch_size)
    x_train = _data("x_train", x_train, model.D)
    if x_train.dim() != 2:
        raise ValueError(f"x_train must have shape (N, D), got {tuple(x_train.shape)}.")
    enc = AmortizedLinearEncoder(model.D, model.d)
    g = torch.Generator().manual_seed(seed)
    n = x_train.shape[0]

    def loss():
        xb = x_train[torch.randint(n, (min(batch_size, n),), generator=g)]
        mu, logvar = enc(xb)
        return -model.elbo(xb, mu, logvar).mean()

    adam(list(enc.parameters()), loss, steps, lr)
    return enc.requires_grad_(False)


# ==================================================================================== 1-D Gaussian mixture and EM


class GaussianMixture1D:
    r"""A 1-D mixture :math:`p(x) = \sum_k \pi_k\,\mathcal N(x;\mu_k,\sigma_k^2)`, a latent-variable
    model with a discrete latent :math:`k\sim\mathrm{Cat}(\pi)` and :math:`x|k\sim\mathcal N(\mu_k,\sigma_k^2)`.

    Args:
        weights: mixing proportions :math:`\pi_k` (positive; normalised to sum to one).
        means: component means :math:`\mu_k`.
        stds: component standard deviations :math:`\sigma_k > 0`.
    """

    def __init__(self, weights: Sequence[float], means: Sequence[float], stds: Sequence[float]):
        w, m, s = (_f64(n, v).reshape(-1) for n, v in (("weights", weights), ("means", means), ("stds", stds)))
        if not (w.shape == m.shape == s.shape) or w.numel() == 0:
            raise ValueError(f"weights, means and stds need the same (non-zero) length, got "
                             f"{w.numel()}, {m.numel()}, {s.numel()}.")
        if (w <= 0).any() or (s <= 0).any():
            raise ValueError(f"weights and stds must be > 0, got weights {w.tolist()}, stds {s.tolist()}.")
        self.weights, self.means, self.stds = w / w.sum(), m, s

    @property
    def K(self) -> int:
        return self.weights.numel()

    def __repr__(self) -> str:
        f = lambda t: "[" + ", ".join(f"{v:.4g}" for v in t.tolist()) + "]"  # noqa: E731
        return f"GaussianMixture1D(weights={f(self.weights)}, means={f(self.means)}, stds={f(self.stds)})"

    def component_log_prob(self, x) -> torch.Tensor:
        r""":math:`\log \pi_k + \log\mathcal N(x;\mu_k,\sigma_k^2)`, shape ``(*x.shape, K)`` (log of the joint p(x, k))."""
        x = _f64("x", x).unsqueeze(-1)
        return (torch.log(self.weights) - 0.5 * (LOG_2PI + 2 * torch.log(self.stds)
                                                  + ((x - self.means) / self.stds) ** 2))

    def log_prob(self, x) -> torch.Tensor:
        r""":math:`\log p(x) = \operatorname{logsumexp}_k[\log\pi_k + \log\mathcal N(x;\mu_k,\sigma_k^2)]`."""
        return torch.logsumexp(self.component_log_prob(x), -1)

    def responsibilities(self, x) -> torch.Tensor:
        r"""The exact posterior over the latent component, :math:`p(k|x) = \pi_k\mathcal N_k(x) / p(x)`, shape ``(..., K)``."""
        return torch.softmax(self.component_log_prob(x), -1)

    def log_likelihood(self, x) -> torch.Tensor:
        r""":math:`\sum_n \log p(x_n)` (a scalar)."""
        return self.log_prob(x).sum()

    def mean(self) -> torch.Tensor:
        r""":math:`\mathbb E[x] = \sum_k\pi_k\mu_k`."""
        return (self.weights * self.means).sum()

    def variance(self) -> torch.Tensor:
        r""":math:`\mathrm{Var}[x] = \sum_k\pi_k(\sigma_k^2+\mu_k^2) - \mathbb E[x]^2`."""
        return (self.weights * (self.stds ** 2 + self.means ** 2)).sum() - self.mean() ** 2

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws (ancestral: component, then value), shape ``(n,)``."""
        check_positive_int("n", n)
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        return self.means[k] + self.stds[k] * torch.randn(n, generator=generator, dtype=DTYPE)


def mixture_elbo(x, mixture: GaussianMixture1D, resp: torch.Tensor) -> torch.Tensor:
    r"""The ELBO of a mixture with a per-point distribution :math:`q_n(k) = r_{nk}` over components:

    .. math:: \mathcal L(q, \theta) = \sum_n\sum_k r_{nk}\left[\log\pi_k + \log\mathcal N(x_n;\mu_k,\sigma_k^2)
              - \log r_{nk}\right]  \le \sum_n \log p(x_n),

    with equality iff :math:`r_{nk} = p(k|x_n)` (:math:`0\log 0 = 0`)."""
    x = _f64("x", x, 1)
    check_tensor("resp", resp, min_dim=2)
    if resp.shape != (*x.shape, mixture.K):
        raise ValueError(f"resp must have shape {(*x.shape, mixture.K)}, got {tuple(resp.shape)}.")
    resp = resp.to(DTYPE)
    log_r = torch.where(resp > 0, torch.log(resp.clamp_min(1e-300)), torch.zeros_like(resp))
    return (resp * (mixture.component_log_prob(x) - log_r)).sum()


def em_step(x, mixture: GaussianMixture1D, min_std: float = 1e-3) -> tuple[GaussianMixture1D, torch.Tensor]:
    r"""One EM iteration = one round of coordinate ascent on :func:`mixture_elbo`.

    * E-step (maximise over :math:`q` with :math:`\theta` fixed): :math:`r_{nk} = p(k|x_n;\theta)`,
      which makes the bound tight, :math:`\mathcal L = \log p(x;\theta)`.
    * M-step (maximise over :math:`\theta` with :math:`q` fixed), with :math:`N_k=\sum_n r_{nk}`:
      :math:`\pi_k = N_k/N`, :math:`\mu_k = \sum_n r_{nk}x_n/N_k`,
      :math:`\sigma_k^2 = \sum_n r_{nk}(x_n-\mu_k)^2/N_k` (floored at ``min_std**2``).

    Returns ``(new mixture, responsibilities used)``.
    """
    x = _f64("x", x, 1).reshape(-1)
    resp = mixture.responsibilities(x)                       # E-step
    nk = resp.sum(0).clamp_min(1e-12)                         # M-step
    means = (resp * x[:, None]).sum(0) / nk
    var = (resp * (x[:, None] - means) ** 2).sum(0) / nk
    stds = var.clamp_min(min_std ** 2).sqrt()
    return GaussianMixture1D(nk / nk.sum(), means, stds), resp


class EMHistory(NamedTuple):
    r"""What EM did, one entry per iteration :math:`t`:
    ``log_likelihood[t]`` :math:`=\log p(x;\theta_t)`; ``elbo_after_e[t]`` :math:`=\mathcal L(q_{t},\theta_t)`
    (equal to the former); ``elbo_after_m[t]`` :math:`=\mathcal L(q_t,\theta_{t+1})`. The last
    entry of ``log_likelihood`` is for the returned mixture (it has one more entry than the ELBOs)."""
    mixture: GaussianMixture1D
    log_likelihood: torch.Tensor
    elbo_after_e: torch.Tensor
    elbo_after_m: torch.Tensor
    mixtures: list


def fit_em(x, init: GaussianMixture1D, n_steps: int = 50, min_std: float = 1e-3) -> EMHistory:
    r"""Run ``n_steps`` EM iterations from ``init`` and record the bound around each step
    (see :class:`EMHistory`). The chain
    :math:`\log p(x;\theta_t) = \mathcal L(q_t,\theta_t) \le \mathcal L(q_t,\theta_{t+1}) \le \log p(x;\theta_{t+1})`
    shows that the log-likelihood never decreases."""
    check_positive_int("n_steps", n_steps)
    x = _f64("x", x, 1).reshape(-1)
    mix, lls, after_e, after_m, mixtures = init, [], [], [], [init]
    for _ in range(n_steps):
        lls.append(mix.log_likelihood(x))
        new, resp = em_step(x, mix, min_std)
        after_e.append(mixture_elbo(x, mix, resp))
        after_m.append(mixture_elbo(x, new, resp))
        mix = new
        mixtures.append(mix)
    lls.append(mix.log_likelihood(x))
    return EMHistory(mix, torch.stack(lls), torch.stack(after_e), torch.stack(after_m), mixtures)


# ==================================================================================== forward vs reverse KL

#: the standardised quadrature used by the KL functions (and by the browser widget)
QUAD_POINTS = 401
QUAD_HALF_WIDTH = 10.0


def gaussian_expectation(fn: Callable[[torch.Tensor], torch.Tensor], mean, std, n_points: int = QUAD_POINTS,
                         half_width: float = QUAD_HALF_WIDTH) -> torch.Tensor:
    r""":math:`\mathbb E_{\mathcal N(m, s^2)}[g(z)] = \int\phi(u)\,g(m+su)\,du` by the trapezoid rule on
    ``n_points`` equally spaced :math:`u\in[-h, h]` (spectrally accurate for smooth :math:`g`;
    the grid follows :math:`q`, so it resolves any :math:`s`). ``mean``/``std`` broadcast;
    ``fn`` is applied element-wise to a tensor of shape ``(*broadcast, n_points)``."""
    check_positive_int("n_points", n_points)
    mean, std = _f64("mean", mean), _f64("std", std)
    if (std <= 0).any():
        raise ValueError(f"std must be > 0, got {std}.")
    u = torch.linspace(-half_width, half_width, n_points, dtype=DTYPE)
    w = torch.exp(-0.5 * u ** 2) / math.sqrt(2 * math.pi) * (2 * half_width / (n_points - 1))
    z = mean.unsqueeze(-1) + std.unsqueeze(-1) * u
    return (w * fn(z)).sum(-1)


def _mixture_neg_entropy(p: GaussianMixture1D, **quad) -> torch.Tensor:
    r""":math:`\int p\log p = \sum_k\pi_k\,\mathbb E_{\mathcal N_k}[\log p]` (no closed form for a mixture)."""
    return (p.weights * gaussian_expectation(p.log_prob, p.means, p.stds, **quad)).sum()


def kl_forward(p: GaussianMixture1D, mean, std, **quad) -> torch.Tensor:
    r"""Forward (inclusive) KL :math:`\mathrm{KL}(p\,\|\,q)` from the mixture :math:`p` to
    :math:`q=\mathcal N(m,s^2)`:

    .. math:: \mathrm{KL}(p\|q) = \int p\log p + \tfrac12\log(2\pi s^2)
              + \frac{\mathrm{Var}_p + (\mathbb E_p - m)^2}{2s^2},

    whose only :math:`q`-dependence is through the moments of :math:`p`: it is minimised by
    :math:`m=\mathbb E_p`, :math:`s^2=\mathrm{Var}_p` (moment matching). ``mean``/``std`` broadcast."""
    mean, std = _f64("mean", mean), _f64("std", std)
    cross = 0.5 * torch.log(2 * math.pi * std ** 2) + (p.variance() + (p.mean() - mean) ** 2) / (2 * std ** 2)
    return _mixture_neg_entropy(p, **quad) + cross


def kl_reverse(p: GaussianMixture1D, mean, std, **quad) -> torch.Tensor:
    r"""Reverse (exclusive) KL :math:`\mathrm{KL}(q\,\|\,p) = -H(q) - \mathbb E_q[\log p]`, with
    :math:`H(q) = \tfrac12\log(2\pi e s^2)` and the expectation by :func:`gaussian_expectation`.
    This is the direction variational inference minimises. Differentiable in ``mean`` and ``std``
    when they are tensors that require grad."""
    m, s = _f64("mean", mean), _f64("std", std)
    return -0.5 * torch.log(2 * math.pi * math.e * s ** 2) - gaussian_expectation(p.log_prob, m, s, **quad)


class GaussianFit(NamedTuple):
    """A Gaussian :math:`\\mathcal N(\\text{mean}, \\text{std}^2)` fitted by minimising ``kl``."""
    mean: float
    std: float
    kl: float


def fit_forward_kl(p: GaussianMixture1D) -> GaussianFit:
    r"""The minimiser of :math:`\mathrm{KL}(p\,\|\,q)` over Gaussians: the moments of :math:`p`."""
    m, s = p.mean(), p.variance().sqrt()
    return GaussianFit(m.item(), s.item(), kl_forward(p, m, s).item())


def fit_reverse_kl(p: GaussianMixture1D, init_mean: float, init_std: float = 1.0, steps: int = 200) -> GaussianFit:
    r"""A local minimiser of :math:`\mathrm{KL}(q\,\|\,p)` over :math:`(m, \log s)`, by BFGS
    (``scipy.optimize``) with gradients of the quadrature of :func:`kl_reverse` from autograd. The
    objective is non-convex for a multimodal :math:`p`, so the answer depends on the start: each
    well-separated mode is a local optimum (reached from a narrow ``init_std`` near it), and a broad
    Gaussian straddling the modes can be another, worse one (reached from a wide start)."""
    from scipy.optimize import minimize

    check_positive_int("steps", steps)
    check_positive_float("init_std", init_std)

    def value_and_grad(theta):
        t = torch.tensor(theta, dtype=DTYPE, requires_grad=True)
        kl = kl_reverse(p, t[0], t[1].exp())
        (grad,) = torch.autograd.grad(kl, t)
        return kl.item(), grad.numpy()

    res = minimize(value_and_grad, [float(init_mean), math.log(init_std)], jac=True, method="BFGS",
                   options={"maxiter": steps, "gtol": 1e-10})
    m, s = float(res.x[0]), math.exp(float(res.x[1]))
    return GaussianFit(m, s, kl_reverse(p, m, s).item())
