r"""The conditional VAE (Sohn et al., 2015) and the semi-supervised M2 model (Kingma et al., 2014).

**CVAE.** A label :math:`y` (one of ``n_classes``) is given with every image. Encoder
:math:`q_\phi(z|x, y)` and decoder :math:`p_\theta(x|z, y)` are the VAE's MLPs with the one-hot label
appended to their input; the prior is :math:`p(z|y) = \mathcal N(0, I)` for every class. The bound is

.. math:: \log p(x|y) \ge \mathbb E_{q(z|x,y)}[\log p(x|z,y)] - \mathrm{KL}(q(z|x,y)\,\|\,p(z|y)).

**M2.** The label becomes a latent variable when it is not observed: :math:`p(y) = 1/C`,
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

import copy
import math
from typing import Sequence

import torch
from torch import nn

from .._validate import check_hidden, check_nonnegative_float, check_positive_float, check_positive_int, check_tensor
from ..distributions import bernoulli_log_prob, gaussian_log_prob, kl_normal_standard, standard_normal_log_prob
from ..nets import BernoulliMLP, GaussianMLP, mlp, soft_clamp
from .base import Batch, LatentVariableModel, Output

__all__ = ["CVAE", "M2", "UNLABELLED", "one_hot", "check_labels"]

#: the label that marks an unlabelled example in an :class:`M2` batch.
UNLABELLED = -1


def check_labels(y, n: int, n_classes: int, allow_unlabelled: bool = False, model: str = "CVAE") -> torch.Tensor:
    """``y`` must be an int tensor ``(n,)`` with values in ``0..n_classes-1`` (or ``-1`` when allowed)."""
    if y is None:
        raise ValueError(f"{model} needs labels: pass Batch(x, y) with y an int tensor of shape ({n},) and values "
                         f"in 0..{n_classes - 1}, or train on a data set that has labels (fit(model, (x, y))).")
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"labels y must be a torch.Tensor of ints, got {type(y).__name__}; "
                        f"convert with torch.as_tensor(y, dtype=torch.long).")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"labels y must be integers (class indices), got dtype {y.dtype}; use y.long() "
                        f"(or y.argmax(-1) for one-hot labels).")
    if y.shape != (n,):
        raise ValueError(f"labels y must have shape ({n},), one class index per image, got {tuple(y.shape)}.")
    low = UNLABELLED if allow_unlabelled else 0
    if n and (int(y.min()) < low or int(y.max()) >= n_classes):
        allowed = f"0..{n_classes - 1}" + (f", or {UNLABELLED} for an unlabelled image" if allow_unlabelled else "")
        raise ValueError(f"labels y must be in {allowed} (n_classes={n_classes}), got values from {int(y.min())} "
                         f"to {int(y.max())}; build the model with n_classes large enough, or map the labels "
                         f"to 0..n_classes-1.")
    return y.long()


def one_hot(y: torch.Tensor, n_classes: int, like: torch.Tensor) -> torch.Tensor:
    """One-hot rows ``(B, n_classes)`` of the labels ``y``, with ``like``'s dtype and device."""
    return nn.functional.one_hot(y, n_classes).to(dtype=like.dtype, device=like.device)


class CVAE(LatentVariableModel):
    """A conditional VAE: encoder ``[x, onehot(y)] -> (mu, logvar)``, decoder ``[z, onehot(y)] -> logits``.

    Args:
        input_dim: number of pixels D.
        latent_dim: size d of the "style" code z.
        n_classes: number of labels C; batches must carry ``y`` with values in ``0..C-1``.
        hidden_dims, likelihood, activation: as :class:`~vae_core.models.vae.VAE`.

    Settings that :func:`vae_core.fit` may set: ``beta`` (KL weight, schedulable) and ``n_samples``.
    With ``n_classes=1`` the label is a constant input and the model is a VAE (a test checks it).
    """

    schedulable = ("beta",)
    uses_labels = True

    def __init__(self, input_dim: int, latent_dim: int, n_classes: int = 10, hidden_dims: Sequence[int] | int = (400,),
                 likelihood: str = "bernoulli", activation: str = "tanh"):
        super().__init__()
        check_positive_int("input_dim", input_dim)
        check_positive_int("latent_dim", latent_dim)
        check_positive_int("n_classes", n_classes)
        hidden = check_hidden(hidden_dims)
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be one of ('bernoulli', 'gaussian'), got {likelihood!r}.")
        self.config = dict(input_dim=input_dim, latent_dim=latent_dim, n_classes=n_classes, hidden_dims=list(hidden),
                           likelihood=likelihood, activation=activation)
        self.input_dim, self.latent_dim, self.n_classes, self.likelihood = input_dim, latent_dim, n_classes, likelihood
        self.encoder = GaussianMLP(input_dim + n_classes, latent_dim, hidden, activation)
        out = BernoulliMLP if likelihood == "bernoulli" else GaussianMLP
        self.decoder = out(latent_dim + n_classes, input_dim, hidden[::-1], activation)
        self.beta, self.n_samples = 1.0, 1

    # -- labels ---------------------------------------------------------------------------------
    def labels(self, y, n: int) -> torch.Tensor:
        """Check ``y`` (see :func:`check_labels`) and return it as a long tensor."""
        return check_labels(y, n, self.n_classes, model=type(self).__name__)

    def _batch(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.as_batch(batch)
        return batch.x, self.labels(batch.y, len(batch.x))

    # -- the three maps -------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``q(z|x, y)``: ``(x (B, D), y (B,)) -> (mu, logvar)``, each ``(B, d)``."""
        x = self.check_x(x)
        y = self.labels(y, len(x))
        return self.encoder(torch.cat([x, one_hot(y, self.n_classes, x)], -1))

    def decode(self, z: torch.Tensor, y: torch.Tensor):
        """Parameters of ``p(x|z, y)``; ``z`` is ``(..., B, d)`` (leading sample dimensions allowed)."""
        check_tensor("z", z)
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"z must have last dimension latent_dim={self.latent_dim}, got shape {tuple(z.shape)}.")
        y = self.labels(y, z.shape[-2] if z.dim() >= 2 else 1)
        onehot = one_hot(y, self.n_classes, z).expand(*z.shape[:-1], self.n_classes)
        return self.decoder(torch.cat([z, onehot], -1))

    def decode_mean(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mean of ``p(x|z, y)``: pixel probabilities (Bernoulli) or the Gaussian mean."""
        out = self.decode(z, y)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out[0]

    def _log_likelihood(self, x: torch.Tensor, out) -> torch.Tensor:
        if self.likelihood == "bernoulli":
            return bernoulli_log_prob(x, out)
        mean, logvar = out
        return gaussian_log_prob(x.expand_as(mean), mean, logvar)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p_\theta(x|z, y)` per example; ``z`` may carry leading sample dimensions."""
        return self._log_likelihood(x, self.decode(z, y))

    def _noise(self, n_samples: int, mu: torch.Tensor, generator) -> torch.Tensor:
        """Standard-normal noise ``(L, B, d)`` for the reparameterisation z = mu + std * eps."""
        return torch.randn((n_samples, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)

    # -- the objective --------------------------------------------------------------------------
    def elbo(self, x: torch.Tensor, y: torch.Tensor, n_samples: int = 1, beta: float = 1.0,
             generator: torch.Generator | None = None):
        r"""Per-example ``(objective, recon, kl)`` of the conditional bound on :math:`\log p(x|y)`:
        ``recon`` = :math:`\mathbb E_q\log p(x|z,y)` from ``n_samples`` reparameterised samples,
        ``kl`` = :math:`\mathrm{KL}(q(z|x,y)\|\mathcal N(0,I))` in closed form, objective ``recon - beta * kl``."""
        check_positive_int("n_samples", n_samples)
        if beta != 0:
            check_positive_float("beta", beta)
        mu, logvar = self.encode(x, y)
        z = mu + torch.exp(0.5 * logvar) * self._noise(n_samples, mu, generator)
        recon = self.log_likelihood(x, z, y).mean(0)
        kl = kl_normal_standard(mu, logvar)
        return recon - beta * kl, recon, kl

    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> Output:
        """``loss = -mean(recon - beta * kl)``; ``elbo = recon - kl``, the bound on log p(x|y)."""
        x, y = self._batch(batch)
        objective, recon, kl = self.elbo(x, y, self.n_samples, self.beta, generator)
        return Output(loss=-objective.mean(), elbo=recon - kl, terms={"recon": recon, "kl": kl})

    def log_weights(self, batch: Batch, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""``log p(x|z_k, y) + log p(z_k) - log q(z_k|x, y)`` at ``z_k ~ q(z|x, y)``, shape ``(K, B)``:
        importance weights for :math:`\log p(x|y)`."""
        check_positive_int("n_samples", n_samples)
        x, y = self._batch(batch)
        mu, logvar = self.encode(x, y)
        z = mu + torch.exp(0.5 * logvar) * self._noise(n_samples, mu, generator)
        return self.log_likelihood(x, z, y) + standard_normal_log_prob(z) - gaussian_log_prob(z, mu, logvar)

    # -- generation -----------------------------------------------------------------------------
    def _sample_labels(self, n: int, y, generator, device) -> torch.Tensor:
        """``y=None``: the classes in turn (0, 1, ..., C-1, 0, ...); an int: that class ``n`` times."""
        if y is None:
            return torch.arange(n, device=device) % self.n_classes
        if isinstance(y, bool):
            raise TypeError("y must be a class index (int) or an int tensor of n labels, got a bool.")
        if isinstance(y, int):
            y = torch.full((n,), y, dtype=torch.long, device=device)
        return check_labels(y, n, self.n_classes, model=type(self).__name__).to(device)

    @torch.no_grad()
    def sample(self, n: int, y=None, generator: torch.Generator | None = None, mean: bool = True,
               z: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` images of the classes ``y`` (an int, an int tensor ``(n,)``, or ``None``: classes in turn).

        ``z ~ N(0, I)`` unless a style code ``z`` ``(n, d)`` is given; the mean image (default) or a
        Bernoulli draw from it.
        """
        check_positive_int("n", n)
        if isinstance(y, torch.Generator):
            raise TypeError("sample(n, y=None, generator=None): pass the generator by name, generator=...")
        p = next(self.parameters())
        labels = self._sample_labels(n, y, generator, p.device)
        if z is None:
            z = torch.randn(n, self.latent_dim, generator=generator, device=p.device, dtype=p.dtype)
        elif z.shape != (n, self.latent_dim):
            raise ValueError(f"z must have shape ({n}, {self.latent_dim}), got {tuple(z.shape)}.")
        m = self.decode_mean(z, labels)
        if mean or self.likelihood != "bernoulli":
            return m
        return torch.bernoulli(m, generator=generator)

    def mean_decoder(self) -> tuple[nn.Sequential, str]:
        """A standalone copy of the decoder MLP and its output map ``"sigmoid"`` (or ``"identity"``).

        Its input is ``[z, onehot(y)]`` (length ``latent_dim + n_classes``): the browser appends the
        one-hot label to the style code (see :class:`vae_core.widgets.ConditionalExplorer`).
        """
        net = copy.deepcopy(self.decoder.net).cpu().float()
        if self.likelihood == "bernoulli":
            return net, "sigmoid"
        last = net[-1]
        mean_layer = nn.Linear(last.in_features, self.input_dim)
        with torch.no_grad():
            mean_layer.weight.copy_(last.weight[: self.input_dim])
            mean_layer.bias.copy_(last.bias[: self.input_dim])
        net[-1] = mean_layer
        return net, "identity"


class M2(CVAE):
    r"""The semi-supervised model M2 of Kingma et al. (2014): a CVAE whose label may be missing.

    A batch's ``y`` holds a class index for a labelled image and ``-1`` (:data:`UNLABELLED`) for an
    unlabelled one; ``y=None`` means the whole batch is unlabelled. Unlabelled images enumerate all
    ``n_classes`` values of ``y`` (exactly, no sampling of y).

    Args:
        input_dim, latent_dim, n_classes, hidden_dims, likelihood, activation: as :class:`CVAE`.
        classifier_hidden: hidden sizes of the classifier :math:`q(y|x)`.
        alpha: the weight of :math:`-\log q(y|x)` for each labelled image in the batch mean (the
            paper's :math:`\alpha` divided by the number of labelled images; ``0`` trains the
            classifier only through :math:`\mathcal U`).

    ``loss = mean over the batch of [-bound + alpha * (-log q(y|x)) for labelled images]``; ``elbo``
    is :math:`\mathcal L(x, y)` for labelled and :math:`\mathcal U(x)` for unlabelled images. Terms:
    ``recon``, ``kl`` (the KL of :math:`q(y, z|x)` from :math:`p(y)p(z)`, where a labelled image has
    :math:`q(y|x)` = a point mass, whose KL from the uniform :math:`p(y)` is :math:`\log C`),
    ``kl_z``, ``kl_y``, ``classifier_nll`` (0 for unlabelled images) and ``labelled`` (1 or 0).
    """

    schedulable = ()
    semi_supervised = True

    def __init__(self, input_dim: int, latent_dim: int, n_classes: int = 10, hidden_dims: Sequence[int] | int = (400,),
                 likelihood: str = "bernoulli", activation: str = "tanh",
                 classifier_hidden: Sequence[int] | int = (400,), alpha: float = 50.0):
        super().__init__(input_dim, latent_dim, n_classes, hidden_dims, likelihood, activation)
        cls_hidden = check_hidden(classifier_hidden)
        self.alpha = check_nonnegative_float("alpha", alpha, "the classification weight")
        self.config.update(classifier_hidden=list(cls_hidden), alpha=self.alpha)
        self.classifier = mlp(input_dim, cls_hidden, n_classes, activation)
        del self.beta   # M2 trains the paper's objective, beta = 1

    def labels(self, y, n: int) -> torch.Tensor:
        return check_labels(y, n, self.n_classes, allow_unlabelled=True, model="M2")

    def _batch(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.as_batch(batch)
        y = batch.y
        if y is None:
            y = torch.full((len(batch.x),), UNLABELLED, dtype=torch.long, device=batch.x.device)
        return batch.x, self.labels(y, len(batch.x))

    def _known(self, y, n):
        return check_labels(y, n, self.n_classes, model="M2")

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``q(z|x, y)`` for known labels (``y`` in ``0..C-1``)."""
        x = self.check_x(x)
        return self.encoder(torch.cat([x, one_hot(self._known(y, len(x)), self.n_classes, x)], -1))

    def decode(self, z: torch.Tensor, y: torch.Tensor):
        self._known(y, z.shape[-2] if z.dim() >= 2 else 1)
        return super().decode(z, y)

    # -- the classifier -------------------------------------------------------------------------
    def classifier_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of :math:`q(y|x)`, shape ``(B, C)``."""
        return self.classifier(self.check_x(x))

    def class_posterior(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`q(y|x)` as probabilities ``(B, C)``; every row sums to one."""
        return torch.softmax(self.classifier_logits(x), -1)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """The most probable class under :math:`q(y|x)`, shape ``(B,)``."""
        return torch.cat([self.classifier_logits(xb).argmax(-1) for xb in x.split(batch_size)])

    # -- every class at once --------------------------------------------------------------------
    def _encode_every_class(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` of :math:`q(z|x, y)` for every ``y``, each ``(C, B, d)``.

        The first layer acts on ``[x, onehot(y)]`` as ``W_x x + W_y[:, y] + b``: ``W_x x`` is
        computed once and shared by the C classes.
        """
        first, rest = self.encoder.net[0], self.encoder.net[1:]
        w_x, w_y = first.weight[:, : self.input_dim], first.weight[:, self.input_dim:]
        h = (x @ w_x.T + first.bias).unsqueeze(0) + w_y.T.unsqueeze(1)       # (C, B, hidden)
        mu, logvar = rest(h).chunk(2, dim=-1)
        return mu, soft_clamp(logvar)

    def _bounds_every_class(self, x: torch.Tensor, eps: torch.Tensor):
        r"""``(recon, kl_z)`` of :math:`\mathcal L(x, y)` for every ``y``, each ``(C, B)``; ``eps`` is
        ``(L, B, d)``, the same noise for every class (common random numbers)."""
        C, B = self.n_classes, len(x)
        mu, logvar = self._encode_every_class(x)                             # (C, B, d)
        z = mu.unsqueeze(0) + torch.exp(0.5 * logvar).unsqueeze(0) * eps.unsqueeze(1)   # (L, C, B, d)
        onehot = torch.eye(C, dtype=x.dtype, device=x.device)[:, None, :].expand(C, B, C)
        out = self.decoder(torch.cat([z, onehot.expand(z.shape[0], C, B, C)], -1))
        recon = self._log_likelihood(x, out).mean(0)
        return recon, kl_normal_standard(mu, logvar)

    # -- the objective --------------------------------------------------------------------------
    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> Output:
        r"""Labelled images: :math:`\mathcal L(x, y)`; unlabelled: :math:`\mathcal U(x)`; plus
        ``alpha * (-log q(y|x))`` on labelled images in the loss."""
        x, y = self._batch(batch)
        B, C = len(x), self.n_classes
        known = y >= 0
        unknown = ~known
        log_prior_y = -math.log(C)
        recon, kl_z, kl_y, nll = (torch.zeros(B, dtype=x.dtype, device=x.device) for _ in range(4))
        logits = self.classifier_logits(x)
        log_q = torch.log_softmax(logits, -1)
        eps = torch.randn((self.n_samples, B, self.latent_dim), generator=generator, device=x.device, dtype=x.dtype)
        if known.any():
            xl, yl = x[known], y[known]
            mu, logvar = self.encode(xl, yl)
            z = mu + torch.exp(0.5 * logvar) * eps[:, known]
            recon = recon.index_put((known,), self.log_likelihood(xl, z, yl).mean(0))
            kl_z = kl_z.index_put((known,), kl_normal_standard(mu, logvar))
            kl_y = kl_y.index_put((known,), torch.full_like(mu[:, 0], -log_prior_y))
            nll = nll.index_put((known,), -log_q[known].gather(1, yl[:, None]).squeeze(1))
        if unknown.any():
            xu = x[unknown]
            r_c, kl_c = self._bounds_every_class(xu, eps[:, unknown])          # (C, Bu)
            q = log_q[unknown].exp().T                                         # (C, Bu)
            recon = recon.index_put((unknown,), (q * r_c).sum(0))
            kl_z = kl_z.index_put((unknown,), (q * kl_c).sum(0))
            # KL(q(y|x) || uniform) = sum_y q log q + log C = log C - H(q)
            kl_y = kl_y.index_put((unknown,), (q * log_q[unknown].T).sum(0) - log_prior_y)
        kl = kl_z + kl_y
        elbo = recon - kl
        loss = -elbo.mean() + self.alpha * nll.mean()
        return Output(loss=loss, elbo=elbo, terms={"recon": recon, "kl": kl, "kl_z": kl_z, "kl_y": kl_y,
                                                   "classifier_nll": nll, "labelled": known.to(x.dtype)})

    def log_weights(self, batch: Batch, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Log importance weights, shape ``(K, B)``.

        Labelled: :math:`\log p(x|z_k,y) + \log p(y) + \log p(z_k) - \log q(z_k|x,y)` (for
        :math:`\log p(x, y)`). Unlabelled: y summed out exactly, :math:`\log \sum_y \exp(\ldots)` with
        :math:`z_{k,y} \sim q(z|x,y)` (for :math:`\log p(x)`; each class's weight is unbiased for
        :math:`p(x, y)`, so their sum is unbiased for :math:`p(x)`).
        """
        check_positive_int("n_samples", n_samples)
        x, y = self._batch(batch)
        eps = torch.randn((n_samples, len(x), self.latent_dim), generator=generator, device=x.device, dtype=x.dtype)
        log_w = torch.empty(n_samples, len(x), dtype=x.dtype, device=x.device)
        log_prior_y = -math.log(self.n_classes)
        known = y >= 0
        if known.any():
            log_w[:, known] = self._log_weights_given(x[known], y[known], eps[:, known]) + log_prior_y
        if (~known).any():
            xu = x[~known]
            per_class = [self._log_weights_given(xu, torch.full((len(xu),), c, dtype=torch.long, device=x.device),
                                                 eps[:, ~known]) for c in range(self.n_classes)]
            log_w[:, ~known] = torch.logsumexp(torch.stack(per_class), 0) + log_prior_y
        return log_w

    def _log_weights_given(self, x, y, eps):
        mu, logvar = self.encode(x, y)
        z = mu + torch.exp(0.5 * logvar) * eps
        return self.log_likelihood(x, z, y) + standard_normal_log_prob(z) - gaussian_log_prob(z, mu, logvar)

    # -- generation -----------------------------------------------------------------------------
    def _sample_labels(self, n: int, y, generator, device) -> torch.Tensor:
        """``y=None``: labels drawn from the uniform prior p(y); otherwise as :class:`CVAE`."""
        if y is None:
            return torch.randint(0, self.n_classes, (n,), generator=generator, device=device)
        return super()._sample_labels(n, y, generator, device)
