r"""Explorers that work without a Python kernel, one module per family.

Each explorer is an anywidget whose front end (``static/*.js``) does all its arithmetic in the
browser, so the same widget works in Jupyter, in Colab and on the book's static website.

* :mod:`~vae_core.widgets.latent` — :class:`LatentExplorer`: latent sliders and the decoder's image;
  any model reaches it through :meth:`LatentExplorer.from_model`.
* :mod:`~vae_core.widgets.inference` — :class:`ELBOExplorer`, :class:`KLExplorer` (Part I).
* :mod:`~vae_core.widgets.gradients` — :class:`EstimatorExplorer` (chapter 4).
* :mod:`~vae_core.widgets.gumbel` — :class:`GumbelSoftmaxExplorer` (chapter 5).
* :mod:`~vae_core.widgets.conditional` — :class:`ConditionalExplorer`: class buttons and style
  sliders for a conditional decoder (chapter 10).
* :mod:`~vae_core.widgets.export` — a decoder's weights for the browser, and the same forward pass
  in numpy; :mod:`~vae_core.widgets.frontend` — loading the JavaScript, the browser's seeded RNG.
"""
from .conditional import ConditionalExplorer
from .export import SPEC_FORMAT, decode_image, export_mlp, mlp_forward_numpy
from .frontend import esm_source, mulberry32_uniforms, static_text
from .gradients import EstimatorExplorer
from .gumbel import GumbelSoftmaxExplorer
from .inference import ELBOExplorer, KLExplorer
from .latent import LatentExplorer

__all__ = ["LatentExplorer", "ConditionalExplorer", "ELBOExplorer", "KLExplorer", "EstimatorExplorer", "GumbelSoftmaxExplorer",
           "export_mlp", "mlp_forward_numpy", "decode_image", "SPEC_FORMAT", "esm_source", "static_text",
           "mulberry32_uniforms"]
