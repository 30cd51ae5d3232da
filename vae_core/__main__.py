"""Command line: ``python -m vae_core --model NAME [options]`` trains any model of ``MODELS``.

Every keyword argument of the chosen model's constructor becomes an option (``--hidden-dims 400``,
``--free-bits 0.5``, ``--discriminator-lr 3e-3``, ...), with the help text of the model's docstring;
``python -m vae_core --model NAME --help`` lists them. Models are trained as their chapters train
them, by what the model can do (never by its name):

* a model with a pretraining step in ``vae_core.train.PRETRAINING`` (VaDE) runs it first:
  ``--pretrain-epochs E`` (default 10; 0 skips it) and ``--pretrain-lr`` (default 3e-3, chapter 13's);
* a semi-supervised model (M2) keeps ``--labels N`` labels (N / classes per class, the rest
  unlabelled); its ``--alpha`` then defaults to the paper's 0.1 N_train / N per labelled image.

An option that the chosen model does not have, a missing data set or a bad argument prints the reason
(and which options exist) and exits with status 2; training that stops on a non-finite loss exits
with status 1 and writes no checkpoint.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys

import torch

from . import data
from .checkpoint import save_checkpoint
from .models import MODELS
from .schedules import linear_warmup
from .train import PRETRAINING, fit

_FIXED = ("self", "input_dim", "latent_dim")
PROG = "python -m vae_core"


def _model_options(cls) -> list[tuple[str, object]]:
    """``(name, default)`` of every constructor keyword except input_dim and latent_dim."""
    out = []
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name in _FIXED or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        out.append((p.name, None if p.default is inspect.Parameter.empty else p.default))
    return out


def _docstring_help(cls) -> dict[str, str]:
    """``{argument: first sentence}`` from the ``Args:`` sections of the class and its bases."""
    found: dict[str, str] = {}
    for klass in cls.__mro__:
        doc = inspect.getdoc(klass) or ""
        for names, text in re.findall(r"^\s{4}([\w, ]+):\s+(.+?)(?=\n\s{4}[\w, ]+:\s|\n\n|\Z)", doc, flags=re.M | re.S):
            text = _plain(text)
            if text.lower().startswith("as "):     # "as VAE": the base class's own entry says it
                continue
            for name in (n.strip() for n in names.split(",")):
                found.setdefault(name, text)
    return found


def _plain(text: str) -> str:
    """reST to plain text: ``x`` -> x, :class:`~a.B` -> B, :math:`x` -> x."""
    text = re.sub(r":\w+:`~?(?:[\w.]+\.)?([^`]+)`", r"\1", text)
    return " ".join(text.replace("``", "").split())


def _has_pretrain(cls) -> bool:
    return cls.__name__ in PRETRAINING


def _add_option(group, name: str, default, text: str = "") -> None:
    flag = "--" + name.replace("_", "-")
    shown = " ".join(map(str, default)) if isinstance(default, (tuple, list)) else default
    text = f"{text} (default {shown})" if text else f"default {shown}"
    text = text.replace("%", "%%")
    if isinstance(default, bool):
        group.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=None,
                           metavar="BOOL", help=text)
    elif isinstance(default, (tuple, list)):
        kind = type(default[0]) if default else float
        group.add_argument(flag, type=kind, nargs="+", default=None, help=text)
    elif isinstance(default, (int, float, str)):
        group.add_argument(flag, type=type(default), default=None, help=text)
    else:
        group.add_argument(flag, type=float, default=None, help=text)


def parser(model_name: str | None = None, add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, add_help=add_help,
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
        cls = MODELS[model_name]
        group = p.add_argument_group(f"options of {model_name}")
        texts = _docstring_help(cls)
        for name, default in _model_options(cls):
            _add_option(group, name, default, texts.get(name, ""))
        if _has_pretrain(cls):
            g = p.add_argument_group(f"pretraining of {model_name} (before the main training)")
            g.add_argument("--pretrain-epochs", type=int, default=10, metavar="E",
                           help="epochs of the pretraining step (0 skips it; default 10)")
            g.add_argument("--pretrain-lr", type=float, default=3e-3, help="its learning rate (default 3e-3)")
        if cls.semi_supervised:
            g = p.add_argument_group(f"semi-supervised training of {model_name}")
            g.add_argument("--labels", type=int, default=None, metavar="N",
                           help="keep N training labels, N / classes per class, and hide the rest "
                                "(default: all labels); --alpha then defaults to 0.1 * N_train / N")
    return p


def _models_with(flag: str) -> list[str]:
    """The models whose command line has ``flag``."""
    out = []
    for name in sorted(MODELS):
        if any(flag in a.option_strings for a in parser(name, add_help=False)._actions):
            out.append(name)
    return out


def _reject_unknown(model_name: str, unknown: list[str]) -> None:
    flags = [a.split("=")[0] for a in unknown if a.startswith("--")]
    if not flags:
        raise ValueError(f"unexpected arguments {' '.join(unknown)}")
    flag = flags[0]
    own = sorted(o for a in parser(model_name, add_help=False)._actions for o in a.option_strings
                 if o.startswith("--"))
    elsewhere = _models_with(flag)
    where = (f"; it is an option of {', '.join(elsewhere)}" if elsewhere else "")
    raise ValueError(f"{flag} is not an option of {model_name}{where}. The options of {model_name} are: "
                     f"{' '.join(own)} (see {PROG} --model {model_name} --help).")


def keep_labels(ds, n_labels: int, seed: int = 0):
    """``ds`` with ``n_labels`` of its labels kept (the same number of every class) and the rest ``-1``."""
    if ds.y is None:
        raise ValueError(f"--labels needs a labelled data set; {ds.name} has no labels.")
    classes = int(ds.y.max()) + 1
    if isinstance(n_labels, bool) or n_labels < classes or n_labels % classes:
        raise ValueError(f"--labels must be a positive multiple of the {classes} classes (e.g. 100), got {n_labels}.")
    per_class = n_labels // classes
    perm = torch.randperm(len(ds.y), generator=torch.Generator().manual_seed(seed))
    kept = []
    for c in range(classes):
        of_c = perm[ds.y[perm] == c]
        if len(of_c) < per_class:
            raise ValueError(f"--labels {n_labels} needs {per_class} images of class {c}; {ds.name} has {len(of_c)}.")
        kept.append(of_c[:per_class])
    y = torch.full_like(ds.y, -1)
    kept = torch.cat(kept)
    y[kept] = ds.y[kept]
    return dataclasses.replace(ds, y=y)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    known, _ = parser(add_help=False).parse_known_args(argv)          # which model, to know its options
    try:
        args, unknown = parser(known.model).parse_known_args(argv)
        if unknown:
            _reject_unknown(known.model, unknown)
    except ValueError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    cls = MODELS[args.model]
    options = {name: getattr(args, name) for name, _ in _model_options(cls) if getattr(args, name) is not None}
    n_labels = getattr(args, "labels", None)
    try:
        train = data.load(args.data, "train", data_dir=args.data_dir, binarize=args.binarize)
        test = data.load(args.data, "test", data_dir=args.data_dir, binarize=args.binarize)
        if n_labels is not None:
            train = keep_labels(train, n_labels, seed=args.seed)
            if "alpha" not in options:
                options["alpha"] = 0.1 * len(train) / n_labels
            print(f"{n_labels} labelled and {len(train) - n_labels:,} unlabelled training images; "
                  f"alpha = {options['alpha']:.4g} per labelled image")
        torch.manual_seed(args.seed)
        model = cls(input_dim=train.input_dim, latent_dim=args.latent_dim, **options)
        schedules = {"beta": linear_warmup(args.warmup)} if args.warmup else None
        if schedules and "beta" not in cls.settings:
            raise ValueError(f"--warmup needs a model with a KL weight beta; {args.model} has none.")
        pretrain_epochs = getattr(args, "pretrain_epochs", 0)
        if pretrain_epochs < 0:
            raise ValueError(f"--pretrain-epochs must be >= 0, got {pretrain_epochs}.")
    except (OSError, ValueError, TypeError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    try:
        if pretrain_epochs:
            pre = PRETRAINING[type(model).__name__](model, train, epochs=pretrain_epochs, batch_size=args.batch_size,
                                                    lr=args.pretrain_lr, seed=args.seed, device=args.device)
            history = pre[0] if isinstance(pre, tuple) else pre
            print(f"pretrained for {pretrain_epochs} epochs ({sum(history.seconds):.1f} s)")
        hist = fit(model, train, test, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                   seed=args.seed, device=args.device, schedules=schedules)
    except FloatingPointError as err:
        print(f"{PROG}: training stopped: {err}", file=sys.stderr)
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
