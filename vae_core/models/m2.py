r"""The semi-supervised model M2 (Kingma et al., 2014), chapter 10: the label as a latent variable.

When the label is not observed it becomes a latent variable: :math:`p(y) = 1/C`,
:math:`p(z) = \mathcal N(0, I)`, :math:`p(x|y,z)` the CVAE's decoder, and a classifier :math:`q(y|x)`
joins the encoder :math:`q(z|x,y)`. A labelled pair has the bound

.. math:: \mathcal L(x, y) = \mathbb E_{q(z|x,y)}[\log p(x|y,z)] + \log p(y) - \mathrm{KL}(q(z|x,y)\,\|\,p(z))
          \le \log p(x, y),

an unlabelled image (label ``-1``) sums over every class,

.. math:: \mathcal U(x) = \sum_y q(y|x)\,\mathcal L(x, y) + \mathcal H(q(y|x)) \le \log p(x),

and, because :math:`\mathcal U` trains the classifier only through how well each class explains the
image, labelled pairs also pay :math:`\alpha \cdot (-\log q(y|x))` (the paper's :math:`J^\alpha`).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .._validate import check_hidden, check_nonnegative_float, check_positive_int
from ..distributions import gaussian_log_prob, kl_normal_standard
from ..nets import mlp, soft_clamp
from .base import Batch, Output
from .cvae import CVAE, UNLABELLED, check_labels, one_hot

__all__ = ["M2", "UNLABELLED"]


class M2(CVAE):
    r"""The semi-supervised model M2 of Kingma et al. (2014): a CVAE whose label may be missing.

    A batch's ``y`` holds a class index for a labelled image and ``-1`` (:data:`UNLABELLED`) for an
    unlabelled one; ``y=None`` means the whole batch is unlabelled. Unlabelled images enumerate all
    ``n_classes`` values of ``y`` (exactly, no sampling of y), with the same noise for every class
    (common random numbers).

    Args:
        input_dim, latent_dim, n_classes, hidden_dims, likelihood, activation: as :class:`CVAE`.
        classifier_hidden: hidden sizes of the classifier :math:`q(y|x)`.
        alpha: the weight of :math:`-\log q(y|x)` for each labelled image in the batch mean (the
            paper's :math:`\alpha` divided by the number of labelled images; ``0`` trains the
            classifier only through :math:`\mathcal U`).

    The one setting :func:`vae_core.fit` may set is ``n_samples`` (M2 trains the paper's bound, with no
    KL weight). ``loss = mean over the batch of [-bound + alpha * (-log q(y|x)) for labelled images]``;
    ``elbo`` is :math:`\mathcal L(x, y)` for labelled and :math:`\mathcal U(x)` for unlabelled images.
    Terms: ``recon``, ``kl`` (the KL of :math:`q(y, z|x)` from :math:`p(y)p(z)`, where a labelled image
    has :math:`q(y|x)` = a point mass, whose KL from the uniform :math:`p(y)` is :math:`\log C`),
    ``kl_z``, ``kl_y``, ``classifier_nll`` (0 for unlabelled images) and ``labelled`` (1 or 0).
    """

    settings = {"n_samples": 1}
    semi_supervised = True

    def __init__(self, input_dim: int, latent_dim: int, n_classes: int = 10, hidden_dims: Sequence[int] | int = (400,),
                 likelihood: str = "bernoulli", activation: str = "tanh",
                 classifier_hidden: Sequence[int] | int = (400,), alpha: float = 50.0):
        super().__init__(input_dim, latent_dim, n_classes, hidden_dims, likelihood, activation)
        self.alpha = check_nonnegative_float("alpha", alpha, "the classification weight")
        self.classifier = mlp(input_dim, check_hidden(classifier_hidden), n_classes, activation)   # logits of q(y|x)

    def labelled(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of a batch, ``y = -1`` for an unlabelled image (all of them when ``batch.y`` is None)."""
        batch = self.as_batch(batch)
        y = torch.full((len(batch.x),), UNLABELLED, device=batch.x.device) if batch.y is None else batch.y
        return batch.x, check_labels(y, len(batch.x), self.n_classes, allow_unlabelled=True, model="M2")

    # -- the classifier -------------------------------------------------------------------------
    def class_posterior(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`q(y|x)` as probabilities ``(B, C)``; every row sums to one."""
        return torch.softmax(self.classifier(x), -1)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """The most probable class under :math:`q(y|x)`, shape ``(B,)``."""
        return torch.cat([self.classifier(xb).argmax(-1) for xb in x.split(batch_size)])

    # -- the (image, class) pairs a bound needs -------------------------------------------------
    def pairs(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images, classes)``, each ``(P,)``: a labelled image with its label, an unlabelled one with every class."""
        return ((torch.arange(self.n_classes, device=y.device) == y[:, None]) | (y[:, None] < 0)).nonzero(as_tuple=True)

    def encode_pairs(self, x: torch.Tensor, images: torch.Tensor, classes: torch.Tensor):
        """``(mu, logvar)`` of :math:`q(z|x, y)` for each pair, each ``(P, d)``.

        The first layer acts on ``[x, onehot(y)]`` as ``W_x x + b + W_y[:, y]``: ``W_x x`` is computed
        once per image and shared by its classes.
        """
        first = self.encoder.net[0]
        w_x, w_y = first.weight[:, : self.input_dim], first.weight[:, self.input_dim:]
        mu, logvar = self.encoder.net[1:]((x @ w_x.T + first.bias)[images] + w_y.T[classes]).chunk(2, dim=-1)
        return mu, soft_clamp(logvar)

    def pair_terms(self, x: torch.Tensor, images, classes, n_samples: int, generator):
        r"""``log p(x|z, y)`` ``(L, P)`` at ``z = mu + sigma * eps`` ``(L, P, d)``, and ``(mu, logvar)`` of
        :math:`q(z|x, y)`, for every pair; the noise ``eps`` is drawn per image and shared by its
        classes (common random numbers, so that the classes are compared on the same draws)."""
        eps = torch.randn((check_positive_int("n_samples", n_samples), len(x), self.latent_dim),
                          generator=generator, device=x.device, dtype=x.dtype)
        mu, logvar = self.encode_pairs(x, images, classes)
        z = mu + torch.exp(0.5 * logvar) * eps[:, images]
        return self.decoder.log_prob(x[images], self.with_label(z, classes)), z, mu, logvar

    # -- the objective --------------------------------------------------------------------------
    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> Output:
        r"""Labelled images: :math:`\mathcal L(x, y)`; unlabelled: :math:`\mathcal U(x)`; plus
        ``alpha * (-log q(y|x))`` on labelled images in the loss."""
        x, y = self.labelled(batch)
        known, C = y >= 0, self.n_classes
        log_q = torch.log_softmax(self.classifier(x), -1)                               # log q(y|x), (B, C)
        q = torch.where(known[:, None], one_hot(y.clamp(min=0), C, x), log_q.exp())     # a point mass at a known y
        images, classes = self.pairs(y)
        log_px, _, mu, logvar = self.pair_terms(x, images, classes, self.n_samples, generator)
        per_class = x.new_zeros(len(x), C)                                              # (B, C), 0 where q(y|x) = 0
        recon = (q * per_class.index_put((images, classes), log_px.mean(0))).sum(-1)    # sum_y q E_q log p(x|y,z)
        kl_z = (q * per_class.index_put((images, classes), kl_normal_standard(mu, logvar))).sum(-1)
        kl_y = (q * torch.where(known[:, None], 0.0, log_q)).sum(-1) + math.log(C)      # KL(q(y|x) || 1/C) = log C - H
        nll = torch.where(known, -log_q.gather(1, y.clamp(min=0)[:, None])[:, 0], 0.0)  # -log q(y|x), labelled only
        elbo = recon - kl_z - kl_y
        return Output(loss=-elbo.mean() + self.alpha * nll.mean(), elbo=elbo,
                      terms={"recon": recon, "kl": kl_z + kl_y, "kl_z": kl_z, "kl_y": kl_y,
                             "classifier_nll": nll, "labelled": known.to(x.dtype)})

    def log_weights(self, batch: Batch, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Log importance weights, shape ``(K, B)``.

        Labelled: :math:`\log p(x|z_k,y) + \log p(y) + \log p(z_k) - \log q(z_k|x,y)` (for
        :math:`\log p(x, y)`). Unlabelled: y summed out exactly, :math:`\log \sum_y \exp(\ldots)` with
        :math:`z_{k,y} \sim q(z|x,y)` (for :math:`\log p(x)`; each class's weight is unbiased for
        :math:`p(x, y)`, so their sum is unbiased for :math:`p(x)`).
        """
        x, y = self.labelled(batch)
        images, classes = self.pairs(y)
        log_px, z, mu, logvar = self.pair_terms(x, images, classes, n_samples, generator)
        log_w = log_px - math.log(self.n_classes) + self.prior.log_prob(z) - gaussian_log_prob(z, mu, logvar)
        per_class = torch.full((n_samples, len(x), self.n_classes), -math.inf, dtype=x.dtype, device=x.device)
        per_class[:, images, classes] = log_w                                       # -inf where q(y|x) = 0
        return torch.logsumexp(per_class, -1)

    # -- generation -----------------------------------------------------------------------------
    def sample_labels(self, n: int, y, generator: torch.Generator | None, device) -> torch.Tensor:
        """``y=None``: labels drawn from the uniform prior p(y); otherwise as :class:`CVAE`."""
        if y is None:
            return torch.randint(0, self.n_classes, (n,), generator=generator, device=device)
        return super().sample_labels(n, y, generator, device)
