r"""A VAE whose code is :math:`N` categorical variables with :math:`K` classes each (Jang et al., 2017).

Generative model: :math:`c = (c_1, \dots, c_N)`, each :math:`c_n` uniform on :math:`K` classes
(one-hot vectors), and :math:`p_\theta(x|c)` a Bernoulli MLP that reads the :math:`N K` one-hot
entries. Encoder: :math:`q_\phi(c|x) = \prod_n \mathrm{Cat}(c_n; \mathrm{softmax}\,\ell_n(x))`, logits
:math:`\ell(x)` of shape ``(N, K)`` from an MLP. The ELBO of this discrete model is

.. math:: \mathcal L(x) = \mathbb E_{q_\phi(c|x)}[\log p_\theta(x|c)]
          - \sum_{n=1}^N \big(\log K - H(q_\phi(c_n|x))\big),

the KL to the uniform prior in closed form (:func:`~vae_core.distributions.kl_categorical_uniform`).
The expectation has no pathwise gradient in :math:`\phi`; the model offers two estimators of it
(chapter 12): the Gumbel-softmax relaxation (chapter 5), with or without straight-through, and the
score-function estimator with a leave-one-out baseline (chapter 4).
"""
from __future__ import annotations

import copy
import math
from typing import Sequence

import torch
from torch import nn
import torch.nn.functional as F

from .._validate import check_hidden, check_positive_int, check_tensor
from ..distributions import bernoulli_log_prob, kl_categorical_uniform
from ..gumbel import check_tau, gumbel_sample, gumbel_softmax
from ..nets import BernoulliMLP, mlp
from .base import Batch, LatentVariableModel, Output

__all__ = ["CategoricalVAE", "ESTIMATORS"]

#: the gradient estimators of the expected log-likelihood the model offers.
ESTIMATORS = ("gumbel", "score_function")
BASELINES = ("loo", None)


class CategoricalVAE(LatentVariableModel):
    r"""A VAE with :math:`N` = ``latent_dim`` categorical latent variables of ``n_categories`` classes each.

    Args:
        input_dim: number of pixels D (binary images, flattened).
        latent_dim: :math:`N`, the number of categorical variables (Jang et al.: 20).
        n_categories: :math:`K`, the classes of each variable (Jang et al.: 10); at least 2.
        tau: temperature of the Gumbel-softmax relaxation, > 0; schedulable
            (``fit(..., schedules={"tau": exponential_decay(1.0, 0.5, r)})`` anneals it).
        hard: ``True`` for straight-through Gumbel-softmax: the decoder sees the exact one-hot
            Gumbel-max code, the gradient is that of the relaxed sample.
        estimator: ``"gumbel"`` (the relaxation, as set by ``tau`` and ``hard``) or
            ``"score_function"`` (REINFORCE on exact codes; ``tau`` and ``hard`` are then unused).
        baseline: for the score-function estimator, ``"loo"`` (each sample's baseline is the mean
            learning signal of the other samples of the same example, chapter 4) or ``None``.
        hidden_dims, activation: the encoder's and decoder's MLPs (the decoder mirrors the encoder).

    Training setting (an attribute, like :attr:`VAE.n_samples`, set by ``fit(..., n_samples=S)``):
    ``n_samples``, the codes drawn per example in training, default 1 for ``"gumbel"`` and 2 for
    ``"score_function"`` (the leave-one-out baseline needs at least 2).

    What the model reports and what it trains on:

    * ``Output.elbo`` (and ``terms["recon"]``) is always the ELBO of the **discrete** model above,
      estimated with exact categorical codes :math:`c = \mathrm{onehot}(\arg\max_k(\ell_k + G_k))`
      (Gumbel-max, the same noise as the relaxed sample) and the closed-form KL. It is an unbiased
      estimate of :math:`\mathcal L(x) \le \log p_\theta(x)`, so test bounds and
      :meth:`log_weights` refer to one and the same model.
    * The Gumbel-softmax *training objective* is different: it feeds the relaxed sample
      :math:`y = \mathrm{softmax}((\ell + G)/\tau)` to the decoder and subtracts the same categorical
      KL, :math:`\log p_\theta(x|y) - \mathrm{KL}(q\,\|\,\mathrm{Uniform})` (as Jang et al. do).
      That mixes a relaxed reconstruction with a discrete KL: it is neither the discrete ELBO nor
      a bound on the relaxed model's likelihood (which would need Concrete densities for both
      :math:`q` and :math:`p`, Maddison et al., 2017); it tends to the discrete ELBO as
      :math:`\tau \to 0`. Its reconstruction is reported as ``terms["relaxed_recon"]``. With
      ``hard=True`` the decoder sees the exact code, so the value is the discrete ELBO and only the
      gradient is relaxed (biased).
    * The score-function loss has the value of the negative discrete ELBO; its gradient is an
      unbiased estimate of the ELBO's gradient.
    """

    schedulable = ("tau",)

    def __init__(self, input_dim: int, latent_dim: int, n_categories: int = 10, tau: float = 1.0,
                 hard: bool = False, estimator: str = "gumbel", baseline: str | None = "loo",
                 hidden_dims: Sequence[int] | int = (400,),
                 activation: str = "tanh"):
        super().__init__()
        check_positive_int("input_dim", input_dim)
        check_positive_int("latent_dim", latent_dim)
        check_positive_int("n_categories", n_categories)
        if n_categories < 2:
            raise ValueError(f"n_categories must be at least 2 (a variable with one class carries no "
                             f"information), got {n_categories}.")
        if not isinstance(hard, bool):
            raise TypeError(f"hard must be True (straight-through) or False (relaxed), got {hard!r}.")
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}.")
        if baseline not in BASELINES:
            raise ValueError(f"baseline must be 'loo' (leave-one-out) or None, got {baseline!r}.")
        hidden = check_hidden(hidden_dims)
        self.config = dict(input_dim=input_dim, latent_dim=latent_dim, n_categories=n_categories,
                           tau=check_tau(tau), hard=hard, estimator=estimator, baseline=baseline,
                           hidden_dims=list(hidden), activation=activation)
        self.input_dim, self.latent_dim, self.n_categories = input_dim, latent_dim, n_categories
        self.hard, self.estimator, self.baseline = hard, estimator, baseline
        self.tau = tau
        # codes per example in training (a setting, like VAE.n_samples; fit(n_samples=...) sets it)
        self.n_samples = 2 if estimator == "score_function" else 1
        self.encoder = mlp(input_dim, hidden, latent_dim * n_categories, activation)
        self.decoder = BernoulliMLP(latent_dim * n_categories, input_dim, hidden[::-1], activation)

    # -- settings that fit may change ---------------------------------------------------------
    @property
    def tau(self) -> float:
        """The Gumbel-softmax temperature (> 0)."""
        return self._tau

    @tau.setter
    def tau(self, value) -> None:
        self._tau = check_tau(value)

    @property
    def n_samples(self) -> int:
        """Codes drawn per example in training."""
        return self._n_samples

    @n_samples.setter
    def n_samples(self, value) -> None:
        check_positive_int("n_samples", value)
        if self.estimator == "score_function" and self.baseline == "loo" and value < 2:
            raise ValueError(f"the leave-one-out baseline needs n_samples >= 2 codes per example, got "
                             f"{value}; use n_samples=2 or baseline=None.")
        self._n_samples = value

    # -- the maps -----------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, D) -> logits (B, N, K)`` of :math:`q_\\phi(c|x)`."""
        return self.encoder(self.check_x(x)).unflatten(-1, (self.latent_dim, self.n_categories))

    def decode(self, c: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits ``(..., D)`` from one-hot (or relaxed) codes ``(..., N, K)``."""
        check_tensor("c", c, min_dim=2)
        if tuple(c.shape[-2:]) != (self.latent_dim, self.n_categories):
            raise ValueError(f"codes must have shape (..., {self.latent_dim}, {self.n_categories}) "
                             f"(variables, classes), got {tuple(c.shape)}.")
        return self.decoder(c.flatten(-2))

    def decode_mean(self, c: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities :math:`\\mathbb E[x|c]`."""
        return torch.sigmoid(self.decode(c))

    def log_likelihood(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p_\theta(x|c)` per example; ``c`` may carry leading sample dimensions."""
        return bernoulli_log_prob(x, self.decode(c))

    def prior_log_prob(self, c: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(c) = -N \log K` for every one-hot code (the uniform prior)."""
        return torch.full(c.shape[:-2], -self.latent_dim * math.log(self.n_categories),
                          dtype=c.dtype, device=c.device)

    @staticmethod
    def posterior_log_prob(c: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        r""":math:`\log q_\phi(c|x) = \sum_n \log \mathrm{softmax}(\ell_n)_{c_n}` for one-hot ``c``."""
        return (c * torch.log_softmax(logits, dim=-1)).sum((-1, -2))

    def kl(self, logits: torch.Tensor) -> torch.Tensor:
        r""":math:`\sum_n \log K - H(q(c_n|x))`, per example."""
        return kl_categorical_uniform(logits).sum(-1)

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` codes from the uniform prior, one-hot, shape ``(n, N, K)``."""
        check_positive_int("n", n)
        p = next(self.parameters())
        idx = torch.randint(0, self.n_categories, (n, self.latent_dim), generator=generator, device=p.device)
        return F.one_hot(idx, self.n_categories).to(p.dtype)

    # -- the objective --------------------------------------------------------------------------
    def _noise(self, logits: torch.Tensor, n: int, generator) -> torch.Tensor:
        return gumbel_sample((n, *logits.shape), generator=generator, dtype=logits.dtype, device=logits.device)

    def loss(self, batch: Batch | torch.Tensor, generator: torch.Generator | None = None) -> Output:
        r"""The training loss of the chosen estimator and the discrete ELBO (see the class docstring)."""
        x = self.as_batch(batch).x
        logits = self.encode(x)                                   # (B, N, K)
        kl = self.kl(logits)                                      # (B,)
        noise = self._noise(logits, self.n_samples, generator)   # (S, B, N, K) Gumbel noise
        index = (logits + noise).argmax(-1)
        c = F.one_hot(index, self.n_categories).to(logits.dtype)  # exact codes (Gumbel-max)
        if self.estimator == "score_function":
            log_px = self.log_likelihood(x, c)                    # (S, B), gradient to the decoder
            signal = log_px.detach()
            if self.baseline == "loo":
                s = signal.shape[0]
                signal = signal - (signal.sum(0, keepdim=True) - signal) / (s - 1)
            log_q = self.posterior_log_prob(c, logits)            # (S, B), gradient to the encoder
            # value: log p(x|c); gradient: ∇θ log p(x|c) + (f - b) ∇φ log q(c|x)
            surrogate = log_px + signal * (log_q - log_q.detach())
            recon = log_px.detach().mean(0)
            elbo = recon - kl.detach()
            return Output(loss=-(surrogate.mean(0) - kl).mean(), elbo=elbo,
                          terms={"recon": recon, "kl": kl.detach()})
        # the same noise: argmax(y) is the code c above, and with hard=True y's value is c
        y = gumbel_softmax(logits, self.tau, hard=self.hard, n_samples=self.n_samples, noise=noise)
        relaxed = self.log_likelihood(x, y)                       # (S, B)
        if self.hard:
            recon = relaxed.detach()                              # the decoder saw the exact code
        else:
            with torch.no_grad():
                recon = self.log_likelihood(x, c)
        recon = recon.mean(0)
        elbo = recon - kl.detach()
        return Output(loss=-(relaxed.mean(0) - kl).mean(), elbo=elbo,
                      terms={"recon": recon, "kl": kl.detach(), "relaxed_recon": relaxed.detach().mean(0)})

    def log_weights(self, batch: Batch | torch.Tensor, n_samples: int,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        r"""``log w_k = log p(x|c_k) + log p(c_k) - log q(c_k|x)`` at exact codes ``c_k ~ q(c|x)``, ``(K, B)``.

        The codes are one-hot Gumbel-max samples, never relaxed ones: these are the importance
        weights of the discrete model whose ELBO ``loss`` reports, whatever estimator trained it.
        """
        check_positive_int("n_samples", n_samples)
        x = self.as_batch(batch).x
        logits = self.encode(x)
        index = (logits + self._noise(logits, n_samples, generator)).argmax(-1)
        c = F.one_hot(index, self.n_categories).to(logits.dtype)
        return self.log_likelihood(x, c) + self.prior_log_prob(c) - self.posterior_log_prob(c, logits)

    # -- generation -----------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, y=None, generator: torch.Generator | None = None, mean: bool = True) -> torch.Tensor:
        """``n`` images from uniform categorical codes: the pixel probabilities (default) or binary draws."""
        if isinstance(y, torch.Generator):
            raise TypeError("sample(n, y=None, generator=None): pass the generator by name, generator=...")
        if y is not None:
            raise ValueError(f"{type(self).__name__} is not conditional: sample() takes no labels y.")
        m = self.decode_mean(self.prior_sample(n, generator))
        return m if mean else torch.bernoulli(m, generator=generator)

    def mean_decoder(self) -> tuple[nn.Sequential, str]:
        """A standalone copy of the decoder MLP from the flattened one-hot code ``(N*K,)`` to logits."""
        return copy.deepcopy(self.decoder.net).cpu().float(), "sigmoid"
