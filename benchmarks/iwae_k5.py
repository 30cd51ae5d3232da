"""IWAE with k = 5 against the compute-matched VAE with k = 5 samples (Burda et al. 2016, Table 1): a long run.

Burda et al.'s control is a VAE trained with the same number of samples per image as the IWAE: both
cost k decoder passes per image, so the only difference is the objective, the average of k log-weights
(the ELBO estimated with k samples) against the log of the average of k weights (the bound L_k). This
script trains three models from the same initial weights, on the same minibatches and the same
dynamic binarisation (the same seed):

* ``VAE, k = 1``  -- the ELBO, one sample per image (the k = 1 row of Table 1, where VAE = IWAE);
* ``VAE, k = 5``  -- the ELBO with 5 samples per image (``VAE(n_samples=5)``);
* ``IWAE, k = 5`` -- the bound L_5 (``IWAE(k=5)``);

then evaluates them on the same test images with the same evaluation noise: the ELBO, L_5, the
importance-sampled negative log-likelihood ``-L_K`` (K = 1000 by default; Burda use 5000), active units
(Var_x E_q[z_j] > 0.01, Burda's criterion) and the NLL difference of every pair of models with its
*paired* standard error over the test images. Writes ``benchmarks/results/iwae_k5.json`` (every
setting, seed, data set, sample count and result), which chapter 11 draws when it is present.

    python benchmarks/iwae_k5.py                       # fashion-mnist 60k, 4 epochs, 1 seed: ~9 min of CPU, 1 thread
    python benchmarks/iwae_k5.py --epochs 30 --n-eval 2000 --seeds 0 1 2   # longer, over three seeds
    python benchmarks/iwae_k5.py --epochs 1 --n-train 1000 --n-eval 50 --k-eval 50 --out /tmp   # a smoke test

Architecture (default): Burda et al.'s one-stochastic-layer model, 784-200-200-50 with tanh units. Each
epoch over 60,000 images costs about 15 s for the k = 1 VAE and 30-40 s for each k = 5 model on one idle
thread; the evaluation about 55 s per model for 500 images at K = 1000. On a busy machine (the stored run
shared two cores with other jobs) the wall time is several times longer: ``config.wall_seconds`` says. Burda et al. train for 3,280 passes
with batch 20 and a decaying learning rate; this run is far shorter (see ``config`` in the JSON).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import time
from pathlib import Path

import torch

from vae_core import VAE, data, fit
from vae_core.evaluate import active_units, kl_per_dimension, log_marginal
from vae_core.models import IWAE
from vae_core.paper import save_result

ROOT = Path(__file__).resolve().parent
MODELS = ("VAE, k = 1", "VAE, k = 5", "IWAE, k = 5")


def make_models(input_dim: int, latent: int, hidden: tuple, k: int, seed: int) -> dict:
    """The three models, all with the same initial weights (drawn once from ``seed``)."""
    torch.manual_seed(seed)
    base = VAE(input_dim, latent, hidden)
    vae_k = VAE(input_dim, latent, hidden)
    vae_k.load_state_dict(base.state_dict())
    vae_k.n_samples = k
    iwae = IWAE(input_dim, latent, hidden, k=k)
    iwae.load_state_dict(base.state_dict())
    return {MODELS[0]: base, MODELS[1]: vae_k, MODELS[2]: iwae}


@torch.no_grad()
def evaluate(model, x: torch.Tensor, k: int, k_eval: int, seed: int) -> dict:
    """Per-image bounds on the same images with the same evaluation noise for every model."""
    model.eval()
    elbo = model.elbo(x, n_samples=10, generator=torch.Generator().manual_seed(seed)).elbo
    lk = log_marginal(model, x, n_samples=k, chunk=k, generator=torch.Generator().manual_seed(seed + 1))
    nll = -log_marginal(model, x, n_samples=k_eval, generator=torch.Generator().manual_seed(seed + 2))
    au, activity = active_units(model, x)
    return {"elbo": elbo.double(), "lk": lk.double(), "nll": nll.double(), "active_units": au,
            "activity": sorted(activity.tolist(), reverse=True), "kl": kl_per_dimension(model, x).sum().item()}


def paired(a: torch.Tensor, b: torch.Tensor) -> dict:
    """Mean of the per-image difference a − b and its paired standard error."""
    d = a - b
    return {"mean": d.mean().item(), "se": (d.std() / math.sqrt(d.numel())).item()}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="fashion-mnist", choices=data.DATASETS)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--n-train", type=int, default=None, help="first N training images (default: all)")
    p.add_argument("--hidden", type=int, nargs="+", default=[200, 200])
    p.add_argument("--latent", type=int, default=50)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--n-eval", type=int, default=500, help="test images evaluated (the first N)")
    p.add_argument("--k-eval", type=int, default=1000, help="importance samples of the NLL estimate")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "results"), help="folder for iwae_k5.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    train = data.load(args.data, "train", binarize="dynamic")
    if args.n_train is not None:
        train = dataclasses.replace(train, x=train.x[:args.n_train],
                                    y=None if train.y is None else train.y[:args.n_train])
    test = data.load(args.data, "test", binarize="static")
    x_eval = test.x[:args.n_eval]
    hidden = tuple(args.hidden)
    print(f"{train.name}: {len(train):,} training images (dynamic binarisation), {len(x_eval):,} test images "
          f"(static); {train.input_dim}-{'-'.join(map(str, hidden))}-{args.latent}; {args.epochs} epochs; "
          f"seeds {args.seeds}", flush=True)

    start = time.perf_counter()
    runs = []
    for seed in args.seeds:
        models = make_models(train.input_dim, args.latent, hidden, args.k, seed)
        run = {"seed": seed, "models": {}, "differences": {}}
        per_image = {}
        for name, model in models.items():
            t0 = time.perf_counter()
            h = fit(model, train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=seed,
                    progress=False)
            train_s = time.perf_counter() - t0
            ev = evaluate(model, x_eval, args.k, args.k_eval, seed=1000 + seed)
            per_image[name] = ev
            run["models"][name] = {
                "train_bound": h.train_elbo, "epoch_seconds": h.seconds, "train_seconds": train_s,
                "eval_seconds": time.perf_counter() - t0 - train_s,
                "elbo": ev["elbo"].mean().item(), "lk": ev["lk"].mean().item(), "nll": ev["nll"].mean().item(),
                "nll_sd": ev["nll"].std().item(), "active_units": ev["active_units"], "activity": ev["activity"],
                "kl": ev["kl"]}
            print(f"seed {seed} {name}: train bound {h.train_elbo[-1]:.2f}, test -ELBO {-ev['elbo'].mean():.2f}, "
                  f"-L_{args.k} {-ev['lk'].mean():.2f}, NLL {ev['nll'].mean():.2f}, active units "
                  f"{ev['active_units']} ({train_s:.0f} s training)", flush=True)
        for a, b in ((MODELS[1], MODELS[2]), (MODELS[0], MODELS[2]), (MODELS[0], MODELS[1])):
            key = f"{a} minus {b}"
            run["differences"][key] = {m: paired(per_image[a][m] if m == "nll" else -per_image[a][m],
                                                 per_image[b][m] if m == "nll" else -per_image[b][m])
                                       for m in ("nll", "elbo", "lk")}
            d = run["differences"][key]["nll"]
            print(f"seed {seed}: NLL({a}) - NLL({b}) = {d['mean']:+.3f} ± {d['se']:.3f} (paired SE)", flush=True)
        runs.append(run)

    result = {
        "config": {"script": "benchmarks/iwae_k5.py", "data": train.name, "n_train": len(train),
                   "binarization": "dynamic (train), static (test, vae_core.data STATIC_BINARIZATION_SEED)",
                   "architecture": [train.input_dim, *hidden, args.latent], "activation": "tanh",
                   "likelihood": "bernoulli", "k": args.k, "epochs": args.epochs, "batch_size": args.batch_size,
                   "optimizer": "adam", "lr": args.lr, "n_eval": len(x_eval), "k_eval": args.k_eval,
                   "seeds": args.seeds, "threads": args.threads, "torch": torch.__version__,
                   "wall_seconds": time.perf_counter() - start,
                   "samples_seen_per_model": args.epochs * len(train),
                   "note": "differences are in nats per test image, a − b of the negative bounds (−ELBO, "
                           "−L_k, NLL), with paired standard errors over the same test images and noise"},
        "models": list(MODELS), "runs": runs}
    path = save_result(result, Path(args.out) / "iwae_k5.json")
    print(f"wrote {path} ({result['config']['wall_seconds']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
