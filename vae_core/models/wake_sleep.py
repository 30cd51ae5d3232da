r"""Wake-sleep (Hinton, Dayan, Frey & Neal, 1995) as a model on the common interface.

The same networks as :class:`~vae_core.models.vae.VAE`, trained by two objectives instead of one
bound: the **wake** phase moves the decoder :math:`\theta` on :math:`\log p_\theta(x|z)` at a sample
:math:`z \sim q_\phi(z|x)` held fixed, the **sleep** phase moves the encoder :math:`\phi` on
:math:`\log q_\phi(z|\tilde x)` for "dreams" :math:`z \sim p(z),\ \tilde x \sim p_\theta(x|z)`.
:class:`WakeSleepVAE` returns their sum as its loss, so the one ``fit`` trains it; the bound it
reports is the ELBO of its own encoder, measured exactly as for a VAE. Its curves for the paper's Fig. 2 are :func:`vae_core.paper.wake_sleep_curves`.
"""
from __future__ import annotations

import torch

from .._validate import check_positive_int, check_tensor
from ..distributions import kl_normal_standard
from ..estimators import reparameterize
from .base import Batch, Output
from .vae import VAE

__all__ = ["WakeSleepVAE", "dream", "wake_loss", "sleep_loss"]


def _check_model(model) -> None:
    for attr in ("encoder", "decoder", "prior"):
        if not hasattr(model, attr):
            raise TypeError(f"model must be a vae_core.VAE (encoder q(z|x), decoder p(x|z), prior p(z)); "
                            f"{type(model).__name__} has no '{attr}'.")


@torch.no_grad()
def dream(model, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Sample ``n`` pairs from the generative model: :math:`z \sim p(z)`,
    :math:`\tilde x \sim p_\theta(x|z)` (0/1 pixels for a Bernoulli decoder). Returns ``(z, x)``,
    detached from the graph."""
    _check_model(model)
    z = model.prior.sample(check_positive_int("n", n), generator=generator)
    return z, model.decoder.sample(z, generator)


def wake_loss(model, x: torch.Tensor, generator: torch.Generator | None = None,
              return_encoding: bool = False):
    r"""Per-example wake-phase loss :math:`-\log p_\theta(x|z)` with :math:`z \sim q_\phi(z|x)` held fixed.

    The sample is drawn without a graph, so the gradient reaches only the decoder (:math:`\theta`).
    It uses the same noise as ``model.elbo(x, generator=...)`` for the same generator state, so its
    :math:`\theta`-gradient equals that of the ELBO sample.
    """
    _check_model(model)
    check_tensor("x", x, min_dim=2)
    with torch.no_grad():
        mu, logvar = model.encoder(x)
        z = reparameterize(mu, logvar, 1, generator)[0]
    loss = -model.decoder.log_prob(x, z)
    return (loss, (mu, logvar)) if return_encoding else loss


def sleep_loss(model, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Per-dream sleep-phase loss :math:`-\log q_\phi(z|\tilde x)` for ``n`` dreams
    :math:`(z, \tilde x)` from :func:`dream`; the gradient reaches only the encoder (:math:`\phi`)."""
    z, x = dream(model, n, generator)
    return -model.encoder.log_prob(z, x)


class WakeSleepVAE(VAE):
    """A :class:`~vae_core.models.vae.VAE` trained by wake-sleep instead of the ELBO.

    ``loss`` is the mean wake loss plus the mean sleep loss over one dream per data point (in
    training mode; in eval mode only the wake pass runs). Each gradient reaches only its own network.
    ``Output.elbo`` is the ELBO of the encoder, ``recon - kl``, from the wake pass's sample (the same
    noise a VAE's single-sample ELBO would use), so its curve compares with a VAE's. Neither phase
    has a KL weight or a choice of KL estimator, so the model declares no settings.
    """

    settings = {}

    def loss(self, batch: Batch | torch.Tensor, generator: torch.Generator | None = None) -> Output:
        x = self.as_batch(batch).x
        wake, (mu, logvar) = wake_loss(self, x, generator, return_encoding=True)
        recon, kl = -wake.detach(), kl_normal_standard(mu, logvar)
        terms = {"recon": recon, "kl": kl, "wake": wake.detach()}
        total = wake.mean()
        if self.training:
            sleep = sleep_loss(self, len(x), generator)
            terms["sleep"] = sleep.detach()
            total = total + sleep.mean()
        return Output(loss=total, elbo=recon - kl, terms=terms)
