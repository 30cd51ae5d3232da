"""The models, each a small file on the common interface of :mod:`vae_core.models.base`.

``MODELS`` lists them explicitly (checkpoints rebuild a model from its name here, the command line
``python -m vae_core --model NAME`` trains any of them, and ``tests/test_model_contract.py``
checks every one). Each can be built as ``MODELS[name](input_dim=D, latent_dim=d)``.
"""
from .base import Batch, LatentVariableModel, Output
from .beta_vae import CapacityVAE, RateConstrainedVAE
from .categorical import CategoricalVAE, ScoreFunctionCategoricalVAE
from .cvae import CVAE
from .factor_vae import FactorVAE
from .free_bits import FreeBitsVAE
from .implicit_prior import ImplicitPriorVAE
from .iwae import IWAE
from .ladder import LadderVAE
from .m2 import M2
from .vade import VaDE
from .vae import VAE
from .wake_sleep import WakeSleepVAE

MODELS = {
    "VAE": VAE,
    "FreeBitsVAE": FreeBitsVAE,
    "WakeSleepVAE": WakeSleepVAE,
    "CapacityVAE": CapacityVAE,
    "RateConstrainedVAE": RateConstrainedVAE,
    "CVAE": CVAE,
    "M2": M2,
    "IWAE": IWAE,
    "CategoricalVAE": CategoricalVAE,
    "ScoreFunctionCategoricalVAE": ScoreFunctionCategoricalVAE,
    "VaDE": VaDE,
    "ImplicitPriorVAE": ImplicitPriorVAE,
    "FactorVAE": FactorVAE,
    "LadderVAE": LadderVAE,
}

__all__ = ["Batch", "Output", "LatentVariableModel", "MODELS", "VAE", "FreeBitsVAE", "WakeSleepVAE", "CapacityVAE", "RateConstrainedVAE", "CVAE", "M2", "IWAE", "CategoricalVAE", "ScoreFunctionCategoricalVAE", "VaDE", "ImplicitPriorVAE", "FactorVAE", "LadderVAE"]
