r"""The variational autoencoder of Kingma & Welling (2013), chapter 6.

Encoder :math:`q_\phi(z|x) = \mathcal N(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x))`,
prior :math:`p(z) = \mathcal N(0, I)`, decoder :math:`p_\theta(x|z)` Bernoulli (binary or grey
pixels) or Gaussian (real-valued data), each an MLP of the paper's Appendix C. The loss is the
chapter's equation,

.. math:: \mathcal L(x) = \mathbb E_{q_\phi(z|x)}[\log p_\theta(x|z)] - \mathrm{KL}(q_\phi(z|x)\,\|\,p(z)),

the expectation from ``n_samples`` reparameterized draws, the KL in closed form or by Monte Carlo.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .._validate import check_hidden, check_positive_int
from ..distributions import gaussian_log_prob, kl_normal_standard
from ..estimators import reparameterize
from ..nets import DECODERS, GaussianMLP
from ..objectives import KL_MODES, ELBOTerms
from ..priors import StandardNormal
from .base import Batch, LatentVariableModel, Output

LIKELIHOODS = tuple(DECODERS)


class VAE(LatentVariableModel):
    """A VAE with MLP encoder and decoder.

    Args:
        input_dim: number of pixels D (inputs are flattened, shape ``(B, D)``).
        latent_dim: size d of the latent code.
        hidden_dims: hidden layer sizes of both MLPs (the paper: one layer of 500 or 200).
        likelihood: ``"bernoulli"`` (decoder outputs logits) or ``"gaussian"`` (mean and log-variance).
        activation: ``"tanh"`` (the paper) or ``"relu"``, ``"softplus"``, ``"elu"``.

    Settings (:func:`vae_core.fit` may set or schedule them): ``beta`` (the KL weight, e.g. for a
    warm-up; default 1), ``n_samples`` (L, samples per example, default 1) and ``kl_estimator``
    (``"analytic"`` or ``"mc"``).
    """

    settings = {"beta": 1.0, "n_samples": 1, "kl_estimator": "analytic"}

    def __init__(self, input_dim: int, latent_dim: int, hidden_dims: Sequence[int] | int = (400,),
                 likelihood: str = "bernoulli", activation: str = "tanh"):
        super().__init__()
        self.input_dim = check_positive_int("input_dim", input_dim)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        hidden = check_hidden(hidden_dims)
        if likelihood not in DECODERS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}.")
        self.likelihood = likelihood
        self.encoder = GaussianMLP(input_dim, latent_dim, hidden, activation)                  # q(z|x)
        self.decoder = DECODERS[likelihood](latent_dim, input_dim, hidden[::-1], activation)   # p(x|z)
        self.prior = StandardNormal(latent_dim)                                                 # p(z)


    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, D) -> (mu, logvar)``, each ``(B, d)``."""
        return self.encoder(x)

    def terms(self, x: torch.Tensor, generator: torch.Generator | None = None, n_samples: int | None = None,
              kl: str | None = None) -> dict:
        """Per-example ``recon`` (E_q log p(x|z)) and ``kl`` (KL(q(z|x) || p(z))), plus the draws ``z``
        ``(L, B, d)`` and the encoder's ``mu`` and ``logvar``, for models that add to the VAE's loss.
        ``n_samples`` and ``kl`` default to the model's settings."""
        kl_estimator = kl or self.kl_estimator
        mu, logvar = self.encoder(x)
        z = reparameterize(mu, logvar, n_samples or self.n_samples, generator)          # (L, B, d)
        recon = self.decoder.log_prob(x, z).mean(0)                                     # E_q log p(x|z)
        kl = (kl_normal_standard(mu, logvar) if kl_estimator == "analytic"              # KL(q(z|x) || p(z))
              else (gaussian_log_prob(z, mu, logvar) - self.prior.log_prob(z)).mean(0))
        return {"recon": recon, "kl": kl, "z": z, "mu": mu, "logvar": logvar, "kl_estimator": kl_estimator}

    def loss(self, batch: Batch | torch.Tensor, generator: torch.Generator | None = None) -> Output:
        r"""``loss = -mean(recon - beta * kl)``; ``elbo = recon - kl`` (the true bound, whatever ``beta``)."""
        t = self.terms(self.as_batch(batch).x, generator)
        return Output(loss=-(t["recon"] - self.beta * self.penalty(t)).mean(), elbo=t["recon"] - t["kl"],
                      terms={"recon": t["recon"], "kl": t["kl"]})

    def penalty(self, t: dict) -> torch.Tensor:
        """The KL term the training objective weights by ``beta``: the KL itself (free bits changes it)."""
        return t["kl"]

    def log_weights(self, batch: Batch | torch.Tensor, n_samples: int,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        r"""``log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x)`` at ``z_k ~ q(z|x)``, shape ``(K, B)``."""
        x = self.as_batch(batch).x
        mu, logvar = self.encoder(x)
        z = reparameterize(mu, logvar, check_positive_int("n_samples", n_samples), generator)
        return self.decoder.log_prob(x, z) + self.prior.log_prob(z) - gaussian_log_prob(z, mu, logvar)

    # -- conveniences for the chapters ----------------------------------------------------------
    def elbo(self, x: torch.Tensor, n_samples: int = 1, beta: float = 1.0, kl: str = "analytic",
             generator: torch.Generator | None = None) -> ELBOTerms:
        """Per-example ``(objective, recon, kl)`` with ``objective = recon - beta * kl`` (the ELBO for
        ``beta = 1``), from ``n_samples`` draws, whatever the model's settings."""
        if kl not in KL_MODES:
            raise ValueError(f"kl must be one of {KL_MODES}, got {kl!r}.")
        t = self.terms(self.as_batch(x).x, generator, check_positive_int("n_samples", n_samples), kl)
        return ELBOTerms(t["recon"] - beta * self.penalty(t), t["recon"], t["kl"])

    def decode(self, z: torch.Tensor):
        """The decoder's output: Bernoulli logits ``(..., D)``, or the Gaussian's ``(mean, logvar)``."""
        return self.decoder(z)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """The mean of :math:`p(x|z)`: pixel probabilities (Bernoulli) or the Gaussian mean."""
        return self.decoder.mean(z)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p_\theta(x|z)` per example; ``z`` may carry leading sample dimensions."""
        return self.decoder.log_prob(x, z)
