r"""The wake-sleep algorithm of Hinton, Dayan, Frey & Neal (1995), on the VAE's networks.

Kingma & Welling (2013) compare AEVB with wake-sleep in their Figs. 2 and 3, using the same
recognition model (encoder) :math:`q_\phi(z|x)` and generative model :math:`p(z)\,p_\theta(x|z)`.
Wake-sleep trains the two with two separate objectives instead of one bound:

* **wake phase** (generative weights :math:`\theta`): encode a data point, draw
  :math:`z \sim q_\phi(z|x)` and take a gradient step on :math:`\log p_\theta(x|z)` with :math:`z`
  held fixed. For the same :math:`z` this is exactly the :math:`\theta`-gradient of the ELBO (the KL
  term does not involve :math:`\theta`);
* **sleep phase** (recognition weights :math:`\phi`): "dream" a pair :math:`z \sim p(z)`,
  :math:`\tilde x \sim p_\theta(x|z)` and take a gradient step on :math:`\log q_\phi(z|\tilde x)`. In
  expectation this minimises :math:`\mathbb E_{p_\theta(x)}\,\mathrm{KL}\big(p_\theta(z|x)\,\|\,q_\phi(z|x)\big)`,
  the *forward* KL to the model's own posterior, not the reverse KL of the ELBO.

Neither phase needs a gradient through a sample, so wake-sleep works without the
reparameterization trick; the price is that the two phases do not optimise a common objective.
The bound reported for a wake-sleep model is the ELBO of its own :math:`q_\phi`, measured exactly as
for a VAE (``model.elbo`` in eval mode).

The model is :class:`vae_core.models.WakeSleepVAE` (its ``loss`` is the wake loss plus the sleep
loss), so the one ``fit`` trains it. :func:`wake_sleep_curve` is
:func:`vae_core.experiments.train_curve` for it (minibatches of ``M``, one dream per data point,
Adagrad, a weight decay ``1/N`` for the :math:`\mathcal N(0, I)` weight prior), scored on the same
images with the same fixed noise as a VAE, so its curve can be drawn beside the VAE's;
:func:`wake_sleep_curves` does so for several latent sizes (the paper's Fig. 2).
"""
from __future__ import annotations

from typing import Sequence

from .experiments import evaluation_sets, lower_bound_curves, train_curve
from .models.wake_sleep import WakeSleepVAE, dream, sleep_loss, wake_loss

__all__ = ["WakeSleepVAE", "dream", "wake_loss", "sleep_loss", "evaluation_sets", "wake_sleep_curve",
           "wake_sleep_curves"]


def wake_sleep_curve(model: WakeSleepVAE, train, test, total_samples: int, checkpoints: Sequence[int] | None = None,
                     **kwargs) -> dict:
    r"""Train ``model`` by wake-sleep and record the ELBO of its encoder at checkpoints.

    ``model`` must be a :class:`~vae_core.models.WakeSleepVAE`; the other arguments are those of
    :func:`vae_core.experiments.train_curve` (Adagrad with ``lr=0.02`` and the weight prior by
    default), which also gives the returned ``{"samples", "train_elbo", "test_elbo", "seconds"}``.
    """
    if not isinstance(model, WakeSleepVAE):
        raise TypeError(f"model must be a vae_core.models.WakeSleepVAE (a VAE trained by wake-sleep), got "
                        f"{type(model).__name__}; build one with WakeSleepVAE(input_dim, latent_dim, hidden_dims).")
    return train_curve(model, train, test, total_samples, checkpoints, **kwargs)


def wake_sleep_curves(train, test, latent_dims: Sequence[int], **kwargs) -> dict:
    """Wake-sleep's side of the paper's Fig. 2: :func:`vae_core.experiments.lower_bound_curves` with
    ``model="WakeSleepVAE"``. Each model is seeded like the VAE's, so both start from the same weights."""
    return lower_bound_curves(train, test, latent_dims, model="WakeSleepVAE", **kwargs)
