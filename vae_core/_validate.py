"""Small input checks shared by the modules: each raises an error that says what was expected."""
from __future__ import annotations

import torch


def check_tensor(name: str, value, *, min_dim: int = 1, floating: bool = True) -> torch.Tensor:
    """Return ``value`` if it is a tensor of at least ``min_dim`` dimensions (floating point when asked)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}; "
                        f"convert with torch.as_tensor(...).")
    if value.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dimension(s) "
                         f"(batch first, features last), got shape {tuple(value.shape)}.")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}; "
                        f"use {name}.float().")
    return value


def check_same_shape(**tensors: torch.Tensor) -> None:
    """Raise ValueError unless all tensors broadcast to a common shape."""
    names = list(tensors)
    try:
        torch.broadcast_shapes(*(t.shape for t in tensors.values()))
    except RuntimeError:
        shapes = ", ".join(f"{n}{tuple(tensors[n].shape)}" for n in names)
        raise ValueError(f"shapes do not match: {shapes}; expected equal (or broadcastable) shapes.") from None


def check_positive_int(name: str, value) -> int:
    """Return ``value`` if it is a positive ``int`` (bool excluded)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int, got {value!r} ({type(value).__name__}).")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}.")
    return value


def check_positive_float(name: str, value) -> float:
    """Return ``float(value)`` if it is a finite number > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a positive number, got {value!r}.") from None
    if not (v > 0 and v < float("inf")):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return v


def check_finite(name: str, value: torch.Tensor) -> torch.Tensor:
    """Return ``value`` if every entry is finite; else a ValueError that counts the NaN and inf entries.

    A NaN or an infinity makes the sum non-finite, so one ``sum`` (10x cheaper than ``isfinite(x).all()``)
    decides the common case; only a non-finite sum (which finite entries can also give, by overflow)
    looks at every entry.
    """
    if not bool(torch.isfinite(value.sum())) and not bool(torch.isfinite(value).all()):
        n_nan = int(torch.isnan(value).sum())
        n_inf = int(torch.isinf(value).sum())
        raise ValueError(f"{name} has {n_nan} NaN and {n_inf} infinite entries (of {value.numel()}); "
                         f"clean the data first (e.g. {name}[~torch.isfinite({name})] = 0, or drop those rows).")
    return value


def check_nonnegative_float(name: str, value, what: str = "a weight") -> float:
    """Return ``float(value)`` if it is a finite number >= 0."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number >= 0 ({what}), got a bool.")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number >= 0 ({what}), got {value!r}.") from None
    if not (v >= 0 and v < float("inf")):
        raise ValueError(f"{name} must be a finite number >= 0 ({what}), got {value!r}.")
    return v


def check_hidden(hidden_dims) -> tuple[int, ...]:
    """Hidden layer sizes: an int or a sequence of positive ints, returned as a tuple."""
    if isinstance(hidden_dims, int):
        hidden_dims = (hidden_dims,)
    try:
        dims = tuple(hidden_dims)
    except TypeError:
        raise TypeError(f"hidden_dims must be an int or a sequence of ints, got {hidden_dims!r}.") from None
    for h in dims:
        check_positive_int("each hidden dimension", h)
    return dims
