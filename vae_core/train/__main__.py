"""Command line: ``python -m vae_core.train --model NAME [options]`` trains any model of ``MODELS``.

Every keyword argument of the chosen model's constructor becomes an option (``--hidden-dims 400``,
``--free-bits 0.5``, ...); ``python -m vae_core.train --model NAME --help`` lists them. A missing data
set or a bad argument prints the reason and exits with status 2.
"""
from __future__ import annotations

import argparse
import inspect
import sys

import torch

from .. import data
from ..checkpoint import save_checkpoint
from ..models import MODELS
from ..schedules import linear_warmup
from . import fit

_FIXED = ("self", "input_dim", "latent_dim")


def _model_options(cls) -> list[tuple[str, object]]:
    """``(name, default)`` of every constructor keyword except input_dim and latent_dim."""
    out = []
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name in _FIXED or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        out.append((p.name, None if p.default is inspect.Parameter.empty else p.default))
    return out


def _add_option(group, name: str, default) -> None:
    flag = "--" + name.replace("_", "-")
    if isinstance(default, bool):
        group.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=None,
                           metavar="BOOL", help=f"default {default}")
    elif isinstance(default, (tuple, list)):
        kind = type(default[0]) if default else float
        group.add_argument(flag, type=kind, nargs="+", default=None, help=f"default {' '.join(map(str, default))}")
    elif isinstance(default, (int, float, str)):
        group.add_argument(flag, type=type(default), default=None, help=f"default {default}")
    else:
        group.add_argument(flag, type=float, default=None, help=f"default {default}")


def parser(model_name: str | None = None, add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vae_core.train", add_help=add_help,
                                description="Train a model of vae_core.models.MODELS and save a checkpoint.")
    p.add_argument("--model", default="VAE", choices=sorted(MODELS), help="which model (default VAE)")
    p.add_argument("--data", default="mnist", choices=data.DATASETS)
    p.add_argument("--data-dir", default=None, help="folder holding the data set's files")
    p.add_argument("--binarize", default=None, choices=["static", "dynamic", "threshold"])
    p.add_argument("--latent-dim", type=int, default=20)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=None, metavar="E",
                   help="KL warm-up: beta from 0 to 1 over E epochs (models with a beta)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--out", default=None, help="checkpoint folder to write (model.pt + config.json)")
    if model_name in MODELS:
        group = p.add_argument_group(f"options of {model_name}")
        for name, default in _model_options(MODELS[model_name]):
            _add_option(group, name, default)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    known, _ = parser(add_help=False).parse_known_args(argv)          # which model, to know its options
    args = parser(known.model).parse_args(argv)
    cls = MODELS[args.model]
    options = {name: getattr(args, name) for name, _ in _model_options(cls) if getattr(args, name) is not None}
    try:
        train = data.load(args.data, "train", data_dir=args.data_dir, binarize=args.binarize)
        test = data.load(args.data, "test", data_dir=args.data_dir, binarize=args.binarize)
        torch.manual_seed(args.seed)
        model = cls(input_dim=train.input_dim, latent_dim=args.latent_dim, **options)
        schedules = {"beta": linear_warmup(args.warmup)} if args.warmup else None
        if schedules and "beta" not in cls.schedulable:
            raise ValueError(f"--warmup needs a model with a KL weight beta; {args.model} has none.")
    except (OSError, ValueError, TypeError) as err:
        print(f"python -m vae_core.train: error: {err}", file=sys.stderr)
        return 2
    try:
        hist = fit(model, train, test, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                   seed=args.seed, device=args.device, schedules=schedules)
    except FloatingPointError as err:
        print(f"python -m vae_core.train: training stopped: {err}", file=sys.stderr)
        return 1
    print(f"final bound  train {hist.train_elbo[-1]:.2f}  test {hist.test_elbo[-1]:.2f} nats "
          f"({sum(hist.seconds):.1f} s)")
    if args.out:
        save_checkpoint(model, args.out, extra={"history": hist.as_dict(), "data": args.data,
                                                "model": args.model})
        print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
