r"""A VAE whose code is :math:`N` categorical variables with :math:`K` classes each (Jang et al., 2017).

Generative model: :math:`c = (c_1, \dots, c_N)`, each :math:`c_n` uniform on :math:`K` classes
(one-hot vectors, :class:`~vae_core.priors.UniformCategorical`), and :math:`p_\theta(x|c)` a Bernoulli
MLP that reads the :math:`N K` one-hot entries. Encoder:
:math:`q_\phi(c|x) = \prod_n \mathrm{Cat}(c_n; \mathrm{softmax}\,\ell_n(x))`, logits :math:`\ell(x)` of
shape ``(N, K)`` from an MLP. The ELBO of this discrete model is

.. math:: \mathcal L(x) = \mathbb E_{q_\phi(c|x)}[\log p_\theta(x|c)]
          - \sum_{n=1}^N \big(\log K - H(q_\phi(c_n|x))\big),

the KL to the uniform prior in closed form (:func:`~vae_core.distributions.kl_categorical_uniform`).
The expectation has no pathwise gradient in :math:`\phi`; chapter 12 trains it with two estimators,
one model each:

* :class:`CategoricalVAE` -- the Gumbel-softmax relaxation (chapter 5), with or without
  straight-through (``hard``), at the temperature ``tau``;
* :class:`ScoreFunctionCategoricalVAE` -- the score-function estimator on exact codes, with or
  without the leave-one-out baseline (chapter 4).

Both report the same discrete ELBO and the same :meth:`~CategoricalVAEBase.log_weights`, so their
bounds compare like for like.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .._validate import check_hidden, check_positive_int
from ..distributions import kl_categorical_uniform
from ..gumbel import gumbel_max_sample, gumbel_sample, gumbel_softmax
from ..nets import BernoulliMLP, mlp
from ..priors import UniformCategorical
from .base import Batch, LatentVariableModel, Output

__all__ = ["CategoricalVAEBase", "CategoricalVAE", "ScoreFunctionCategoricalVAE", "OneHotBernoulliMLP"]

BASELINES = ("loo", None)


class OneHotBernoulliMLP(BernoulliMLP):
    """The Bernoulli decoder :math:`p_\\theta(x|c)` of codes ``(..., N, K)``: the MLP reads the ``N K``
    entries flattened. Its :meth:`export` is the MLP on flattened codes ``(N*K,)``."""

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return self.net(c.flatten(-2))


class CategoricalVAEBase(LatentVariableModel):
    r"""The model of the module docstring, without a training loss: encoder, decoder, prior, the
    closed-form KL and the importance weights. :class:`CategoricalVAE` and
    :class:`ScoreFunctionCategoricalVAE` add the loss of their estimator.

    Args:
        input_dim: number of pixels D (binary images, flattened).
        latent_dim: :math:`N`, the number of categorical variables (Jang et al.: 20).
        n_categories: :math:`K`, the classes of each variable (Jang et al.: 10); at least 2.
        hidden_dims, activation: the encoder's and decoder's MLPs (the decoder mirrors the encoder).

    ``Output.elbo`` (and ``terms["recon"]``) is always the ELBO of the **discrete** model, estimated
    with exact categorical codes and the closed-form KL: an unbiased estimate of
    :math:`\mathcal L(x) \le \log p_\theta(x)`, whatever the estimator that trains the model.
    """

    def __init__(self, input_dim: int, latent_dim: int, n_categories: int = 10,
                 hidden_dims: Sequence[int] | int = (400,), activation: str = "tanh"):
        super().__init__()
        self.input_dim = check_positive_int("input_dim", input_dim)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        if check_positive_int("n_categories", n_categories) < 2:
            raise ValueError(f"n_categories must be at least 2 (a variable with one class carries no "
                             f"information), got {n_categories}.")
        self.n_categories = n_categories
        hidden = check_hidden(hidden_dims)
        self.encoder = mlp(input_dim, hidden, latent_dim * n_categories, activation)                 # q(c|x)
        self.decoder = OneHotBernoulliMLP(latent_dim * n_categories, input_dim, hidden[::-1], activation)  # p(x|c)
        self.prior = UniformCategorical(latent_dim, n_categories)                                    # p(c)


    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, D) -> logits (B, N, K)`` of :math:`q_\\phi(c|x)`."""
        return self.encoder(x).unflatten(-1, (self.latent_dim, self.n_categories))

    def decode(self, c: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits ``(..., D)`` from one-hot (or relaxed) codes ``(..., N, K)``."""
        if c.dim() < 2 or tuple(c.shape[-2:]) != (self.latent_dim, self.n_categories):
            raise ValueError(f"codes must have shape (..., {self.latent_dim}, {self.n_categories}) "
                             f"(variables, classes), got {tuple(c.shape)}.")
        return self.decoder(c)

    def decode_mean(self, c: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities :math:`\\mathbb E[x|c]`."""
        return self.decoder.mean(c)

    def log_likelihood(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p_\theta(x|c)` per example; ``c`` may carry leading sample dimensions."""
        return self.decoder.log_prob(x, c)

    @staticmethod
    def posterior_log_prob(c: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        r""":math:`\log q_\phi(c|x) = \sum_n \log \mathrm{softmax}(\ell_n)_{c_n}` for one-hot ``c``."""
        return (c * torch.log_softmax(logits, dim=-1)).sum((-1, -2))

    def kl(self, logits: torch.Tensor) -> torch.Tensor:
        r""":math:`\sum_n \log K - H(q(c_n|x))`, per example."""
        return kl_categorical_uniform(logits).sum(-1)

    def log_weights(self, batch: Batch | torch.Tensor, n_samples: int,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        r"""``log w_k = log p(x|c_k) + log p(c_k) - log q(c_k|x)`` at exact codes ``c_k ~ q(c|x)``, ``(K, B)``.

        The codes are one-hot Gumbel-max samples, never relaxed ones: these are the importance
        weights of the discrete model whose ELBO ``loss`` reports, whatever estimator trained it.
        """
        x = self.as_batch(batch).x
        logits = self.encode(x)
        c = gumbel_max_sample(logits, generator, n_samples, one_hot=True)
        return self.decoder.log_prob(x, c) + self.prior.log_prob(c) - self.posterior_log_prob(c, logits)


class CategoricalVAE(CategoricalVAEBase):
    r"""The categorical VAE trained by the Gumbel-softmax relaxation (Jang et al., 2017).

    Args:
        input_dim, latent_dim, n_categories, hidden_dims, activation: as :class:`CategoricalVAEBase`.
        tau: the starting temperature of the relaxation, > 0.
        hard: ``True`` for straight-through Gumbel-softmax: the decoder sees the exact one-hot
            Gumbel-max code, the gradient is that of the relaxed sample.

    Settings: ``tau`` (schedulable: ``fit(..., schedules={"tau": exponential_decay(1.0, 0.5, r)})``
    anneals it) and ``n_samples`` (codes per example in training, default 1).

    The *training objective* feeds the relaxed sample :math:`y = \mathrm{softmax}((\ell + G)/\tau)` to
    the decoder and subtracts the categorical KL, :math:`\log p_\theta(x|y) - \mathrm{KL}(q\,\|\,
    \mathrm{Uniform})` (as Jang et al. do). That mixes a relaxed reconstruction with a discrete KL:
    it is neither the discrete ELBO nor a bound on the relaxed model's likelihood (which would need
    Concrete densities for both :math:`q` and :math:`p`, Maddison et al., 2017); it tends to the
    discrete ELBO as :math:`\tau \to 0`. Its reconstruction is reported as ``terms["relaxed_recon"]``.
    The reported ``recon`` decodes the exact code :math:`c = \mathrm{onehot}(\arg\max_k(\ell_k + G_k))`
    of the same noise. With ``hard=True`` the decoder sees that code, so the objective's value is the
    discrete ELBO and only its gradient is relaxed (biased).
    """

    settings = {"tau": 1.0, "n_samples": 1}

    def __init__(self, input_dim: int, latent_dim: int, n_categories: int = 10, tau: float = 1.0,
                 hard: bool = False, hidden_dims: Sequence[int] | int = (400,), activation: str = "tanh"):
        super().__init__(input_dim, latent_dim, n_categories, hidden_dims, activation)
        if not isinstance(hard, bool):
            raise TypeError(f"hard must be True (straight-through) or False (relaxed), got {hard!r}.")
        self.hard, self.tau = hard, tau


    def loss(self, batch: Batch | torch.Tensor, generator: torch.Generator | None = None) -> Output:
        r"""``loss = -mean(log p(x|y) - KL)`` at the relaxed code ``y``; ``elbo = log p(x|c) - KL`` at the
        exact code ``c`` of the same Gumbel noise (see the class docstring)."""
        x = self.as_batch(batch).x
        logits = self.encode(x)                                                  # (B, N, K)
        kl = self.kl(logits)                                                     # KL(q(c|x) || p(c)), (B,)
        noise = gumbel_sample((self.n_samples, *logits.shape), generator, dtype=logits.dtype, device=logits.device)
        y = gumbel_softmax(logits, self.tau, hard=self.hard, noise=noise)       # relaxed code (S, B, N, K)
        c = gumbel_max_sample(logits, noise=noise, one_hot=True)                 # exact code: argmax of y
        relaxed = self.decoder.log_prob(x, y).mean(0)                            # what trains
        with torch.no_grad():
            recon = self.decoder.log_prob(x, c).mean(0)                          # what is reported
        return Output(loss=-(relaxed - kl).mean(), elbo=recon - kl.detach(),
                      terms={"recon": recon, "kl": kl.detach(), "relaxed_recon": relaxed.detach()})


class ScoreFunctionCategoricalVAE(CategoricalVAEBase):
    r"""The categorical VAE trained by the score-function (REINFORCE) estimator on exact codes.

    Args:
        input_dim, latent_dim, n_categories, hidden_dims, activation: as :class:`CategoricalVAEBase`.
        baseline: ``"loo"`` (each code's baseline is the mean learning signal of the other codes of
            the same example, chapter 4; needs ``n_samples >= 2``) or ``None``.

    Settings: ``n_samples``, the codes drawn per example in training (default 2, the fewest the
    leave-one-out baseline can use).

    The loss has the value of the negative discrete ELBO; its gradient is an unbiased estimate of the
    ELBO's gradient: :math:`\nabla_\theta\log p_\theta(x|c) + (f(c) - b)\,\nabla_\phi\log q_\phi(c|x)`
    with :math:`f(c) = \log p_\theta(x|c)`, plus the closed-form KL's gradient.
    """

    settings = {"n_samples": 2}

    def __init__(self, input_dim: int, latent_dim: int, n_categories: int = 10, baseline: str | None = "loo",
                 hidden_dims: Sequence[int] | int = (400,), activation: str = "tanh"):
        super().__init__(input_dim, latent_dim, n_categories, hidden_dims, activation)
        if baseline not in BASELINES:
            raise ValueError(f"baseline must be 'loo' (leave-one-out) or None, got {baseline!r}.")
        self.baseline = baseline

    def loss(self, batch: Batch | torch.Tensor, generator: torch.Generator | None = None) -> Output:
        r"""``loss = -mean(surrogate - KL)``, whose value is ``-mean(elbo)`` and whose gradient is the
        score-function estimate (see the class docstring)."""
        x = self.as_batch(batch).x
        logits = self.encode(x)                                                  # (B, N, K)
        kl = self.kl(logits)                                                     # KL(q(c|x) || p(c)), (B,)
        c = gumbel_max_sample(logits, generator, self.n_samples, one_hot=True)   # exact codes (S, B, N, K)
        log_px = self.decoder.log_prob(x, c)                                     # f(c), gradient to the decoder
        signal = log_px.detach()
        if self.baseline == "loo":                                               # b_s: mean of the other codes' f
            if len(signal) < 2:
                raise ValueError(f"the leave-one-out baseline needs n_samples >= 2 codes per example, got "
                                 f"{len(signal)}; use n_samples=2 or baseline=None.")
            signal = signal - (signal.sum(0, keepdim=True) - signal) / (len(signal) - 1)
        log_q = self.posterior_log_prob(c, logits)                               # gradient to the encoder
        surrogate = log_px + signal * (log_q - log_q.detach())                   # value f(c); gradient as above
        recon = log_px.detach().mean(0)
        return Output(loss=-(surrogate.mean(0) - kl).mean(), elbo=recon - kl.detach(),
                      terms={"recon": recon, "kl": kl.detach()})
