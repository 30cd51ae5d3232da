"""Training: ``fit(model, train, test)``, one loop for every model (the command line is ``__main__.py``).

Batches are slices of in-memory tensors (one ``randperm`` per epoch, no per-item work), the noise
comes from one seeded ``torch.Generator``, and a tqdm bar shows progress in terminals and notebooks.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from ._validate import check_positive_float, check_positive_int
from .data import Dataset, as_dataset, minibatches
from .distributions import sample_bernoulli
from .evaluate import mean_elbo
from .models.base import Batch
from .schedules import as_schedule

__all__ = ["History", "fit", "evaluate_elbo", "make_optimizer", "resolve_device"]


@dataclass
class History:
    r"""Per-epoch record returned by :func:`fit`. Bounds and terms are per-example means, in nats.

    ``train_elbo`` is the mean of the model's bound (``Output.elbo``: the ELBO, or the model's own
    bound such as :math:`\mathcal L_k`) over the epoch's batches; ``test_elbo`` the same on the test
    set after the epoch (in eval mode), or ``None``; ``terms[name]`` the epoch mean of every
    per-example term the model reports (at least ``recon`` and ``kl``); ``settings[name]`` the value
    of every scheduled attribute during the epoch.
    """
    epoch: list = field(default_factory=list)
    train_elbo: list = field(default_factory=list)
    test_elbo: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    examples_seen: list = field(default_factory=list)
    terms: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def __len__(self) -> int:
        return len(self.epoch)


def resolve_device(device=None) -> torch.device:
    """``None`` → CUDA if available, else CPU; otherwise ``torch.device(device)``."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def evaluate_elbo(model, x: torch.Tensor, batch_size: int = 1000, n_samples: int = 1,
                  generator: torch.Generator | None = None, device=None, y=None) -> float:
    """Mean per-example bound of ``model`` on ``x`` (nats), in eval mode: :func:`vae_core.evaluate.mean_elbo`.

    ``n_samples`` is accepted for compatibility and must be 1 (set ``model.n_samples`` for more).
    """
    if n_samples != 1:
        raise ValueError("evaluate_elbo uses the model's own setting; set model.n_samples instead of n_samples.")
    if device is not None:
        x = x.to(device)
    return mean_elbo(model, x, y=y, batch_size=batch_size, generator=generator)


def make_optimizer(params, optimizer: str = "adam", lr: float = 1e-3,
                   weight_decay: float = 0.0, **options) -> torch.optim.Optimizer:
    """Adam, or Adagrad (the paper's), each fused into one kernel per step where the device supports it.

    ``weight_decay`` adds ``weight_decay * theta`` to every gradient (an L2 penalty, i.e. a
    Gaussian prior on the weights). Other keyword ``options`` (e.g. ``betas``) go to the optimizer.
    """
    if optimizer not in ("adam", "adagrad"):
        raise ValueError(f"optimizer must be 'adam' or 'adagrad', got {optimizer!r}.")
    params = list(params)
    if not params:
        raise ValueError("make_optimizer got no parameters to optimise.")
    kind = torch.optim.Adagrad if optimizer == "adagrad" else torch.optim.Adam
    try:  # the fused kernels do the whole update in one pass: 3-4x less optimizer time on a CPU
        return kind(params, lr=lr, weight_decay=weight_decay, fused=True, **options)
    except (RuntimeError, ValueError):
        return kind(params, lr=lr, weight_decay=weight_decay, **options)


class _DirectAdam:
    """``opt.step()`` for a fused :class:`torch.optim.Adam` of one parameter group, without the
    optimizer's per-step Python work (about half a millisecond a step on a CPU, several percent of a
    fused VAE step): the same kernel, ``torch._fused_adam_``, on the optimizer's own state tensors,
    so its ``state_dict`` stays true. The first call is ``opt.step()`` itself (it creates the state).
    :meth:`applies` says when it may be used: every parameter must have a gradient at every step.
    """

    def __init__(self, opt: torch.optim.Optimizer):
        self.opt = opt
        self.state = None

    @staticmethod
    def applies(opt) -> bool:
        if type(opt) is not torch.optim.Adam or len(opt.param_groups) != 1 or not hasattr(torch, "_fused_adam_"):
            return False
        g = opt.param_groups[0]
        plain = not any(g.get(k) for k in ("amsgrad", "maximize", "capturable", "differentiable",
                                           "decoupled_weight_decay"))
        scalars = all(isinstance(v, float) for v in (g["lr"], *g["betas"], g["eps"]))   # not tensors
        return bool(g.get("fused")) and plain and scalars

    def step(self) -> None:
        group = self.opt.param_groups[0]
        params = group["params"]
        if self.state is None:
            self.opt.step()
            st = [self.opt.state[p] for p in params]
            self.state = ([s["exp_avg"] for s in st], [s["exp_avg_sq"] for s in st], [s["step"] for s in st])
            return
        exp_avgs, exp_avg_sqs, steps = self.state
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(params, [p.grad for p in params], exp_avgs, exp_avg_sqs, [], steps,
                           amsgrad=False, lr=group["lr"], beta1=group["betas"][0], beta2=group["betas"][1],
                           weight_decay=float(group["weight_decay"]), eps=group["eps"], maximize=False)


def _optimizers(model, optimizer: str, lr: float, weight_decay: float) -> dict:
    """One optimizer per parameter group. A group is a list of parameters, or a dict with ``params``
    and its own optimizer options (e.g. ``{"params": [...], "lr": 1e-4, "betas": (0.5, 0.9)}``)."""
    groups = model.parameter_groups()
    if not isinstance(groups, dict) or "model" not in groups:
        raise TypeError(f"{type(model).__name__}.parameter_groups() must return a dict with a 'model' "
                        f"group (and optionally 'discriminator'), got {groups!r:.80}.")
    unknown = set(groups) - {"model", "discriminator"}
    if unknown:
        raise ValueError(f"parameter groups must be 'model' and optionally 'discriminator', got {sorted(unknown)}.")
    opts = {}
    for name, group in groups.items():
        options = dict(group) if isinstance(group, dict) else {"params": group}
        params = options.pop("params")
        opts[name] = make_optimizer(params, options.pop("optimizer", optimizer), options.pop("lr", lr),
                                    options.pop("weight_decay", weight_decay if name == "model" else 0.0),
                                    **options)
    return opts


def check_setting(model, name: str) -> None:
    """``name`` must be one of the settings ``model`` declares (``type(model).settings``)."""
    declared = getattr(type(model), "settings", {})
    if name not in declared:
        raise ValueError(f"{type(model).__name__} has no setting {name!r}: its settings are "
                         f"{sorted(declared) or 'none'} (a model declares what fit may set in its class's `settings`).")


def _schedules(model, schedules, **fixed) -> dict:
    """``{setting: callable epoch -> value}``; a plain number is a constant schedule."""
    out = {}
    for name, value in {**(schedules or {}), **{k: v for k, v in fixed.items() if v is not None}}.items():
        check_setting(model, name)
        out[name] = as_schedule(name, value)
    return out


def fit(model, train, test=None, epochs: int = 10, batch_size: int = 100, lr: float = 1e-3,
        seed: int = 0, device=None, progress: bool = True, schedules: dict | None = None,
        optimizer: str = "adam", weight_decay: float = 0.0, callback: Callable | None = None,
        on_step: Callable | None = None, *, beta=None, n_samples: int | None = None,
        kl: str | None = None, fused: bool | None = None) -> History:
    """Train any model of :data:`vae_core.models.MODELS` by stochastic gradient descent on ``model.loss``.

    Every step: ``out = model.loss(Batch(x, y), generator)``; the "model" optimizer steps on
    ``out.loss``; when the model has a "discriminator" parameter group, its gradients from
    ``out.loss`` are discarded and its own optimizer steps on ``out.discriminator_loss`` (computed
    by the model on detached latents, so the encoder never receives it). ``fit`` never looks at
    the model's type.

    Args:
        model: a :class:`~vae_core.models.base.LatentVariableModel`.
        train, test: a data set from ``vae_core.data.load`` (dynamic binarization is resampled
            every epoch; labels, when present, are handed to the model as ``batch.y``), a float
            tensor ``(N, D)``, or a pair ``(x, y)``. ``test`` is evaluated after every epoch.
        epochs, batch_size: positive ints. The last partial batch is kept.
        lr: learning rate of Adam (or Adagrad, the paper's choice, with ``optimizer="adagrad"``).
        seed: seeds the shuffling, the binarization and the model's noise; the same seed and the
            same initial model give identical numbers.
        device: ``None`` picks CUDA when present, else CPU.
        schedules: ``{attribute: schedule}``, e.g. ``{"beta": linear_warmup(5)}`` or
            ``{"tau": exponential_decay(1.0, 0.5, 0.1)}``: ``model.<attribute>`` is set to
            ``schedule(epoch)`` at the start of every epoch (a number is a constant).
        beta, n_samples, kl: shorthands that set ``model.beta`` (a number or a schedule),
            ``model.n_samples`` and ``model.kl_estimator`` (for the VAE family).
        weight_decay: L2 penalty on the model's weights (see :func:`make_optimizer`).
        callback: called as ``callback(epoch, history, model)`` after each epoch.
        on_step: called as ``on_step(examples_seen, model)`` after every optimizer step; when it
            returns ``True`` training stops there (the epoch so far is recorded). Used to evaluate
            at checkpoints inside an epoch (:func:`vae_core.paper.train_curve`).
        fused: how a step computes the loss's gradients. ``None`` (default): by the hand-derived
            step of :mod:`vae_core.fused` where it applies (the plain MLP :class:`~vae_core.VAE` with
            the analytic KL; the same gradients as autograd, in less time), by autograd elsewhere.
            ``False``: always by autograd. ``True``: by the fused step, or a ``ValueError`` saying
            why it does not apply (:func:`vae_core.fused.why_not`).

    Returns:
        a :class:`History`.

    Raises:
        FloatingPointError: the loss became NaN or infinite (the message says what to change).
    """
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    check_positive_float("lr", lr)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}.")
    if not callable(getattr(model, "loss", None)):
        raise TypeError(f"model must follow vae_core.models.base.LatentVariableModel (have loss(batch)), "
                        f"got {type(model).__name__}.")
    train = as_dataset(train, "train")
    test = None if test is None else as_dataset(test, "test")
    if n_samples is not None:
        check_positive_int("n_samples", n_samples)
    settings = {name: value for name, value in (("n_samples", n_samples), ("kl_estimator", kl))
                if value is not None}
    for name in settings:
        check_setting(model, name)
    scheduled = _schedules(model, schedules, beta=beta)
    if fused not in (None, True, False):
        raise TypeError(f"fused must be None (where it applies), True or False, got {fused!r}.")

    device = resolve_device(device)
    model.to(device)
    for name, value in settings.items():
        setattr(model, name, value)
    gen = torch.Generator(device=device).manual_seed(seed)       # the model's noise
    cpu_gen = torch.Generator().manual_seed(seed + 1)             # shuffling and binarization
    opts = _optimizers(model, optimizer, lr, weight_decay)
    fused_step = _fused_step(model, fused, scheduled)
    model_opt, disc_opt = opts["model"], opts.get("discriminator")
    # the fused step writes a gradient for every parameter, so Adam's update can skip its Python work
    model_step = (_DirectAdam(model_opt).step if fused_step is not None and disc_opt is None
                  and _DirectAdam.applies(model_opt) else model_opt.step)
    disc_params = [p for g in disc_opt.param_groups for p in g["params"]] if disc_opt is not None else []
    test_x = test_y = None
    if test is not None:  # a fixed draw for a dynamically binarized test set
        test_x, test_y = test.epoch(torch.Generator().manual_seed(seed + 2))
        test_x = test_x.to(device)
        test_y = None if test_y is None else test_y.to(device)

    # A dynamically binarized data set on the CPU is binarized batch by batch, as the batches are drawn:
    # the same fresh sample every epoch as Dataset.epoch_data, but a run stopped early by on_step
    # (vae_core.paper.train_curve) draws only the pixels it trains on.
    lazy = isinstance(train, Dataset) and train.binarize == "dynamic" and device.type == "cpu"
    history = History()
    seen = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=epochs * math.ceil(len(train) / batch_size), desc="training", unit="batch", leave=True)
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            for name, schedule in scheduled.items():
                value = schedule(epoch)
                setattr(model, name, value)
                history.settings.setdefault(name, []).append(value)
            model.train()
            if lazy:   # grey levels; each batch is binarized when it is drawn (below)
                x_epoch, y_epoch = train.x, train.y
            else:
                x_epoch, y_epoch = train.epoch(cpu_gen)
            x_epoch = x_epoch.to(device)
            y_epoch = None if y_epoch is None else y_epoch.to(device)
            if fused_step is not None:   # the checks model.loss makes on every batch, made once an epoch
                fused_step.check(x_epoch)
            n, stop = 0, False
            total = torch.zeros((), dtype=torch.float64, device=device)
            term_totals: dict = {}
            for step, (xb, yb) in enumerate(_labelled_batches(x_epoch, y_epoch, batch_size, cpu_gen), 1):
                if lazy:
                    xb = sample_bernoulli(xb, cpu_gen)
                if fused_step is not None:          # loss and gradients (into .grad) in one call
                    out = fused_step(xb, gen)
                    if not torch.isfinite(out.loss):
                        _non_finite(out.loss, epoch, step, seen + n, lr)
                else:
                    out = model.loss(Batch(xb, yb), generator=gen)
                    if not torch.isfinite(out.loss):   # one scalar test per step, before any weight moves
                        _non_finite(out.loss, epoch, step, seen + n, lr)
                    model_opt.zero_grad(set_to_none=True)
                    out.loss.backward()
                if disc_opt is not None:
                    if out.discriminator_loss is None:
                        raise ValueError(f"{type(model).__name__} has a 'discriminator' parameter group "
                                         f"but its loss() returned discriminator_loss=None.")
                    for p in disc_params:   # the VAE's loss must not train the discriminator
                        p.grad = None
                    out.discriminator_loss.backward()
                    disc_opt.step()
                model_step()
                total += out.elbo.detach().sum()
                for name, value in out.terms.items():
                    v = value.detach().sum()
                    term_totals[name] = term_totals[name] + v if name in term_totals else v.double()
                n += len(xb)
                if bar is not None:
                    bar.update(1)
                if on_step is not None and on_step(seen + n, model):
                    stop = True
                    break
            seen += n
            train_elbo = total.item() / n
            if not math.isfinite(train_elbo):   # a finite loss whose reported bound is not (e.g. a beta of 0)
                raise FloatingPointError(
                    f"the training bound became {train_elbo} in epoch {epoch}; lower the learning rate "
                    f"(now {lr}), or check the data (pixels must be in [0, 1] for a Bernoulli decoder).")
            test_elbo = mean_elbo(model, test_x, test_y, generator=gen) if test_x is not None else None
            history.epoch.append(epoch)
            history.train_elbo.append(train_elbo)
            history.test_elbo.append(test_elbo)
            for name, value in term_totals.items():
                history.terms.setdefault(name, []).append(value.item() / n)
            history.seconds.append(time.perf_counter() - start)
            history.examples_seen.append(seen)
            if bar is not None:
                post = {"train bound": f"{train_elbo:.2f}"}
                if test_elbo is not None:
                    post["test bound"] = f"{test_elbo:.2f}"
                bar.set_postfix(post)
            if callback is not None:
                callback(epoch, history, model)
            if stop:
                break
    finally:
        if bar is not None:
            bar.close()
    return history


def _fused_step(model, fused, scheduled):
    """The :class:`vae_core.fused.FusedVAEStep` of ``model`` when ``fused`` asks for it and it applies."""
    from . import fused as fused_module
    if fused is False:
        return None
    reason = fused_module.why_not(model)
    if reason is None and set(scheduled) - {"beta", "n_samples"}:
        reason = f"the schedules {sorted(set(scheduled) - {'beta', 'n_samples'})} change the loss"
    if reason is not None:
        if fused:
            raise ValueError(f"fit(fused=True): the fused step does not apply: {reason}.")
        return None
    return fused_module.FusedVAEStep(model)


def _non_finite(loss: torch.Tensor, epoch: int, step: int, examples: int, lr: float):
    """Stop training at the first step whose loss is NaN or infinite, before it moves any weight."""
    raise FloatingPointError(
        f"the training loss became {loss.item()} at step {step} of epoch {epoch} (after {examples:,} "
        f"training examples); the weights are those after the last finite step. Lower the learning rate "
        f"(now {lr}), or check the data (pixels must be in [0, 1] for a Bernoulli decoder).")


def _labelled_batches(x, y, batch_size, generator):
    if y is None:
        return ((xb, None) for xb in minibatches(x, batch_size, generator=generator))
    return minibatches(x, batch_size, generator=generator, y=y)


# --------------------------------------------------------------------------- pretraining (VaDE, chapter 13)

from .models.base import LatentVariableModel, Output, parameters_of  # noqa: E402  (used by this section only)


class Autoencoder(LatentVariableModel):
    r"""A VAE's encoder mean and decoder as a deterministic autoencoder, for :func:`fit`: the loss is
    :math:`-\log p_\theta(x \mid z = \mu_\phi(x))`, no sampling, no prior. The wrapped model's own bound
    (``model.loss(batch).elbo``, with its terms) is reported, not trained; ``terms["ae_recon"]`` is
    :math:`\log p_\theta(x \mid z = \mu_\phi(x))`. Only the encoder and decoder are trained."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.input_dim, self.latent_dim = model.input_dim, model.latent_dim

    def parameter_groups(self) -> dict:
        return {"model": parameters_of(self.model.encoder, self.model.decoder)}

    def loss(self, batch, generator: torch.Generator | None = None) -> Output:
        x = self.as_batch(batch).x
        ae_recon = self.model.decoder.log_prob(x, self.model.encoder(x)[0])           # log p(x | z = mu(x))
        with torch.no_grad():
            out = self.model.loss(batch, generator)                                     # reported only
        return Output(loss=-ae_recon.mean(), elbo=out.elbo, terms={**out.terms, "ae_recon": ae_recon})


def pretrain_vade(model, train, epochs: int = 10, batch_size: int = 100, lr: float = 1e-3, seed: int = 0,
                  progress: bool = False, codes_from=None, encoder_variance: float | None = 0.01, n_init: int = 5,
                  **fit_kwargs):
    """The paper's initialisation of a :class:`~vae_core.models.vade.VaDE` (Jiang et al., 2017).

    Train its encoder and decoder as an :class:`Autoencoder` (with :func:`fit`; ``fit_kwargs`` such as
    ``device`` go to it), fit a Gaussian mixture to the codes of ``codes_from`` (default: the training
    images; EM from ``n_init`` k-means starts, the best kept) and copy it into the prior
    (:meth:`~vae_core.models.vade.VaDE.init_mixture`). Last, the
    encoder's variance head, which the autoencoder does not train, is set to ``encoder_variance`` times
    the mixture's mean variance (:meth:`~vae_core.models.vade.VaDE.reset_encoder_variance`; ``None``
    leaves it as it is).

    Returns ``(history, gmm)``: the autoencoder's :class:`History` and the fitted scikit-learn mixture.
    """
    train = as_dataset(train, "train")
    history = fit(Autoencoder(model), train, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                  progress=progress, **fit_kwargs)
    x = train.x if codes_from is None else codes_from
    gmm = model.init_mixture(model.encode_means(x.to(model.prior.means.device)).cpu(), seed=seed, n_init=n_init)
    if encoder_variance is not None:
        model.reset_encoder_variance(encoder_variance * model.cluster_logvars.detach().exp().mean().item())
    return history, gmm


#: the models that have a pretraining step, by name, and the function that runs it (``--pretrain-epochs``).
PRETRAINING = {"VaDE": pretrain_vade}

__all__ += ["Autoencoder", "pretrain_vade", "PRETRAINING"]
