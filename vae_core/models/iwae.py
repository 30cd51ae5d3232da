r"""The importance-weighted autoencoder (Burda, Grosse & Salakhutdinov, 2015).

The same networks as the :class:`~vae_core.models.vae.VAE`, trained on a tighter bound: with
:math:`z_1, \dots, z_k \sim q_\phi(z|x)` and :math:`\log w_i = \log p_\theta(x|z_i) + \log p(z_i)
- \log q_\phi(z_i|x)`,

.. math:: \mathcal L_k(x) = \mathbb E\Big[\log \frac1k \sum_{i=1}^k w_i\Big]
          \;\le\; \mathcal L_{k+1}(x) \;\le\; \log p_\theta(x), \qquad \mathcal L_1 = \text{ELBO}.

The log-weights are always built from the sampled :math:`z_i` (the closed-form KL has no place in
:math:`\mathcal L_k` for ``k > 1``), and combined with ``logsumexp - log k``
(:func:`vae_core.objectives.iwae_bound`).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from ..distributions import gaussian_log_prob, kl_normal_standard
from ..estimators import reparameterize
from ..objectives import iwae_bound
from .base import Batch, Output
from .vae import VAE

__all__ = ["IWAE", "IWAETerms"]


class IWAETerms(NamedTuple):
    """Per-example pieces of one draw of :math:`\\hat{\\mathcal L}_k`, all from the same ``k`` samples.

    ``log_px_z``, ``log_pz``, ``log_qz`` have shape ``(k, B)``; ``log_w = log_px_z + log_pz - log_qz``;
    ``bound = iwae_bound(log_w)`` has shape ``(B,)``.
    """
    bound: torch.Tensor
    log_w: torch.Tensor
    log_px_z: torch.Tensor
    log_pz: torch.Tensor
    log_qz: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor


class IWAE(VAE):
    r"""A VAE trained on the importance-weighted bound :math:`\mathcal L_k`.

    Args:
        input_dim, latent_dim, hidden_dims, likelihood, activation: as :class:`~vae_core.models.vae.VAE`.
        k: the number of importance samples per example in the training bound (``k = 1`` is the VAE).

    ``loss(batch)`` returns ``loss = -mean L_k`` and ``elbo = L_k`` per example (one draw of the
    bound, so ``History`` reports :math:`\mathcal L_k`, not the ELBO). Its ``terms``, per example,
    from the same ``k`` samples:

    * ``recon`` -- :math:`\frac1k\sum_i \log p_\theta(x|z_i)`, an unbiased estimate of
      :math:`\mathbb E_q \log p_\theta(x|z)`;
    * ``kl`` -- :math:`\mathrm{KL}(q_\phi(z|x)\,\|\,p(z))` of the same Gaussian :math:`q_\phi(z|x)`
      in closed form: the rate, reported for comparison with the VAE; it is *not* used in the bound;
    * ``kl_mc`` -- :math:`\frac1k\sum_i [\log q_\phi(z_i|x) - \log p(z_i)]` at the same samples
      (can be negative for one draw), so that ``recon - kl_mc`` is the mean of the ``k`` log-weights
      and :math:`\hat{\mathcal L}_k \ge` ``recon - kl_mc`` for every draw (Jensen);
    * ``ess`` -- the effective sample size :math:`1/\sum_i \tilde w_i^2 \in [1, k]` of the
      normalised weights :math:`\tilde w_i = w_i/\sum_j w_j`.

    The one setting :func:`vae_core.fit` may set is ``k``. There is no KL weight and no KL estimator
    (the bound has no KL term). The inherited :meth:`~vae_core.models.vae.VAE.elbo` still computes
    the plain ELBO, for comparison.
    """

    settings = {"k": 5}

    def __init__(self, input_dim: int, latent_dim: int, hidden_dims=(400,), likelihood: str = "bernoulli",
                 activation: str = "tanh", k: int = 5):
        super().__init__(input_dim, latent_dim, hidden_dims, likelihood, activation)
        self.k = k


    def iwae_terms(self, x: torch.Tensor, k: int | None = None,
                   generator: torch.Generator | None = None) -> IWAETerms:
        r"""One draw of :math:`\hat{\mathcal L}_k(x)` and its pieces, from ``k`` reparameterized samples."""
        mu, logvar = self.encoder(x)
        z = reparameterize(mu, logvar, k or self.k, generator)            # (k, B, d)
        log_px_z = self.decoder.log_prob(x, z)                            # (k, B)
        log_pz = self.prior.log_prob(z)
        log_qz = gaussian_log_prob(z, mu, logvar)
        log_w = log_px_z + log_pz - log_qz
        return IWAETerms(iwae_bound(log_w), log_w, log_px_z, log_pz, log_qz, mu, logvar)

    def loss(self, batch: Batch | torch.Tensor, generator: torch.Generator | None = None) -> Output:
        r"""``loss = -mean L_k``, ``elbo = L_k`` per example; terms as in the class docstring."""
        t = self.iwae_terms(self.as_batch(batch).x, generator=generator)
        with torch.no_grad():
            w_norm = torch.softmax(t.log_w, dim=0)
            ess = 1.0 / (w_norm ** 2).sum(0)
        terms = {"recon": t.log_px_z.mean(0), "kl": kl_normal_standard(t.mu, t.logvar),
                 "kl_mc": (t.log_qz - t.log_pz).mean(0), "ess": ess}
        return Output(loss=-t.bound.mean(), elbo=t.bound, terms=terms)
