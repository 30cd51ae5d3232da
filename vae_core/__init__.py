"""vae_core: the small, tested PyTorch library behind the VAE teaching book.

One module per concept: ``distributions`` (log-densities, KL divergences), ``estimators``
(reparameterization and friends), ``nets`` (the paper's MLPs), ``models`` (the VAE and its
variants), ``objectives`` (ELBO and tighter bounds), ``evaluate`` (log-likelihood, latent
diagnostics), ``train`` (``fit``), ``data`` (data sets), ``checkpoint``, ``book`` (chapter helpers).
"""
from . import diagnostics, distributions, estimators, evaluate, nets, objectives  # diagnostics registers FreeBitsVAE
from .checkpoint import load_checkpoint, save_checkpoint
from .models import VAE
from .train import fit

__version__ = "0.1.0"
__all__ = ["VAE", "fit", "save_checkpoint", "load_checkpoint", "distributions", "estimators",
           "evaluate", "nets", "objectives"]
