r"""Explorers that work without a Python kernel, one module per family.

Each explorer is an anywidget whose front end (``static/*.js``) does all its arithmetic in the
browser, so the same widget works in Jupyter, in Colab and on the book's static website.

* :mod:`~vae_core.widgets.latent` — :class:`LatentExplorer`: latent sliders and the decoder's image;
  any model reaches it through :meth:`LatentExplorer.from_model`.
* :mod:`~vae_core.widgets.inference` — :class:`ELBOExplorer`, :class:`KLExplorer` (Part I).
* :mod:`~vae_core.widgets.gradients` — :class:`EstimatorExplorer` (chapter 4).
* :mod:`~vae_core.widgets.gumbel` — :class:`GumbelSoftmaxExplorer` (chapter 5).
* Part IV: one module per chapter's explorer — :mod:`~vae_core.widgets.beta` (β along the
  rate–distortion curve), :mod:`~vae_core.widgets.conditional` (class buttons and style sliders),
  :mod:`~vae_core.widgets.iwae` (the bound against k), :mod:`~vae_core.widgets.categorical` (a class per
  categorical variable), :mod:`~vae_core.widgets.clusters` (a cluster and a slide within it),
  :mod:`~vae_core.widgets.traversal` (traversals of several models side by side).
* :mod:`~vae_core.widgets.export` — a decoder's weights for the browser, and the same forward pass
  in numpy; :mod:`~vae_core.widgets.frontend` — loading the JavaScript, the browser's seeded RNG.
"""
from .export import SPEC_FORMAT, decode_image, export_mlp, mlp_forward_numpy
from .frontend import esm_source, mulberry32_uniforms, static_text
from .beta import BetaExplorer
from .categorical import CategoricalExplorer
from .clusters import ClusterExplorer
from .conditional import ConditionalExplorer
from .gradients import EstimatorExplorer
from .gumbel import GumbelSoftmaxExplorer
from .inference import ELBOExplorer, KLExplorer
from .iwae import BoundExplorer
from .latent import LatentExplorer
from .traversal import TraversalExplorer

__all__ = ["BetaExplorer", "CategoricalExplorer", "ClusterExplorer", "ConditionalExplorer", "EstimatorExplorer", "GumbelSoftmaxExplorer", "ELBOExplorer", "KLExplorer", "BoundExplorer", "LatentExplorer", "TraversalExplorer",
           "export_mlp", "mlp_forward_numpy", "decode_image", "SPEC_FORMAT", "esm_source", "static_text",
           "mulberry32_uniforms"]
