r"""Explorers that work without a Python kernel.

Each explorer is an anywidget whose front end (``static/*.js``) does all its arithmetic in the
browser, so the same widget works in Jupyter, in Colab and on the book's static website.

* :mod:`~vae_core.widgets.latent` -- :class:`LatentExplorer`, the decoder explorer: sliders, class
  buttons, categorical codes or clusters, and the decoder's image; any model reaches it through
  :meth:`LatentExplorer.from_model` (chapters 0, 6, 8, 10, 12, 13, 15).
* :mod:`~vae_core.widgets.part1` -- :class:`ELBOExplorer`, :class:`KLExplorer` (chapters 2-3).
* :mod:`~vae_core.widgets.gradients` -- :class:`EstimatorExplorer` (chapter 4);
  :mod:`~vae_core.widgets.gumbel` -- :class:`GumbelSoftmaxExplorer` (chapter 5).
* :mod:`~vae_core.widgets.precomputed` -- pictures and numbers computed in advance:
  :class:`BetaExplorer` (chapter 9), :class:`BoundExplorer` (chapter 11), :class:`TraversalExplorer`
  (chapter 14).
* :mod:`~vae_core.widgets.export` -- :func:`export_mlp`, a decoder's weights for the browser, and
  the same forward pass in numpy; :mod:`~vae_core.widgets.frontend` -- loading the JavaScript,
  packing pictures, the browser's seeded RNG; :mod:`~vae_core.widgets.base` -- the shared checks.
"""
from .export import export_mlp
from .gradients import EstimatorExplorer
from .gumbel import GumbelSoftmaxExplorer
from .latent import LatentExplorer
from .part1 import ELBOExplorer, KLExplorer
from .precomputed import BetaExplorer, BoundExplorer, TraversalExplorer

__all__ = ["LatentExplorer", "ELBOExplorer", "KLExplorer", "EstimatorExplorer", "GumbelSoftmaxExplorer",
           "BetaExplorer", "BoundExplorer", "TraversalExplorer", "export_mlp"]
