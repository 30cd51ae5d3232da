"""Model classes. Each stores its constructor arguments in ``self.config`` (used by checkpoints)."""
from .vae import VAE

MODELS = {"VAE": VAE}

__all__ = ["VAE", "MODELS"]
