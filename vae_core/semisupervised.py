r"""Semi-supervised learning made exact: M2 without its style code (chapter 10).

Remove :math:`z` from Kingma et al.'s M2 and keep everything else: a uniform class prior
:math:`p(y) = 1/C`, a class-conditional density :math:`p_\theta(x|y) = \mathcal N(x; \mu_y, I)` with
learnable means, and a classifier :math:`q_\phi(y|x) = \mathrm{softmax}(Wx + b)`. Then every quantity
of the chapter is exact:

* the labelled bound is the log-joint itself, :math:`\mathcal L(x, y) = \log p(y) + \log p_\theta(x|y)
  = \log p_\theta(x, y)` (:func:`labelled_bound`, no gap: nothing else is hidden);
* the unlabelled bound :math:`\mathcal U(x) = \sum_y q(y|x)\,\mathcal L(x, y) + \mathcal H(q(y|x))
  = \log p_\theta(x) - \mathrm{KL}(q(y|x)\,\|\,p_\theta(y|x))` (:func:`unlabelled_bound`), tight exactly
  when :math:`q` is the model's posterior;
* that posterior, :math:`p_\theta(y|x) = \mathrm{softmax}_y(\mu_y^\top x - \tfrac12\|\mu_y\|^2)`, is a
  linear softmax, so the classifier family contains it: the model is well specified;
* with means :math:`\mu_c = s\,e_c` (:func:`simplex_means`) the Bayes classifier is
  :math:`\arg\max_c x_c` and its accuracy is the one-dimensional integral
  :math:`\mathbb E_{t\sim\mathcal N(s,1)}[\Phi(t)^{C-1}]` (:func:`bayes_accuracy`; for :math:`C = 2`,
  :math:`\Phi(s/\sqrt2)`).

:func:`fit_m2_without_z` maximises the paper's :math:`\mathcal J^\alpha` (eq. 9) by gradient steps,
:func:`semi_supervised_em` finds the same generative model by EM (the labels fixed, the posterior of the
unlabelled points as the E-step), and :func:`fit_logistic_regression` / :func:`nearest_mean` are the
supervised-only baselines on the labelled points alone. :func:`pca_features` gives the image chapter
its M1+M2-style features.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from ._validate import check_nonnegative_float, check_positive_int, check_tensor
from .train import make_optimizer

__all__ = ["simplex_means", "bayes_accuracy", "sample_classes", "split_labels", "log_joint", "log_evidence",
           "labelled_bound", "unlabelled_bound", "M2WithoutZ", "fit_m2_without_z", "semi_supervised_em",
           "fit_logistic_regression", "nearest_mean", "accuracy", "paper_alpha", "pca_features"]

_LOG_2PI = math.log(2 * math.pi)


@contextmanager
def _one_thread():
    """Run the small models of this module on one thread: their matrices are a few hundred rows wide,
    and a second thread costs more in synchronisation than it gains (up to 10x slower on a busy machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


# -- the generative model ---------------------------------------------------------------------------
def simplex_means(n_classes: int, dim: int, separation: float) -> torch.Tensor:
    r"""Class means :math:`\mu_c = s\,e_c` (the first ``n_classes`` axes of ``R^dim``), shape ``(C, D)``.

    Every pair of classes is :math:`s\sqrt2` apart, and the other ``dim - n_classes`` coordinates are
    pure noise: they carry nothing about the class, but a classifier trained on few labels cannot
    know that.
    """
    C, D = check_positive_int("n_classes", n_classes), check_positive_int("dim", dim)
    if C < 2 or D < C:
        raise ValueError(f"need n_classes >= 2 and dim >= n_classes, got n_classes={C}, dim={D}.")
    s = float(separation)
    if not (s > 0 and math.isfinite(s)):
        raise ValueError(f"separation must be a positive finite number, got {separation!r}.")
    return s * torch.eye(C, D, dtype=torch.float64)


def bayes_accuracy(n_classes: int, separation: float, n_nodes: int = 80) -> float:
    r"""The accuracy of the Bayes classifier for :func:`simplex_means` with identity covariance and
    equal priors: :math:`\int \mathcal N(t; s, 1)\,\Phi(t)^{C-1}\,dt`.

    With :math:`x = s e_y + \varepsilon` the rule :math:`\arg\max_c x_c` is right when
    :math:`s + \varepsilon_y` exceeds the :math:`C - 1` other coordinates, each :math:`\mathcal N(0, 1)`
    and independent: hence the integrand. Computed by Gauss-Hermite quadrature with ``n_nodes`` nodes
    (exact to float64 rounding for the smooth integrand; :math:`C = 2` gives :math:`\Phi(s/\sqrt2)`).
    """
    C = check_positive_int("n_classes", n_classes)
    if C < 2:
        raise ValueError(f"n_classes must be at least 2, got {C}.")
    simplex_means(C, C, separation)                                   # checks the separation
    nodes, weights = np.polynomial.hermite_e.hermegauss(check_positive_int("n_nodes", n_nodes))
    t = torch.as_tensor(nodes + float(separation), dtype=torch.float64)
    w = torch.as_tensor(weights / math.sqrt(2 * math.pi), dtype=torch.float64)
    return float((w * torch.special.ndtr(t) ** (C - 1)).sum())


def sample_classes(means: torch.Tensor, n: int, generator: torch.Generator | None = None,
                   noise_scales=None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``n`` draws ``(x, y)``: :math:`y` uniform on the classes, :math:`x = \mu_y + \sigma_y\varepsilon`.

    ``noise_scales`` (one :math:`\sigma_c` per class, default 1) lets the data break the model's
    identity-covariance assumption, to see what happens when :math:`p_\theta` is misspecified.
    """
    means = _check_means(means)
    C, D = means.shape
    n = check_positive_int("n", n)
    y = torch.randint(0, C, (n,), generator=generator)
    scales = torch.ones(C, dtype=means.dtype) if noise_scales is None else \
        torch.as_tensor(noise_scales, dtype=means.dtype)
    if scales.shape != (C,) or not (scales > 0).all():
        raise ValueError(f"noise_scales must be {C} positive numbers (one per class), got {noise_scales!r}.")
    eps = torch.randn((n, D), generator=generator, dtype=means.dtype)
    return means[y] + scales[y, None] * eps, y


def split_labels(y: torch.Tensor, per_class: int, generator: torch.Generator | None = None):
    """Indices ``(labelled, unlabelled)``: ``per_class`` random examples of each class keep their
    label, every other example loses it. Raises when a class has fewer than ``per_class`` examples."""
    y = _check_labels(y)
    k = check_positive_int("per_class", per_class)
    perm = torch.randperm(len(y), generator=generator)
    picked = []
    for c in torch.unique(y).tolist():
        of_c = perm[y[perm] == c]
        if len(of_c) < k:
            raise ValueError(f"class {c} has {len(of_c)} examples, fewer than per_class={k}.")
        picked.append(of_c[:k])
    labelled = torch.cat(picked)
    return labelled, perm[~torch.isin(perm, labelled)]


def log_joint(x: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    r""":math:`\log p(y) + \log\mathcal N(x; \mu_y, I)` for every class, shape ``(B, C)``."""
    x, means = _check_x(x, means)
    # -||x - mu||^2 / 2 = x.mu - ||mu||^2 / 2 - ||x||^2 / 2: one matrix product, no (B, C, D) tensor
    sq = x.pow(2).sum(-1, keepdim=True) - 2 * x @ means.T + means.pow(2).sum(-1)
    return -0.5 * sq - 0.5 * x.shape[-1] * _LOG_2PI - math.log(means.shape[0])


def log_evidence(x: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    r""":math:`\log p_\theta(x) = \log\sum_y p(y)\,\mathcal N(x; \mu_y, I)`, shape ``(B,)``."""
    return torch.logsumexp(log_joint(x, means), -1)


def labelled_bound(x: torch.Tensor, y: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    r""":math:`\mathcal L(x, y)`, M2's labelled bound without :math:`z`: the log-joint
    :math:`\log p_\theta(x, y)` itself (no gap), shape ``(B,)``."""
    lj = log_joint(x, means)
    y = _check_labels(y, len(x), means.shape[0])
    return lj.gather(1, y[:, None])[:, 0]


def unlabelled_bound(x: torch.Tensor, logits: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    r""":math:`\mathcal U(x) = \sum_y q(y|x)\,\log p_\theta(x, y) + \mathcal H(q(y|x))` with
    :math:`q = \mathrm{softmax}(\text{logits})`, shape ``(B,)``.

    Equal to :math:`\log p_\theta(x) - \mathrm{KL}(q(y|x)\,\|\,p_\theta(y|x))`: at most
    :func:`log_evidence`, with equality when the logits are the log-joint up to a constant per row.
    """
    lj = log_joint(x, means)
    logits = check_tensor("logits", logits, min_dim=2)
    if logits.shape != lj.shape:
        raise ValueError(f"logits must have shape {tuple(lj.shape)} (one row per x, one column per class), "
                         f"got {tuple(logits.shape)}.")
    log_q = torch.log_softmax(logits.to(lj.dtype), -1)
    return (log_q.exp() * (lj - log_q)).sum(-1)


def paper_alpha(n_total: int) -> float:
    r"""Kingma et al.'s weight :math:`\alpha = 0.1\,N` of the classification term, :math:`N` the number of
    training examples (labelled and unlabelled) the bound sums over."""
    return 0.1 * check_positive_int("n_total", n_total)


# -- M2 without z: J^alpha by gradient steps ------------------------------------------------------
class M2WithoutZ(nn.Module):
    r"""The generative means :math:`\mu` ``(C, D)`` and the linear classifier :math:`q_\phi(y|x)`.

    :meth:`objective` is Kingma et al.'s eq. 9 divided by :math:`N`:

    .. math:: \frac1N\Big[\sum_{\text{lab}} \mathcal L(x, y) + \sum_{\text{unl}} \mathcal U(x)
              + \alpha\,\frac1{N_\ell}\sum_{\text{lab}} \log q_\phi(y|x)\Big],

    with :math:`\alpha` in the paper's units (:func:`paper_alpha` gives its :math:`0.1\,N`).
    """

    def __init__(self, initial_means: torch.Tensor):
        super().__init__()
        means = _check_means(initial_means)
        self.means = nn.Parameter(means.clone())
        self.classifier = nn.Linear(means.shape[1], means.shape[0], dtype=means.dtype)
        nn.init.zeros_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)

    def objective(self, x_lab, y_lab, x_unl, alpha: float) -> torch.Tensor:
        alpha = check_nonnegative_float("alpha", alpha, "the weight of the classification term")
        lab = labelled_bound(x_lab, y_lab, self.means)
        unl = unlabelled_bound(x_unl, self.classifier(x_unl), self.means)
        log_q = torch.log_softmax(self.classifier(x_lab), -1).gather(1, y_lab[:, None])[:, 0]
        return (lab.sum() + unl.sum() + alpha * log_q.mean()) / (len(x_lab) + len(x_unl))

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The most probable class under the classifier :math:`q_\\phi(y|x)`."""
        return self.classifier(_check_x(x, self.means)[0]).argmax(-1)


def fit_m2_without_z(x_lab: torch.Tensor, y_lab: torch.Tensor, x_unl: torch.Tensor, alpha: float | None = None,
                     steps: int = 300, lr: float = 0.05) -> M2WithoutZ:
    r"""Maximise :math:`\mathcal J^\alpha` over the means and the classifier by full-batch Adam.

    The means start at the labelled class means (:func:`nearest_mean`), the classifier at zero (the
    uniform guess). ``alpha=None`` is the paper's :math:`0.1\,N`; ``alpha=0`` lets the labels reach the
    classifier only through the generative model. Deterministic: no randomness is used.
    """
    x_lab, x_unl, y_lab, C = _check_split(x_lab, y_lab, x_unl)
    alpha = paper_alpha(len(x_lab) + len(x_unl)) if alpha is None else alpha
    model = M2WithoutZ(nearest_mean(x_lab, y_lab, C))
    opt = make_optimizer(model.parameters(), lr=lr)
    with _one_thread():
        for _ in range(check_positive_int("steps", steps)):
            loss = -model.objective(x_lab, y_lab, x_unl, alpha)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model


# -- the same generative model by EM, and the supervised-only baselines -----------------------------
def semi_supervised_em(x_lab: torch.Tensor, y_lab: torch.Tensor, x_unl: torch.Tensor, n_iter: int = 100,
                       initial_means: torch.Tensor | None = None):
    r"""EM for :math:`\sum_{\text{lab}}\log p_\theta(x, y) + \sum_{\text{unl}}\log p_\theta(x)`.

    E-step: responsibilities :math:`p_\theta(y|x)` of the unlabelled points (a labelled point keeps a
    point mass on its label). M-step: each mean is the responsibility-weighted average of the points.
    Returns ``(means, objective)``: the final means ``(C, D)`` and the per-point objective before each
    M-step, a list that never decreases (EM's guarantee; a test checks it). This is the maximiser of
    :math:`\mathcal J^0` with an unconstrained classifier, since the best :math:`q` in
    :math:`\mathcal U` is the posterior.
    """
    x_lab, x_unl, y_lab, C = _check_split(x_lab, y_lab, x_unl)
    means = nearest_mean(x_lab, y_lab, C) if initial_means is None else _check_means(initial_means).clone()
    onehot = nn.functional.one_hot(y_lab, C).to(x_lab.dtype)
    history = []
    for _ in range(check_positive_int("n_iter", n_iter)):
        lj = log_joint(x_unl, means)
        history.append(float((labelled_bound(x_lab, y_lab, means).sum() + torch.logsumexp(lj, -1).sum())
                             / (len(x_lab) + len(x_unl))))
        r = torch.cat([onehot, torch.softmax(lj, -1)])                       # (N, C) responsibilities
        x = torch.cat([x_lab, x_unl])
        means = (r.T @ x) / r.sum(0)[:, None]
    return means, history


def nearest_mean(x_lab: torch.Tensor, y_lab: torch.Tensor, n_classes: int | None = None) -> torch.Tensor:
    r"""The class means of the labelled points, ``(C, D)``: the maximum-likelihood :math:`\mu` from the
    labels alone (the generative supervised-only baseline; its Bayes rule is the nearest mean)."""
    x_lab = check_tensor("x_lab", x_lab, min_dim=2)
    C = int(y_lab.max()) + 1 if n_classes is None else check_positive_int("n_classes", n_classes)
    y_lab = _check_labels(y_lab, len(x_lab), C)
    counts = torch.bincount(y_lab, minlength=C)
    if (counts == 0).any():
        raise ValueError(f"every class needs at least one labelled example; counts per class: {counts.tolist()}.")
    return torch.zeros(C, x_lab.shape[1], dtype=x_lab.dtype).index_add_(0, y_lab, x_lab) / counts[:, None]


def fit_logistic_regression(x: torch.Tensor, y: torch.Tensor, n_classes: int, steps: int = 300, lr: float = 0.05,
                            weight_decay: float = 0.0) -> nn.Linear:
    """The classifier of :class:`M2WithoutZ` (a linear softmax) trained on the labelled points alone by
    full-batch Adam on the cross-entropy (plus ``weight_decay * ||W||^2 / 2``); starts at zero."""
    x = check_tensor("x", x, min_dim=2)
    y = _check_labels(y, len(x), check_positive_int("n_classes", n_classes))
    weight_decay = check_nonnegative_float("weight_decay", weight_decay)
    net = nn.Linear(x.shape[1], n_classes, dtype=x.dtype)
    nn.init.zeros_(net.weight)
    nn.init.zeros_(net.bias)
    opt = make_optimizer(net.parameters(), lr=lr)
    with _one_thread():
        for _ in range(check_positive_int("steps", steps)):
            loss = nn.functional.cross_entropy(net(x), y) + 0.5 * weight_decay * net.weight.pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


def accuracy(predicted: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of ``predicted`` labels equal to ``y``."""
    if not isinstance(predicted, torch.Tensor) or not isinstance(y, torch.Tensor) or predicted.shape != y.shape:
        raise ValueError(f"predicted and y must be tensors of the same shape, got {getattr(predicted, 'shape', predicted)!r} "
                         f"and {getattr(y, 'shape', y)!r}.")
    return float((predicted == y).double().mean())


# -- features for the image version (M1+M2 style) -----------------------------------------------------
def pca_features(x_train: torch.Tensor, *others: torch.Tensor, k: int = 50, seed: int = 0):
    r"""Project images on the top ``k`` principal directions of ``x_train``, centred and divided by one
    number (the features' root-mean-square on ``x_train``): ``(f_train, *f_others)``.

    A linear, unsupervised stand-in for Kingma et al.'s M1 (a VAE's encoder means): M2 then models
    ``k`` numbers per image instead of 784 pixels, so all the unlabelled images fit a small budget.
    The labels are not used.
    """
    x_train = check_tensor("x_train", x_train, min_dim=2)
    k = check_positive_int("k", k)
    if k > min(x_train.shape):
        raise ValueError(f"k must be at most min(N, D) = {min(x_train.shape)}, got {k}.")
    for o in others:
        check_tensor("x", o, min_dim=2)
        if o.shape[1] != x_train.shape[1]:
            raise ValueError(f"every data set must have {x_train.shape[1]} columns like x_train, got {tuple(o.shape)}.")
    mean = x_train.mean(0)
    g = torch.Generator().manual_seed(seed)
    # randomised range finder (Halko et al.) with two power iterations, seeded: exact enough for the top k
    omega = torch.randn(x_train.shape[1], k + 10, generator=g, dtype=x_train.dtype)
    centred = x_train - mean
    basis = torch.linalg.qr(centred @ omega).Q
    for _ in range(2):
        basis = torch.linalg.qr(centred @ (centred.T @ basis)).Q
    _, _, vh = torch.linalg.svd(basis.T @ centred, full_matrices=False)
    directions = vh[:k].T                                                         # (D, k)
    f_train = centred @ directions
    # one scale for all features (their root-mean-square), so that the geometry of the projection is
    # kept: whitening each feature to unit variance would blow up the low-variance directions, which
    # costs a classifier trained on few labels about 15 points of accuracy on MNIST
    scale = f_train.pow(2).mean().sqrt()
    out = [f_train / scale] + [((o - mean) @ directions) / scale for o in others]
    return tuple(out)


# -- input checks -------------------------------------------------------------------------------------
def _check_means(means) -> torch.Tensor:
    means = check_tensor("means", means, min_dim=2)
    if means.dim() != 2 or means.shape[0] < 2:
        raise ValueError(f"means must have shape (C, D) with C >= 2 classes, got {tuple(means.shape)}.")
    return means


def _check_x(x, means):
    means = _check_means(means)
    x = check_tensor("x", x, min_dim=2)
    if x.dim() != 2 or x.shape[1] != means.shape[1]:
        raise ValueError(f"x must have shape (B, {means.shape[1]}) like the means' columns, got {tuple(x.shape)}.")
    return x.to(means.dtype), means


def _check_labels(y, n: int | None = None, n_classes: int | None = None) -> torch.Tensor:
    if not isinstance(y, torch.Tensor) or y.is_floating_point() or y.dtype == torch.bool or y.dim() != 1:
        raise TypeError(f"labels must be a 1-D integer tensor, got {getattr(y, 'dtype', type(y).__name__)} "
                        f"with shape {tuple(getattr(y, 'shape', ()))}.")
    if n is not None and len(y) != n:
        raise ValueError(f"labels must have one entry per example ({n}), got {len(y)}.")
    if len(y) and (int(y.min()) < 0 or (n_classes is not None and int(y.max()) >= n_classes)):
        raise ValueError(f"labels must be in 0..{'C-1' if n_classes is None else n_classes - 1}, got values "
                         f"from {int(y.min())} to {int(y.max())}.")
    return y.long()


def _check_split(x_lab, y_lab, x_unl):
    x_lab = check_tensor("x_lab", x_lab, min_dim=2)
    x_unl = check_tensor("x_unl", x_unl, min_dim=2)
    if x_lab.shape[1:] != x_unl.shape[1:] or x_lab.dim() != 2:
        raise ValueError(f"x_lab and x_unl must be (N, D) with the same D, got {tuple(x_lab.shape)} and "
                         f"{tuple(x_unl.shape)}.")
    y_lab = _check_labels(y_lab, len(x_lab))
    C = int(y_lab.max()) + 1
    x_unl = x_unl.to(x_lab.dtype)
    return x_lab, x_unl, y_lab, C


# -- the image version: M2 on features, against the same classifier on the labels alone --------------
def semi_supervised_rows(features: torch.Tensor, y: torch.Tensor, labelled: torch.Tensor, unlabelled: torch.Tensor,
                         repeat: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The training rows of M2: every unlabelled example with label ``-1``, then the labelled ones, each
    ``repeat`` times with its label (so that a minibatch of a few hundred rows holds some of them)."""
    features = check_tensor("features", features, min_dim=2)
    y = _check_labels(y, len(features))
    repeat = check_positive_int("repeat", repeat)
    x = torch.cat([features[unlabelled], features[labelled].repeat(repeat, 1)])
    labels = torch.cat([torch.full((len(unlabelled),), -1, dtype=torch.long), y[labelled].repeat(repeat)])
    return x, labels


def library_alpha(alpha_over_n: float, n_unlabelled: int, n_labelled: int, repeat: int = 1) -> float:
    r"""The weight ``M2(alpha=...)`` needs for the paper's :math:`\alpha = a\,N` (``alpha_over_n`` = a).

    :class:`~vae_core.models.M2` adds ``alpha * (-log q(y|x))`` for each labelled row to the batch mean of
    the negative bound. Over an epoch of :math:`N = N_u + r N_\ell` rows (each labelled example
    ``repeat`` = r times) the classification weight is then ``alpha`` :math:`\cdot r N_\ell` against a
    bound weight of :math:`N`; the paper's ratio :math:`a N : N` needs ``alpha`` =
    :math:`a N / (r N_\ell)`. (The labelled bounds :math:`\mathcal L(x, y)` count r times instead of once.)
    """
    a = check_nonnegative_float("alpha_over_n", alpha_over_n, "the paper's alpha / N")
    n_l, r = check_positive_int("n_labelled", n_labelled), check_positive_int("repeat", repeat)
    n_rows = int(n_unlabelled) + r * n_l
    return a * n_rows / (r * n_l)


def train_supervised_baseline(features: torch.Tensor, y: torch.Tensor, labelled: torch.Tensor, hidden: int = 128,
                              steps: int = 300, lr: float = 1e-3, seed: int = 0) -> nn.Module:
    """M2's classifier network (one ``tanh`` hidden layer) trained on the labelled rows alone by
    full-batch Adam on the cross-entropy: the supervised-only baseline."""
    from .nets import mlp

    features = check_tensor("features", features, min_dim=2)
    y = _check_labels(y, len(features))
    torch.manual_seed(seed)
    net = mlp(features.shape[1], (check_positive_int("hidden", hidden),), int(y.max()) + 1, "tanh")
    opt = make_optimizer(net.parameters(), lr=lr)
    with _one_thread():
        for _ in range(check_positive_int("steps", steps)):
            loss = nn.functional.cross_entropy(net(features[labelled]), y[labelled])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def train_m2_on_features(features: torch.Tensor, y: torch.Tensor, labelled: torch.Tensor, unlabelled: torch.Tensor,
                         test_features: torch.Tensor, test_y: torch.Tensor, alpha_over_n: float = 0.1,
                         epochs: int = 5, latent_dim: int = 4, hidden: int = 128, batch_size: int = 500,
                         lr: float = 1e-2, repeat: int = 20, seed: int = 0):
    r"""Train M2 with a Gaussian decoder on real-valued features (M1+M2 style) with :func:`vae_core.fit`.

    The rows are :func:`semi_supervised_rows`; the weight is the paper's :math:`\alpha = a N`
    (``alpha_over_n`` = a, converted by :func:`library_alpha`; 0 switches the classification term off).
    Returns ``(model, record)``: ``record`` holds the test accuracy of :math:`q(y|x)` after every epoch
    (nothing is selected by it), the training seconds, the rows and the library's ``alpha``.
    """
    from .models import M2
    from .train import fit

    x, rows_y = semi_supervised_rows(features, y, labelled, unlabelled, repeat)
    alpha = library_alpha(alpha_over_n, len(unlabelled), len(labelled), repeat)
    torch.manual_seed(seed)
    model = M2(features.shape[1], latent_dim, n_classes=int(y.max()) + 1, hidden_dims=(hidden,),
               likelihood="gaussian", classifier_hidden=(hidden,), alpha=alpha)
    accuracy_per_epoch = []

    def record(epoch, history, m):
        accuracy_per_epoch.append(accuracy(m.predict(test_features), test_y))

    with _one_thread():
        history = fit(model, (x, rows_y), epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=False,
                      callback=record, device="cpu")
    model.eval()
    return model, {"accuracy": accuracy_per_epoch, "seconds": float(sum(history.seconds)), "rows": len(x),
                   "alpha_library": alpha, "alpha_over_n": float(alpha_over_n),
                   "train_bound": [float(v) for v in history.train_elbo]}


__all__ += ["semi_supervised_rows", "library_alpha", "train_supervised_baseline", "train_m2_on_features"]
