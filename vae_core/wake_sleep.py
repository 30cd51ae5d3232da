r"""The wake-sleep algorithm of Hinton, Dayan, Frey & Neal (1995), on the VAE's networks.

Kingma & Welling (2013) compare AEVB with wake-sleep in their Figs. 2 and 3, using the same
recognition model (encoder) :math:`q_\phi(z|x)` and generative model :math:`p(z)\,p_\theta(x|z)`.
Wake-sleep trains the two with two separate objectives instead of one bound:

* **wake phase** (generative weights :math:`\theta`): encode a data point, draw
  :math:`z \sim q_\phi(z|x)` and take a gradient step on :math:`\log p_\theta(x|z)` with :math:`z`
  held fixed. For the same :math:`z` this is exactly the :math:`\theta`-gradient of the ELBO (the KL
  term does not involve :math:`\theta`);
* **sleep phase** (recognition weights :math:`\phi`): "dream" a pair :math:`z \sim p(z)`,
  :math:`\tilde x \sim p_\theta(x|z)` and take a gradient step on :math:`\log q_\phi(z|\tilde x)`. In
  expectation this minimises :math:`\mathbb E_{p_\theta(x)}\,\mathrm{KL}\big(p_\theta(z|x)\,\|\,q_\phi(z|x)\big)`,
  the *forward* KL to the model's own posterior, not the reverse KL of the ELBO.

Neither phase needs a gradient through a sample, so wake-sleep works without the
reparameterization trick; the price is that the two phases do not optimise a common objective.
The bound reported for a wake-sleep model is the ELBO of its own :math:`q_\phi`, measured exactly as
for a VAE (``model.elbo`` in eval mode).

:func:`wake_sleep_curve` trains a :class:`~vae_core.VAE` this way on the schedule of
:func:`vae_core.experiments.train_curve` (minibatches of ``M``, one dream per data point, Adagrad,
a weight decay ``1/N`` for the :math:`\mathcal N(0, I)` weight prior) and evaluates it on the same
images with the same fixed noise, so its curve can be drawn beside the VAE's;
:func:`wake_sleep_curves` does so for several latent sizes (the paper's Fig. 2).
"""
from __future__ import annotations

import math
import platform
import time
from typing import Sequence

import torch

from ._checks import check_positive_int, check_tensor
from .distributions import gaussian_log_prob
from .data import minibatches
from .experiments import log_checkpoints, prior_weight_decay
from .train import make_optimizer

__all__ = ["dream", "wake_loss", "sleep_loss", "evaluation_sets", "mean_elbo", "wake_sleep_curve",
           "wake_sleep_curves"]


def _check_model(model) -> None:
    for attr in ("encode", "decode", "log_likelihood", "latent_dim", "likelihood"):
        if not hasattr(model, attr):
            raise TypeError(f"model must be a vae_core.VAE (encoder q(z|x) and decoder p(x|z)); "
                            f"{type(model).__name__} has no '{attr}'.")


def _device_dtype(model):
    p = next(model.parameters())
    return p.device, p.dtype


@torch.no_grad()
def dream(model, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Sample ``n`` pairs from the generative model: :math:`z \sim \mathcal N(0, I)`,
    :math:`\tilde x \sim p_\theta(x|z)` (0/1 pixels for a Bernoulli decoder). Returns ``(z, x)``,
    detached from the graph."""
    _check_model(model)
    check_positive_int("n", n)
    device, dtype = _device_dtype(model)
    z = torch.randn(n, model.latent_dim, generator=generator, device=device, dtype=dtype)
    out = model.decode(z)
    if model.likelihood == "bernoulli":
        x = torch.bernoulli(torch.sigmoid(out), generator=generator)
    else:
        mean, logvar = out
        x = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=generator, device=device,
                                                         dtype=dtype)
    return z, x


def wake_loss(model, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Per-example wake-phase loss :math:`-\log p_\theta(x|z)` with :math:`z \sim q_\phi(z|x)` held fixed.

    The sample is drawn without a graph, so the gradient reaches only the decoder (:math:`\theta`).
    It uses the same noise as ``model.elbo(x, generator=...)`` for the same generator state, so its
    :math:`\theta`-gradient equals that of the ELBO sample.
    """
    _check_model(model)
    check_tensor("x", x, min_dim=2)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        eps = torch.randn((1, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
        z = (mu + torch.exp(0.5 * logvar) * eps)[0]
    return -model.log_likelihood(x, z)


def sleep_loss(model, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Per-dream sleep-phase loss :math:`-\log q_\phi(z|\tilde x)` for ``n`` dreams
    :math:`(z, \tilde x)` from :func:`dream`; the gradient reaches only the encoder (:math:`\phi`)."""
    z, x = dream(model, n, generator)
    mu, logvar = model.encode(x)
    return -gaussian_log_prob(z, mu, logvar)


def _as_tensor(name: str, data, generator) -> torch.Tensor:
    if hasattr(data, "epoch_data"):
        return data.epoch_data(generator=generator)
    if isinstance(data, torch.Tensor):
        check_tensor(name, data, min_dim=2)
        return data.reshape(len(data), -1)
    raise TypeError(f"{name} must be a data set from vae_core.data.load(...) or a float tensor of shape "
                    f"(N, D), got {type(data).__name__}.")


def evaluation_sets(train, test, n_eval: int = 1000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The images a curve is scored on: ``n_eval`` training and ``n_eval`` test images.

    One fixed binarization of each set (for dynamically binarized data) and a seeded random choice
    of ``n_eval`` rows when a set is larger: the same images as
    :func:`vae_core.experiments.train_curve` uses for the same ``seed``, so the two curves compare.
    """
    check_positive_int("n_eval", n_eval)
    g = torch.Generator().manual_seed(seed + 2)
    out = []
    for name, data in (("train", train), ("test", test)):
        x = _as_tensor(name, data, g)
        if len(x) > n_eval:
            x = x[torch.randperm(len(x), generator=g)[:n_eval]]
        out.append(x)
    return out[0], out[1]


@torch.no_grad()
def mean_elbo(model, x: torch.Tensor, seed: int, batch_size: int = 1000) -> float:
    """Mean single-sample ELBO of ``model`` on ``x`` in eval mode, with noise seeded by ``seed``."""
    g = torch.Generator(device=x.device).manual_seed(seed)
    was = model.training
    model.eval()
    try:
        total = 0.0
        for xb in x.split(batch_size):
            total += model.elbo(xb, generator=g).elbo.double().sum().item()
    finally:
        model.train(was)
    return total / len(x)


def wake_sleep_curve(model, train, test, total_samples: int, checkpoints: Sequence[int] | None = None,
                     batch_size: int = 100, optimizer: str = "adagrad", lr: float = 0.02,
                     weight_decay: float | str = "prior", n_eval: int = 1000, seed: int = 0,
                     device=None, callback=None, eval_sets: tuple | None = None) -> dict:
    r"""Train ``model`` (a :class:`~vae_core.VAE`) by wake-sleep and record its ELBO at checkpoints.

    Every step takes a minibatch of ``batch_size`` data points for the wake phase and as many dreams
    for the sleep phase, and makes one optimizer step on the sum of the two mean losses (the wake
    loss moves only :math:`\theta`, the sleep loss only :math:`\phi`; Adagrad scales every weight on
    its own, so this is two separate updates). Minibatches are drawn without replacement within a
    pass over the data; dynamically binarized data get fresh pixels every pass.

    Args:
        total_samples: training data points to evaluate (the x-axis of the paper's Fig. 2).
        checkpoints: sample counts at which to evaluate; default
            :func:`vae_core.experiments.log_checkpoints`.
        weight_decay: ``"prior"`` for ``1/N``, or a number >= 0.
        callback: called as ``callback(samples_seen, model)`` at every checkpoint.
        eval_sets: the ``(train, test)`` tensors of :func:`evaluation_sets` for these arguments,
            when the caller already has them (saves one binarization of each set per model).

    Returns:
        ``{"samples", "train_elbo", "test_elbo", "seconds"}`` like
        :func:`vae_core.experiments.train_curve`: the mean ELBO of the model's own encoder on the
        evaluation images (:func:`evaluation_sets`), and cumulative training seconds.
    """
    _check_model(model)
    check_positive_int("total_samples", total_samples)
    check_positive_int("batch_size", batch_size)
    n_train = len(train)
    if weight_decay == "prior":
        weight_decay = prior_weight_decay(n_train)
    elif isinstance(weight_decay, str) or float(weight_decay) < 0:
        raise ValueError(f"weight_decay must be 'prior' or a number >= 0, got {weight_decay!r}.")
    checkpoints = sorted(set(int(c) for c in (checkpoints or log_checkpoints(total_samples, batch_size=batch_size))))
    if checkpoints[0] <= 0:
        raise ValueError(f"checkpoints must be positive sample counts, got {checkpoints[0]}.")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    if eval_sets is None:
        eval_sets = evaluation_sets(train, test, n_eval, seed)
    x_train_eval, x_test_eval = (x.to(device) for x in eval_sets)

    opt = make_optimizer(model.parameters(), optimizer, lr, float(weight_decay))
    noise = torch.Generator(device=device).manual_seed(seed)      # encoder samples and dreams
    order = torch.Generator().manual_seed(seed + 1)               # shuffling and binarization
    out = {"samples": [], "train_elbo": [], "test_elbo": [], "seconds": []}
    seen, training_time = 0, 0.0
    model.train()
    while len(out["samples"]) < len(checkpoints):
        x_epoch = _as_tensor("train", train, order).to(device)
        for xb in minibatches(x_epoch, batch_size, generator=order):
            start = time.perf_counter()
            loss = wake_loss(model, xb, noise).mean() + sleep_loss(model, len(xb), noise).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            training_time += time.perf_counter() - start
            seen += len(xb)
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"the wake-sleep loss became {loss.item()} after {seen} samples; "
                                         f"lower the learning rate (now {lr}).")
            while len(out["samples"]) < len(checkpoints) and seen >= checkpoints[len(out["samples"])]:
                out["samples"].append(seen)
                out["seconds"].append(training_time)
                out["train_elbo"].append(mean_elbo(model, x_train_eval, seed + 3))
                out["test_elbo"].append(mean_elbo(model, x_test_eval, seed + 3))
                if callback is not None:
                    callback(seen, model)
                model.train()
            if len(out["samples"]) == len(checkpoints):
                break
    return out


def wake_sleep_curves(train, test, latent_dims: Sequence[int], hidden: int = 500, total_samples: int = 10 ** 6,
                      n_points: int = 12, batch_size: int = 100, optimizer: str = "adagrad", lr: float = 0.02,
                      weight_decay: float | str = "prior", n_eval: int = 1000, seed: int = 0, device=None,
                      models: dict | None = None, start: int | None = None) -> dict:
    """Wake-sleep's side of the paper's Fig. 2: :func:`wake_sleep_curve` for each latent size.

    Each model is a fresh ``VAE(D, d, hidden)`` seeded with ``seed`` (the same initial weights as
    :func:`vae_core.experiments.lower_bound_curves` gives the VAE). Returns the same structure as
    that function, ``{"config", "curves"}`` with ``config["method"] = "wake-sleep"``, so
    :func:`vae_core.plots.plot_lower_bound_curves` draws it; trained models go into ``models``.
    """
    from .models import VAE

    dims = [check_positive_int("each latent size", int(d)) for d in latent_dims]
    check_positive_int("hidden", hidden)
    x0 = train.x if hasattr(train, "x") else _as_tensor("train", train, None)
    checkpoints = log_checkpoints(total_samples, n_points, batch_size, start)
    config = dict(method="wake-sleep", latent_dims=dims, hidden=hidden, total_samples=checkpoints[-1],
                  checkpoints=checkpoints, batch_size=batch_size, optimizer=optimizer, lr=lr,
                  weight_decay=weight_decay, n_eval=n_eval, seed=seed, data=getattr(train, "name", "tensor"),
                  binarize=getattr(train, "binarize", None), n_train=len(train), n_test=len(test),
                  input_dim=x0.shape[1], torch=torch.__version__, machine=platform.machine())
    curves = {}
    eval_sets = evaluation_sets(train, test, n_eval, seed)     # the same images for every model
    for d in dims:
        torch.manual_seed(seed)
        model = VAE(x0.shape[1], d, (hidden,))
        curve = wake_sleep_curve(model, train, test, checkpoints[-1], checkpoints, batch_size=batch_size,
                                 optimizer=optimizer, lr=lr, weight_decay=weight_decay, n_eval=n_eval,
                                 seed=seed, device=device, eval_sets=eval_sets)
        curve.update(latent_dim=d, lr=float(lr), parameters=sum(p.numel() for p in model.parameters()))
        curves[str(d)] = curve
        if models is not None:
            models[d] = model
    return {"config": config, "curves": curves}
