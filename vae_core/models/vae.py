r"""The variational autoencoder of Kingma & Welling (2013).

Encoder :math:`q_\phi(z|x) = \mathcal N(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x))`,
prior :math:`p(z) = \mathcal N(0, I)`, decoder :math:`p_\theta(x|z)` Bernoulli (binary or grey
pixels) or Gaussian (real-valued data), each an MLP of the paper's Appendix C.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from .._checks import check_positive_float, check_positive_int, check_tensor
from ..distributions import bernoulli_log_prob, gaussian_log_prob, standard_normal_log_prob
from ..estimators import reparameterize
from ..nets import BernoulliMLP, GaussianMLP, _check_hidden
from ..objectives import ELBOTerms, gaussian_elbo
from .base import Batch, LatentVariableModel, Output

LIKELIHOODS = ("bernoulli", "gaussian")


class VAE(LatentVariableModel):
    """A VAE with MLP encoder and decoder.

    Args:
        input_dim: number of pixels D (inputs are flattened, shape ``(B, D)``).
        latent_dim: size d of the latent code.
        hidden_dims: hidden layer sizes of both MLPs (the paper: one layer of 500 or 200).
        likelihood: ``"bernoulli"`` (decoder outputs logits) or ``"gaussian"`` (mean and log-variance).
        activation: ``"tanh"`` (the paper) or ``"relu"``, ``"softplus"``, ``"elu"``.

    Training settings (attributes that :func:`vae_core.fit` may set): ``beta`` (the KL weight,
    schedulable for a warm-up, default 1), ``n_samples`` (L, samples per example, default 1) and
    ``kl_estimator`` (``"analytic"`` or ``"mc"``).
    """

    schedulable = ("beta",)

    def __init__(self, input_dim: int, latent_dim: int, hidden_dims: Sequence[int] | int = (400,),
                 likelihood: str = "bernoulli", activation: str = "tanh"):
        super().__init__()
        check_positive_int("input_dim", input_dim)
        check_positive_int("latent_dim", latent_dim)
        hidden = _check_hidden(hidden_dims)
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}.")
        self.config = dict(input_dim=input_dim, latent_dim=latent_dim, hidden_dims=list(hidden),
                           likelihood=likelihood, activation=activation)
        self.input_dim, self.latent_dim, self.likelihood = input_dim, latent_dim, likelihood
        self.encoder = GaussianMLP(input_dim, latent_dim, hidden, activation)
        if likelihood == "bernoulli":
            self.decoder = BernoulliMLP(latent_dim, input_dim, hidden[::-1], activation)
        else:
            self.decoder = GaussianMLP(latent_dim, input_dim, hidden[::-1], activation)
        self.beta, self.n_samples, self.kl_estimator = 1.0, 1, "analytic"

    # -- the three maps -------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, D) -> (mu, logvar)``, each ``(B, d)``."""
        return self.encoder(self.check_x(x))

    def decode(self, z: torch.Tensor):
        """Decoder parameters: Bernoulli logits ``(..., D)``, or Gaussian ``(mean, logvar)``."""
        check_tensor("z", z)
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"z must have last dimension latent_dim={self.latent_dim}, got shape {tuple(z.shape)}.")
        return self.decoder(z)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """The mean of :math:`p(x|z)`: pixel probabilities (Bernoulli) or the Gaussian mean."""
        out = self.decode(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out[0]

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p_\theta(x|z)` per example; ``z`` may carry leading sample dimensions."""
        out = self.decode(z)
        if self.likelihood == "bernoulli":
            return bernoulli_log_prob(x, out)
        mean, logvar = out
        return gaussian_log_prob(x.expand_as(mean), mean, logvar)

    def prior_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(z)` for the standard-normal prior."""
        return standard_normal_log_prob(z)

    # -- the objective --------------------------------------------------------------------------
    def elbo(self, x: torch.Tensor, n_samples: int = 1, beta: float = 1.0, kl: str = "analytic",
             generator: torch.Generator | None = None) -> ELBOTerms:
        """Per-example ``(elbo, recon, kl)`` from ``n_samples`` reparameterized samples (SGVB)."""
        check_positive_int("n_samples", n_samples)
        if beta != 0:
            check_positive_float("beta", beta)
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, n_samples, generator=generator)  # (L, B, d)
        return gaussian_elbo(self.log_likelihood(x, z), z, mu, logvar, beta=beta, kl=kl)

    def forward(self, x: torch.Tensor) -> ELBOTerms:
        return self.elbo(x)

    # -- the model interface (vae_core.models.base) ---------------------------------------------
    def loss(self, batch: Batch | torch.Tensor, generator: torch.Generator | None = None) -> Output:
        r"""``loss = -mean(recon - beta * kl)``; ``elbo = recon - kl`` (the true bound, whatever ``beta``)."""
        x = batch.x if isinstance(batch, Batch) else batch
        t = self.elbo(x, n_samples=self.n_samples, beta=self.beta, kl=self.kl_estimator, generator=generator)
        elbo = t.elbo if self.beta == 1 else t.recon - t.kl
        return Output(loss=-t.elbo.mean(), elbo=elbo, terms={"recon": t.recon, "kl": t.kl})

    def log_weights(self, batch: Batch | torch.Tensor, n_samples: int,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        r"""``log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x)`` at ``z_k ~ q(z|x)``, shape ``(K, B)``."""
        check_positive_int("n_samples", n_samples)
        x = batch.x if isinstance(batch, Batch) else batch
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, n_samples, generator=generator)
        return self.log_likelihood(x, z) + self.prior_log_prob(z) - gaussian_log_prob(z, mu, logvar)

    # -- generation -----------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, y=None, generator: torch.Generator | None = None, mean: bool = True) -> torch.Tensor:
        """``n`` draws: decode ``z ~ N(0, I)``; the mean image (default) or a sample from p(x|z).

        ``y`` is accepted for the common interface and must be ``None`` (this model has no labels).
        """
        check_positive_int("n", n)
        if isinstance(y, torch.Generator):
            raise TypeError("sample(n, y=None, generator=None): pass the generator by name, generator=...")
        if y is not None:
            raise ValueError(f"{type(self).__name__} is not conditional: sample() takes no labels y.")
        p = next(self.parameters())
        z = torch.randn(n, self.latent_dim, generator=generator, device=p.device, dtype=p.dtype)
        m = self.decode_mean(z)
        if mean:
            return m
        if self.likelihood == "bernoulli":
            return torch.bernoulli(m, generator=generator)
        _, logvar = self.decode(z)
        return m + torch.exp(0.5 * logvar) * torch.randn(m.shape, generator=generator, device=m.device)

    def mean_decoder(self) -> tuple[nn.Sequential, str]:
        """A standalone copy of the decoder that maps z to the mean output, plus its output map.

        Returns ``(net, output)`` where ``output`` is ``"sigmoid"`` (net gives logits) or
        ``"identity"`` (net gives the Gaussian mean). Used to export the decoder to the browser.
        """
        net = copy.deepcopy(self.decoder.net).cpu().float()
        if self.likelihood == "bernoulli":
            return net, "sigmoid"
        last = net[-1]
        mean_layer = nn.Linear(last.in_features, self.input_dim)
        with torch.no_grad():
            mean_layer.weight.copy_(last.weight[: self.input_dim])
            mean_layer.bias.copy_(last.bias[: self.input_dim])
        net[-1] = mean_layer
        return net, "identity"
