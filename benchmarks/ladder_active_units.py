"""The long run of chapter 15: active units per layer, Ladder VAE against the stochastic bottom-up hierarchy.

Sønderby et al. (2016) compare the Ladder VAE (top-down inference) with a VAE whose hierarchy is inferred
bottom-up, q(z1|x) q(z2|z1) (their Fig. 1a), each with and without KL warm-up, and find that the
bottom-up model leaves more of its upper-layer units inactive. This script trains the same two-layer
generative model (z1 of 64 units, z2 of 32, ReLU blocks of 256 and 128 units, Bernoulli decoder) with

    top-down (LadderVAE inference="top-down")          with warm-up / without
    stochastic bottom-up (inference="bottom-up")       with warm-up / without
    one-pass bottom-up (inference="mean-field")        with warm-up (a second control)

over several seeds, and records at log-spaced epochs the active units per layer (Burda et al.'s
Var_x E_q[u|x] > 0.01, on test images), and at the end the per-layer KL terms, the test ELBO and the
importance-sampled log p(x). Warm-up ramps beta linearly per optimizer step from 0 to 1 over the first
``--warmup`` epochs. Writes ``benchmarks/results/ladder_active_units.json`` (settings, seeds, data,
sample counts, results); chapter 15 draws it when present.

    python benchmarks/ladder_active_units.py                    # the stored run (defaults below)
    python benchmarks/ladder_active_units.py --epochs 5 --seeds 0   # a smoke test, about a minute

On the book's 2-core CPU with one thread, one model trains at about 10-15 ms per step of 100 images
on an idle machine (several times slower when it is shared), so the defaults (the 8,000 MNIST training
images available here, 12 epochs = 960 steps, 4 configurations x 3 seeds) take about 5 minutes idle
and 30-40 busy; on a GPU, a minute. The JSON is rewritten after every model (``complete``
says whether all of them finished). The paper trained for thousands of epochs: this is a short run.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import time
from pathlib import Path

import torch

from vae_core import data, fit
from vae_core.data.files import atomic_write
from vae_core.evaluate import log_marginal
from vae_core.models import LadderVAE

ROOT = Path(__file__).resolve().parent
CONFIGS = {   # name: (inference, warm-up?)
    "top-down, warm-up": ("top-down", True),
    "top-down, no warm-up": ("top-down", False),
    "stochastic bottom-up, warm-up": ("bottom-up", True),
    "stochastic bottom-up, no warm-up": ("bottom-up", False),
    "one-pass bottom-up, warm-up": ("mean-field", True),
}
ARCH = dict(latent_dim=32, lower_latent_dims=(64,), hidden_dims=(256, 128), activation="relu")


def make_model(input_dim: int, inference: str) -> LadderVAE:
    return LadderVAE(input_dim, inference=inference, **ARCH)


def step_warmup(steps: int):
    """``on_step`` for :func:`vae_core.fit`: beta = min(1, step / steps) after every optimizer step."""
    state = {"step": 0}

    def on_step(_seen, model):
        state["step"] += 1
        model.beta = min(1.0, state["step"] / steps) if steps > 0 else 1.0
    return on_step


def train_one(train, x_eval, inference, warm, epochs, warmup_epochs, seed, batch_size=100, lr=2e-3,
              eval_epochs=()):
    """Train one model; return it and the active units per layer at ``eval_epochs`` (1-based)."""
    torch.manual_seed(seed)
    model = make_model(train.input_dim, inference)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    model.beta = 0.0 if warm else 1.0
    on_step = step_warmup(warmup_epochs * steps_per_epoch) if warm else None
    curve = {}

    def callback(epoch, _history, m):
        if epoch in eval_epochs:
            m.eval()
            curve[epoch] = m.active_units(x_eval, generator=torch.Generator().manual_seed(0))
            m.train()

    hist = fit(model, train, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=False,
               on_step=on_step, callback=callback)
    return model.eval(), curve, hist


@torch.no_grad()
def evaluate(model, x, K, seed=1):
    g = torch.Generator().manual_seed(seed)
    terms = model.loss(x, generator=g).terms
    log_px = torch.cat([log_marginal(model, xb, n_samples=K, generator=g) for xb in x.split(250)])
    return dict(elbo=(terms["recon"] - terms["kl"]).mean().item(), log_px=log_px.mean().item(),
                kl_per_layer=[terms[f"kl{i}"].mean().item() for i in range(1, model.n_layers + 1)],
                recon=terms["recon"].mean().item(),
                active=model.active_units(x, generator=torch.Generator().manual_seed(0)))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="mnist", choices=data.DATASETS)
    p.add_argument("--n-train", type=int, default=None, help="training images (default: all available)")
    p.add_argument("--n-test", type=int, default=1000, help="test images for active units, ELBO and log p(x)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--warmup", type=int, default=3, help="warm-up epochs (beta ramped per step)")
    p.add_argument("--K", type=int, default=100, help="importance samples for log p(x)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS)[:4], choices=list(CONFIGS),
                   help="default: the four of the paper's comparison (the one-pass control: add it by name)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "results" / "ladder_active_units.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    train = data.load(args.data, "train", binarize="dynamic")
    test = data.load(args.data, "test", binarize="static")
    if args.n_train is not None:
        train = dataclasses.replace(train, x=train.x[:args.n_train],
                                    y=None if train.y is None else train.y[:args.n_train])
    x_eval = test.x[:args.n_test]
    eval_epochs = sorted({e for e in (1, 2, 3, 5, 8, 12, 20, 30, 40, 60, 80, 100, args.epochs) if e <= args.epochs})
    print(f"{train.name}: {len(train):,} train images (dynamic binarisation), {len(x_eval):,} test images "
          f"(static); {args.epochs} epochs, warm-up {args.warmup}; seeds {args.seeds}")

    out = Path(args.out)
    runs, t0 = [], time.perf_counter()
    plan = [(name, seed) for seed in args.seeds for name in args.configs]      # seed-major: partial files
    for k, (name, seed) in enumerate(plan, 1):                                  # cover every configuration
        inference, warm = CONFIGS[name]
        t = time.perf_counter()
        model, curve, _ = train_one(train, x_eval, inference, warm, args.epochs, args.warmup, seed,
                                    eval_epochs=eval_epochs)
        res = evaluate(model, x_eval, args.K)
        res.update(config=name, inference=inference, warmup=warm, seed=seed,
                   active_curve={str(e): v for e, v in curve.items()},
                   train_seconds=round(time.perf_counter() - t, 1))
        runs.append(res)
        print(f"{name:34s} seed {seed}: active {res['active']}, KL/layer "
              f"{[round(v, 1) for v in res['kl_per_layer']]}, log p(x) {res['log_px']:.2f} "
              f"({res['train_seconds']:.0f} s)", flush=True)
        result = _result(args, train, x_eval, eval_epochs, runs, complete=k == len(plan),
                         seconds=time.perf_counter() - t0)
        with atomic_write(out, "w") as f:                                       # after every model
            json.dump(result, f, indent=1)
    print(f"wrote {out} ({result['total_seconds']:.0f} s)")
    return result


def _result(args, train, x_eval, eval_epochs, runs, complete, seconds):
    summary = {}
    for name in args.configs:
        rs = [r for r in runs if r["config"] == name]
        if not rs:
            continue
        t = lambda key, i=None: torch.tensor([r[key] if i is None else r[key][i] for r in rs], dtype=torch.float64)
        sd = lambda v: v.std().item() if len(v) > 1 else None
        summary[name] = {"n_seeds": len(rs)}
        for label, key, i in (("active_z1", "active", 0), ("active_z2", "active", 1), ("kl_z1", "kl_per_layer", 0),
                              ("kl_z2", "kl_per_layer", 1), ("log_px", "log_px", None), ("elbo", "elbo", None)):
            v = t(key, i)
            summary[name][label] = [v.mean().item(), sd(v)]
    return {
        "script": "benchmarks/ladder_active_units.py",
        "what": "active units per layer of a two-layer hierarchical VAE: top-down (Ladder) against stochastic "
                "bottom-up inference, with and without KL warm-up",
        "complete": complete,
        "settings": {"architecture": {**ARCH, "lower_latent_dims": list(ARCH["lower_latent_dims"]),
                                      "hidden_dims": list(ARCH["hidden_dims"]), "likelihood": "bernoulli"},
                     "epochs": args.epochs, "warmup_epochs": args.warmup, "warmup": "linear per step, 0 -> 1",
                     "batch_size": 100, "lr": 2e-3, "optimizer": "adam", "K": args.K,
                     "active_threshold": 1e-2, "active_samples": 20, "eval_epochs": eval_epochs},
        "data": {"name": train.name, "n_train": len(train), "n_test": len(x_eval),
                 "train_binarisation": "dynamic", "test_binarisation": "static (one Bernoulli draw per pixel)"},
        "seeds": args.seeds,
        "summary": summary,
        "runs": runs,
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": args.threads},
        "total_seconds": round(seconds, 1),
    }


if __name__ == "__main__":
    main()
