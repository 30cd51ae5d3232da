r"""Schedules: a training setting as a function of the epoch (1 for the first), for ``fit(schedules=...)``.

``fit(model, train, schedules={"beta": linear_warmup(5)})`` sets ``model.beta = schedule(epoch)`` at
the start of every epoch; any callable ``epoch -> value`` works. Three shapes cover the book:

* :func:`linear_warmup` — KL warm-up, :math:`\beta` from 0 to 1 (Bowman et al., 2016; Sønderby et
  al., 2016), or any linear ramp that then stays put, such as the capacity :math:`C` of Burgess et
  al. (2018) raised from 0 to 25 nats (:func:`linear_ramp` is the same schedule by its general name);
* :func:`exponential_decay` — temperature annealing :math:`\tau_e = \max(\tau_{\min},
  \tau_0 e^{-r(e-1)})` for Gumbel-softmax latents (Jang et al., 2017);
* :func:`constant` — a fixed value, which is what a plain number given to ``fit`` becomes.
"""
from __future__ import annotations

import math

from ._validate import check_nonnegative_float, check_positive_float, check_positive_int

__all__ = ["Schedule", "LinearWarmup", "linear_warmup", "linear_ramp", "ExponentialDecay", "exponential_decay",
           "constant", "as_schedule"]


def _check_epoch(epoch) -> int:
    if isinstance(epoch, bool) or not isinstance(epoch, int):
        raise TypeError(f"epoch must be an int (1 for the first epoch), got {epoch!r}.")
    if epoch < 1:
        raise ValueError(f"epochs are counted from 1 (as fit does), got epoch={epoch}.")
    return epoch


class Schedule:
    """Base of the schedules here: callable ``epoch -> value``, with :meth:`values` for a whole run."""

    def __call__(self, epoch: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def values(self, n_epochs: int) -> list[float]:
        """``[s(1), ..., s(n_epochs)]``: the values a run of ``n_epochs`` epochs sees."""
        return [self(e) for e in range(1, check_positive_int("n_epochs", n_epochs) + 1)]


class LinearWarmup(Schedule):
    r"""A linear ramp that then stays put, as a function of the (1-based) epoch:

    .. math:: s(e) = s_0 + (s_1 - s_0)\,\min\!\Big(1, \frac{e - 1}{E}\Big), \qquad e = 1, 2, \dots

    so the first epoch uses :math:`s_0` (default 0: for a KL weight, a plain autoencoder with noise),
    the value grows by :math:`(s_1-s_0)/E` per epoch, and from epoch :math:`E+1` on it stays at
    :math:`s_1` (default 1: the ELBO).
    """

    def __init__(self, epochs: int, start: float = 0.0, end: float = 1.0):
        self.epochs = check_positive_int("epochs", epochs)
        self.start = check_nonnegative_float("start", start)
        self.end = check_nonnegative_float("end", end)

    def __call__(self, epoch: int) -> float:
        frac = min(1.0, (_check_epoch(epoch) - 1) / self.epochs)
        return self.start + (self.end - self.start) * frac

    def __repr__(self) -> str:
        return f"linear_warmup(epochs={self.epochs}, start={self.start:g}, end={self.end:g})"


def linear_warmup(epochs: int, start: float = 0.0, end: float = 1.0) -> LinearWarmup:
    """A KL warm-up ``epoch -> beta`` from ``start`` to ``end`` over ``epochs`` epochs.

    ``linear_warmup(2).values(4) == [0.0, 0.5, 1.0, 1.0]``. See :class:`LinearWarmup`.
    """
    return LinearWarmup(epochs, start, end)


def linear_ramp(start: float, end: float, epochs: int) -> LinearWarmup:
    """A linear ramp from ``start`` to ``end`` over ``epochs`` epochs, then constant (e.g. a capacity)."""
    return LinearWarmup(epochs, start, end)


class ExponentialDecay(Schedule):
    r""":math:`s(e) = \max(s_{\min},\ s_0\,e^{-r(e-1)})`: temperature annealing that really anneals."""

    def __init__(self, start: float, minimum: float, rate: float):
        self.start = check_positive_float("start", start)
        self.minimum = check_positive_float("minimum", minimum)
        self.rate = check_nonnegative_float("rate", rate, "a decay rate per epoch")
        if self.minimum > self.start:
            raise ValueError(f"minimum ({minimum}) must not exceed start ({start}): the schedule would "
                             f"never anneal.")

    def __call__(self, epoch: int) -> float:
        return max(self.minimum, self.start * math.exp(-self.rate * (_check_epoch(epoch) - 1)))

    def __repr__(self) -> str:
        return f"exponential_decay(start={self.start:g}, minimum={self.minimum:g}, rate={self.rate:g})"


def exponential_decay(start: float = 1.0, minimum: float = 0.5, rate: float = 0.1) -> ExponentialDecay:
    """Temperature annealing ``epoch -> max(minimum, start * exp(-rate * (epoch - 1)))``."""
    return ExponentialDecay(start, minimum, rate)


class _Constant(Schedule):
    def __init__(self, value):
        self.value = value

    def __call__(self, epoch: int):
        _check_epoch(epoch)
        return self.value

    def __repr__(self) -> str:
        return f"constant({self.value!r})"


def constant(value) -> Schedule:
    """The schedule that is ``value`` in every epoch."""
    return _Constant(value)


def as_schedule(name: str, value) -> Schedule:
    """A callable schedule from ``value``: callables pass through, numbers become :func:`constant`."""
    if callable(value):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"schedules[{name!r}] must be a number or a callable epoch -> value "
                        f"(see vae_core.schedules), got {value!r}.")
    return constant(value)
