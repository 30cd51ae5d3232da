"""vae_core: the small, tested PyTorch library behind the VAE teaching book.

One module per concept, in the order of the book: ``distributions`` (log-densities, KL divergences),
``estimators`` (reparameterization, score function), ``gumbel`` (Gumbel-max, Gumbel-softmax),
``nets`` (the paper's MLPs), ``objectives`` (ELBO, free bits, tighter bounds), ``models`` (the VAE
and its variants on one interface), ``schedules`` (warm-up, annealing), ``train`` (``fit``, and
``python -m vae_core.train``), ``evaluate`` (log-likelihood, latent usage), ``diagnostics``
(posterior collapse), ``data``, ``checkpoint``, ``widgets`` (the explorers), ``book`` (chapter helpers).
"""
from . import diagnostics, distributions, estimators, evaluate, gumbel, nets, objectives, schedules
from .checkpoint import load_checkpoint, save_checkpoint
from .evaluate import evaluating, log_marginal, mean_elbo
from .models import MODELS, Batch, BetaVAE, FreeBitsVAE, LatentVariableModel, Output, VAE
from .schedules import linear_warmup
from .train import History, fit

__version__ = "0.2.0"
__all__ = ["VAE", "FreeBitsVAE", "BetaVAE", "MODELS", "Batch", "Output", "LatentVariableModel", "fit", "History",
           "linear_warmup", "evaluating", "mean_elbo", "log_marginal", "save_checkpoint", "load_checkpoint",
           "diagnostics", "distributions", "estimators", "evaluate", "gumbel", "nets", "objectives", "schedules"]
