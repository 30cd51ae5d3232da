r"""Experiments of Kingma & Welling (2013) that the book reproduces, as plain functions.

* :func:`lower_bound_curves`: the paper's Fig. 2, the variational lower bound on training and test
  data against the number of training samples evaluated, for several latent sizes :math:`N_z`.
  The training loop is the paper's: minibatches of ``M = 100``, ``L = 1`` sample, Adagrad, and a
  weight decay that is the Gaussian prior :math:`p(\theta) = \mathcal N(0, I)` on the weights with the
  minibatch scaling of eq. (8):

  .. math:: \frac1N\Big[\tfrac NM \textstyle\sum_{i=1}^M \widetilde{\mathcal L}(x^{(i)}) + \log p(\theta)\Big]
            = \frac1M\sum_{i=1}^M \widetilde{\mathcal L}(x^{(i)}) - \frac{\lVert\theta\rVert^2}{2N} + \text{const},

  i.e. ``weight_decay = 1/N`` in PyTorch's convention (it adds ``weight_decay * θ`` to the gradient
  of the loss).
* :func:`gradient_moments`: mean and variance, coordinate by coordinate, of the SGVB gradient of a
  minibatch ELBO, to compare the Monte-Carlo-KL estimator (the paper's :math:`\widetilde{\mathcal L}^A`,
  eq. 6) with the analytic-KL one (:math:`\widetilde{\mathcal L}^B`, eq. 7) and the effect of ``L``.
* :func:`wake_sleep_curves`: the same curves for wake-sleep (:class:`vae_core.models.WakeSleepVAE`),
  the paper's comparison in Figs. 2 and 3.

Results are JSON-serialisable dicts (:func:`save_result`, :func:`load_result`); the figure is drawn by
:func:`vae_core.plots.plot_lower_bound_curves` for the book's short run and for the long run alike.
"""
from __future__ import annotations

import dataclasses
import json
import math
import platform
import time
from pathlib import Path
from typing import NamedTuple, Sequence

import torch

from ._validate import check_positive_int, check_tensor
from .evaluate import mean_elbo
from .data.files import atomic_write
from .data import Dataset, as_dataset
from .train import fit, make_optimizer

__all__ = ["log_checkpoints", "prior_weight_decay", "make_optimizer", "train_curve",
           "lower_bound_curves", "wake_sleep_curves", "select_learning_rate", "evaluation_set", "evaluation_sets", "GradientMoments", "gradient_moments",
           "save_result", "load_result", "PAPER_LATENT_DIMS", "PAPER_LEARNING_RATES", "PAPER_FIG2"]

#: the latent sizes of the paper's Fig. 2 (MNIST).
PAPER_LATENT_DIMS = (3, 5, 10, 20, 200)
#: the Adagrad global step sizes the paper chose from.
PAPER_LEARNING_RATES = (0.01, 0.02, 0.1)
#: the settings of the paper's Fig. 2 run (MNIST): 500 hidden units, M = 100, L = 1, Adagrad with
#: the step size chosen from PAPER_LEARNING_RATES on the training set, a N(0, I) weight prior, and
#: up to 10^8 training samples evaluated. Used by ``VAE_BOOK_LONG=1`` and benchmarks/paper_fig2.py.
PAPER_FIG2 = dict(latent_dims=PAPER_LATENT_DIMS, hidden=500, total_samples=10 ** 8, n_points=16,
                  batch_size=100, optimizer="adagrad", lr="select", weight_decay="prior", n_eval=1000)


def log_checkpoints(total: int, n_points: int = 12, batch_size: int = 100, start: int | None = None) -> list:
    """About ``n_points`` numbers of training samples, log-spaced from ``start`` to ``total``.

    Each is a multiple of ``batch_size`` (evaluations happen between minibatches); duplicates are
    dropped and ``total`` (rounded up to a whole batch) is always the last one.
    """
    check_positive_int("total", total)
    check_positive_int("n_points", n_points)
    check_positive_int("batch_size", batch_size)
    last = math.ceil(total / batch_size) * batch_size
    first = max(batch_size, start or max(batch_size, last // 10 ** 3))
    first = min(first, last)
    if n_points == 1 or first == last:
        return [last]
    ratio = (last / first) ** (1 / (n_points - 1))
    points = {max(batch_size, round(first * ratio ** k / batch_size) * batch_size) for k in range(n_points)}
    return sorted({p for p in points if p < last} | {last})


def prior_weight_decay(n_train: int) -> float:
    r"""``1/N``: the weight decay equal to a :math:`\mathcal N(0, I)` prior on the weights under eq. (8)."""
    check_positive_int("n_train", n_train)
    return 1.0 / n_train


def evaluation_set(data, n: int, generator: torch.Generator) -> torch.Tensor:
    """The images a curve is scored on: ``n`` rows of ``data`` chosen at random (seeded; all of it, in
    order, when it has at most ``n``), then binarized once if the data set is dynamically binarized.

    The rows are chosen before binarizing, so a large data set costs no more than ``n`` images.
    """
    data = as_dataset(data, "data")
    rows = torch.randperm(len(data.x), generator=generator)[:n] if len(data.x) > n else slice(None)
    if isinstance(data, Dataset):
        return dataclasses.replace(data, x=data.x[rows], y=None).epoch(generator)[0]
    return data.epoch(generator)[0][rows]


def evaluation_sets(train, test, n_eval: int = 1000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The training and test images :func:`train_curve` scores a model on, for these arguments."""
    check_positive_int("n_eval", n_eval)
    g = torch.Generator().manual_seed(seed + 2)
    return evaluation_set(train, n_eval, g), evaluation_set(test, n_eval, g)


def _mean_elbo(model, x: torch.Tensor, seed: int, batch_size: int = 1000) -> float:
    """Mean bound over ``x`` with fixed noise (the same draws at every checkpoint)."""
    return mean_elbo(model, x, batch_size=batch_size, generator=torch.Generator(device=x.device).manual_seed(seed))


def train_curve(model, train, test, total_samples: int, checkpoints: Sequence[int] | None = None,
                batch_size: int = 100, n_samples: int = 1, optimizer: str = "adagrad", lr: float = 0.02,
                weight_decay: float | str = "prior", n_eval: int = 1000, seed: int = 0,
                kl: str = "analytic", progress: bool = False, device=None, callback=None) -> dict:
    r"""Train ``model`` on ``total_samples`` training samples and record the bound at checkpoints.

    Minibatches of ``batch_size`` are drawn without replacement within each pass over the data
    (dynamically binarized data sets redraw their pixels every pass). At every checkpoint the mean
    single-sample ELBO is computed, with fixed noise, on ``n_eval`` training images and ``n_eval``
    test images (a seeded random choice when a set is larger than ``n_eval``, all of it in order
    otherwise; one fixed binarization of each).

    Args:
        model: a ``VAE`` (anything with ``elbo(x, n_samples, kl=..., generator=...)``).
        train, test: data sets from ``vae_core.data.load`` or float tensors ``(N, D)``.
        total_samples: training samples to evaluate (the paper's x-axis).
        checkpoints: sample counts at which to evaluate; default :func:`log_checkpoints`.
        weight_decay: ``"prior"`` for :func:`prior_weight_decay` (``1/N``), or a number.
        seed: seeds shuffling, binarization and the reparameterization noise.
        callback: called as ``callback(samples_seen, model)`` at every checkpoint, after the bound
            was recorded (e.g. to estimate :math:`\log p(x)` by importance sampling there).

    Returns:
        ``{"samples", "train_elbo", "test_elbo", "seconds"}``: lists over checkpoints; ``seconds``
        is cumulative training time (evaluation excluded), in seconds.
    """
    check_positive_int("total_samples", total_samples)
    check_positive_int("batch_size", batch_size)
    check_positive_int("n_eval", n_eval)
    train, test = as_dataset(train, "train"), as_dataset(test, "test")
    n_train = len(train)
    if weight_decay == "prior":
        weight_decay = prior_weight_decay(n_train)
    elif isinstance(weight_decay, str) or float(weight_decay) < 0:
        raise ValueError(f"weight_decay must be 'prior' or a number >= 0, got {weight_decay!r}.")
    checkpoints = sorted(set(int(c) for c in (checkpoints or log_checkpoints(total_samples, batch_size=batch_size))))
    if checkpoints[0] <= 0:
        raise ValueError(f"checkpoints must be positive sample counts, got {checkpoints[0]}.")

    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    model.to(device)
    train_eval, test_eval = (x.to(device) for x in evaluation_sets(train, test, n_eval, seed))

    out = {"samples": [], "train_elbo": [], "test_elbo": [], "seconds": []}
    clock = {"start": time.perf_counter(), "evaluating": 0.0}

    def record(seen: int, model) -> bool:
        """After each step: evaluate at every checkpoint passed; True stops training."""
        while len(out["samples"]) < len(checkpoints) and seen >= checkpoints[len(out["samples"])]:
            t0 = time.perf_counter()
            out["seconds"].append(t0 - clock["start"] - clock["evaluating"])
            out["samples"].append(seen)
            out["train_elbo"].append(_mean_elbo(model, train_eval, seed + 3))
            out["test_elbo"].append(_mean_elbo(model, test_eval, seed + 3))
            if callback is not None:
                callback(seen, model)
            model.train()
            clock["evaluating"] += time.perf_counter() - t0
        return len(out["samples"]) == len(checkpoints)

    declared = type(model).settings      # wake-sleep has neither L nor a KL estimator to set
    fit(model, train, epochs=math.ceil(checkpoints[-1] / n_train), batch_size=batch_size, lr=lr,
        seed=seed, device=device, progress=progress, optimizer=optimizer, weight_decay=float(weight_decay),
        on_step=record, n_samples=n_samples if "n_samples" in declared else None,
        kl=kl if "kl_estimator" in declared else None)
    return out


def select_learning_rate(make_model, train, candidates: Sequence[float] = PAPER_LEARNING_RATES,
                         trial_samples: int = 10_000, optimizer: str = "adagrad", seed: int = 0,
                         n_eval: int = 1000, **kwargs) -> tuple[float, dict]:
    """The paper's step-size choice: train a fresh model with each candidate for ``trial_samples``
    samples and keep the one with the best bound on the training set.

    Returns ``(best_lr, {lr: train_elbo})``.
    """
    scores = {}
    for lr in candidates:
        torch.manual_seed(seed)
        curve = train_curve(make_model(), train, train, trial_samples, checkpoints=[trial_samples],
                            optimizer=optimizer, lr=lr, seed=seed, n_eval=n_eval, **kwargs)
        scores[float(lr)] = curve["train_elbo"][-1]
    best = max(scores, key=lambda k: scores[k] if math.isfinite(scores[k]) else -math.inf)
    return best, scores


def lower_bound_curves(train, test, latent_dims: Sequence[int] = PAPER_LATENT_DIMS, hidden: int = 500,
                       total_samples: int = 10 ** 6, n_points: int = 12, batch_size: int = 100,
                       optimizer: str = "adagrad", lr: float | str = 0.02, weight_decay: float | str = "prior",
                       n_eval: int = 1000, seed: int = 0, progress: bool = False, device=None,
                       lr_trial_samples: int = 10_000, models: dict | None = None,
                       start: int | None = None, model: str = "VAE") -> dict:
    r"""The paper's Fig. 2: the lower bound against training samples evaluated, per latent size.

    For each :math:`N_z` in ``latent_dims`` a fresh ``VAE(D, N_z, hidden)`` (tanh MLPs, Bernoulli
    decoder) is seeded with ``seed`` and trained by :func:`train_curve` on the same schedule.

    Args:
        lr: a step size, or ``"select"`` to choose per model among ``PAPER_LEARNING_RATES`` with
            :func:`select_learning_rate` (``lr_trial_samples`` samples each), as the paper did.
        models: if a dict is given, the trained models are stored in it, keyed by latent size.
        model: the name in :data:`vae_core.models.MODELS` of the model to train (``"VAE"``, or
            ``"WakeSleepVAE"`` for the paper's wake-sleep baseline on the same networks).
        start: the first checkpoint (default ``total_samples / 1000``; see :func:`log_checkpoints`).

    Returns:
        a JSON-serialisable dict: ``config`` (every setting, the data set, the machine) and
        ``curves`` mapping ``str(N_z)`` to the dict of :func:`train_curve` plus ``latent_dim``,
        ``lr`` and ``parameters`` (the model's parameter count).
    """
    from .models import MODELS

    if model not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, got {model!r}.")
    dims = [check_positive_int("each latent size", int(d)) for d in latent_dims]
    check_positive_int("hidden", hidden)
    train, test = as_dataset(train, "train"), as_dataset(test, "test")
    input_dim = train.x.shape[1] if hasattr(train, "x") else train.shape[1]
    checkpoints = log_checkpoints(total_samples, n_points, batch_size, start)
    config = dict(method=model, latent_dims=dims, hidden=hidden, total_samples=checkpoints[-1], checkpoints=checkpoints,
                  batch_size=batch_size, n_samples=1, optimizer=optimizer, lr=lr,
                  weight_decay=weight_decay, n_eval=n_eval, seed=seed,
                  data=getattr(train, "name", "tensor"), binarize=getattr(train, "binarize", None),
                  n_train=len(train), n_test=len(test), input_dim=input_dim,
                  torch=torch.__version__, machine=platform.machine(), threads=torch.get_num_threads())
    curves = {}
    for d in dims:
        def make(d=d):
            return MODELS[model](input_dim, d, (hidden,))
        lr_d = lr
        if lr == "select":
            lr_d, _ = select_learning_rate(make, train, trial_samples=lr_trial_samples, optimizer=optimizer,
                                           seed=seed, n_eval=n_eval, batch_size=batch_size,
                                           weight_decay=weight_decay, device=device)
        torch.manual_seed(seed)
        net = make()
        curve = train_curve(net, train, test, checkpoints[-1], checkpoints, batch_size=batch_size,
                            optimizer=optimizer, lr=float(lr_d), weight_decay=weight_decay, n_eval=n_eval,
                            seed=seed, progress=progress, device=device)
        curve.update(latent_dim=d, lr=float(lr_d), parameters=sum(p.numel() for p in net.parameters()))
        curves[str(d)] = curve
        if models is not None:
            models[d] = net
    return {"config": config, "curves": curves}


def wake_sleep_curves(train, test, latent_dims: Sequence[int], **kwargs) -> dict:
    """Wake-sleep's side of the paper's Fig. 2: :func:`lower_bound_curves` with ``model="WakeSleepVAE"``
    (the recognition and generative networks of the VAE, trained by the wake and sleep phases). Each
    model is seeded like the VAE's, so both start from the same weights."""
    return lower_bound_curves(train, test, latent_dims, model="WakeSleepVAE", **kwargs)


class GradientMoments(NamedTuple):
    """Per-coordinate mean and (unbiased) variance of a stochastic gradient over ``repeats`` draws."""
    mean: torch.Tensor
    variance: torch.Tensor
    repeats: int

    @property
    def total_variance(self) -> float:
        """The trace of the gradient's covariance: the sum of the per-coordinate variances."""
        return float(self.variance.sum())

    @property
    def standard_error(self) -> torch.Tensor:
        """Standard error of each coordinate of ``mean``."""
        return (self.variance / self.repeats).sqrt()


def gradient_moments(model, x: torch.Tensor, kl: str = "analytic", n_samples: int = 1, repeats: int = 100,
                     parameters=None, generator: torch.Generator | None = None) -> GradientMoments:
    r"""Moments of the SGVB gradient :math:`\nabla \tfrac1M\sum_{i=1}^M \widetilde{\mathcal L}(x^{(i)})`.

    The minibatch ``x`` is fixed; only the reparameterization noise changes between the ``repeats``
    draws, so the variance is the estimator's own (not the minibatch sampling's).

    Args:
        kl: ``"mc"`` (estimator A, eq. 6) or ``"analytic"`` (estimator B, eq. 7).
        n_samples: L, samples per example.
        parameters: the tensors to differentiate; default the encoder's parameters (the decoder's
            gradient is the same for both estimators, because the KL term does not involve it).
    """
    check_tensor("x", x, min_dim=2)
    check_positive_int("n_samples", n_samples)
    check_positive_int("repeats", repeats)
    if repeats < 2:
        raise ValueError("repeats must be >= 2 to estimate a variance.")
    params = list(model.encoder.parameters() if parameters is None else parameters)
    if not params:
        raise ValueError("parameters is empty; pass the tensors whose gradient to measure.")
    total = total_sq = None
    for _ in range(repeats):
        elbo = model.elbo(x, n_samples=n_samples, kl=kl, generator=generator).elbo.mean()
        grads = torch.autograd.grad(elbo, params)
        g = torch.cat([t.reshape(-1) for t in grads]).double()
        total = g.clone() if total is None else total + g
        total_sq = g * g if total_sq is None else total_sq + g * g
    mean = total / repeats
    variance = ((total_sq - repeats * mean * mean) / (repeats - 1)).clamp_min(0.0)
    return GradientMoments(mean, variance, repeats)


def save_result(result: dict, path) -> Path:
    """Write a result dict as JSON (written to a temporary name, then renamed)."""
    path = Path(path)
    payload = json.dumps(result, indent=1)   # fails before anything is written if not JSON-able
    with atomic_write(path, "w") as f:
        f.write(payload)
    return path


def load_result(path) -> dict:
    """Read a dict written by :func:`save_result`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no result file at {path}; run benchmarks/paper_fig2.py to create it.")
    return json.loads(path.read_text())
