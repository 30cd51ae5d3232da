"""The models, each a small file on the common interface of :mod:`vae_core.models.base`.

``MODELS`` lists them explicitly (checkpoints rebuild a model from its name here, the command line
``python -m vae_core.train --model NAME`` trains any of them, and ``tests/test_model_contract.py``
checks every one). Each can be built as ``MODELS[name](input_dim=D, latent_dim=d)``.
"""
from .base import Batch, LatentVariableModel, Output
from .cvae import CVAE, M2
from .free_bits import FreeBitsVAE
from .vae import VAE

MODELS = {
    "VAE": VAE,
    "FreeBitsVAE": FreeBitsVAE,
    "CVAE": CVAE,
    "M2": M2,
}

__all__ = ["Batch", "Output", "LatentVariableModel", "MODELS", "VAE", "FreeBitsVAE", "CVAE", "M2"]
