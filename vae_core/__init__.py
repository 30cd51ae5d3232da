"""vae_core: the small, tested PyTorch library behind the VAE teaching book.

Where each chapter's code lives (every module is an attribute of ``vae_core``, loaded on first use):

=======  ==========================================  ==========================================================
Part     chapter                                     modules
=======  ==========================================  ==========================================================
—        0  a VAE in ten minutes                     ``models.vae``, ``train`` (``fit``), ``widgets``
I        1  latent variable models                   ``exact`` (exact models, grid evidence, EM)
I        2  the ELBO                                 ``exact`` (per-datapoint and amortized VI), ``widgets``
I        3  the Gaussian KL                          ``distributions``, ``exact`` (KL fits)
II       4  score function vs reparameterization     ``estimators``
II       5  Gumbel-softmax                           ``gumbel``
III      6  AEVB, the VAE                            ``nets`` (decoders), ``priors``, ``objectives``,
                                                     ``models.vae``, ``train``, ``fused`` (its fast step),
                                                     ``check`` (self-checks)
III      7  reproducing the paper                    ``paper`` (Fig. 2, gradient moments), ``models.wake_sleep``
III      8  evaluating and diagnosing                ``evaluate``, ``diagnostics``, ``models.free_bits``
IV       9  β-VAE                                    ``models.beta_vae``, ``linear_theory`` (exact β-VAE)
IV       10 conditional and semi-supervised VAEs     ``models.cvae``, ``models.m2``, ``semisupervised`` (exact)
IV       11 IWAE                                     ``models.iwae``, ``objectives.iwae_bound``, ``linear_theory``
IV       12 categorical VAE                          ``models.categorical``
IV       13 VaDE                                     ``models.vade`` (``priors.GaussianMixture``),
                                                     ``data.toys`` (pinwheel)
IV       14 implicit priors, FactorVAE               ``models.implicit_prior``, ``models.factor_vae``,
                                                     ``prior_theory`` (exact prior swap, Gaussian TC),
                                                     ``data.sources``, ``evaluate.mutual_information_gap``
IV       15 Ladder VAE                               ``models.ladder``, ``linear_theory`` (exact hierarchy)
=======  ==========================================  ==========================================================

Everywhere: ``data`` (data sets, minibatches), ``checkpoint``, ``schedules`` (warm-up, annealing),
``plots`` (figures), ``notebook`` (quick mode and the chapters' data), and the command line
``python -m vae_core --model NAME``.
"""
from __future__ import annotations

import importlib
from importlib import metadata

from .checkpoint import load_checkpoint, save_checkpoint
from .evaluate import evaluating, log_marginal, mean_elbo
from .models import (CVAE, IWAE, M2, MODELS, Batch, CapacityVAE, CategoricalVAE, FactorVAE, FreeBitsVAE,
                     ImplicitPriorVAE, LadderVAE, LatentVariableModel, Output, RateConstrainedVAE,
                     ScoreFunctionCategoricalVAE, VaDE, VAE, WakeSleepVAE)
from .schedules import linear_warmup
from .train import History, fit

try:
    __version__ = metadata.version("vae_core")
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

#: the submodules, imported on first use as attributes (``vae_core.exact``, ``vae_core.widgets``, ...).
SUBMODULES = ("check", "checkpoint", "data", "diagnostics", "distributions", "estimators", "evaluate", "exact",
              "fused", "gumbel", "linear_theory", "models", "nets", "notebook", "objectives", "paper", "plots",
              "prior_theory", "schedules", "semisupervised", "train", "widgets")

__all__ = ["MODELS", "VAE", "FreeBitsVAE", "WakeSleepVAE", "CapacityVAE", "RateConstrainedVAE", "CVAE", "M2",
           "IWAE", "CategoricalVAE", "ScoreFunctionCategoricalVAE", "VaDE",
           "ImplicitPriorVAE", "FactorVAE", "LadderVAE", "Batch", "Output", "LatentVariableModel", "fit", "History",
           "linear_warmup", "evaluating", "mean_elbo", "log_marginal", "save_checkpoint", "load_checkpoint",
           *SUBMODULES]


def __getattr__(name: str):
    if name in SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'vae_core' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(SUBMODULES))
