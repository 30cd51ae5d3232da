"""The long run of Kingma & Welling (2013), Fig. 2: lower bound vs training samples evaluated.

Trains one VAE per latent size N_z in (3, 5, 10, 20, 200) with the paper's settings
(``vae_core.paper.PAPER_FIG2``: 500 tanh hidden units, minibatches of 100, one sample per
datapoint, Adagrad with the global step size chosen from {0.01, 0.02, 0.1} on the training set, a
N(0, I) prior on the weights as a weight decay of 1/N) and records the bound on 1,000 training and
1,000 test images at log-spaced checkpoints. Writes a JSON file (every setting and every number) and a
PNG drawn by ``vae_core.plots.plot_lower_bound_curves``, the function chapter 7 uses for its short run;
the chapter shows the stored JSON when it exists.

    python benchmarks/paper_fig2.py                         # the paper's 10^8 samples per model
    python benchmarks/paper_fig2.py --samples 1e6           # a shorter run
    python benchmarks/paper_fig2.py --device cuda --data mnist --out benchmarks/results

On the book's 2-core CPU one model at 500 hidden units trains on about 5,000-10,000 samples per
second, so 10^8 samples for each of five models take 14-28 hours; use a GPU (``--device cuda``) or
``--samples`` (1e6 takes about 10-20 minutes there). The same
run from the chapter: ``VAE_BOOK_LONG=1`` (and optionally ``VAE_BOOK_LONG_SAMPLES``).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from vae_core import data, paper, plots  # noqa: E402

ROOT = Path(__file__).resolve().parent


def main(argv=None) -> dict:
    settings = paper.PAPER_FIG2
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="mnist", choices=data.DATASETS)
    p.add_argument("--binarize", default="dynamic", choices=["dynamic", "static", "threshold"])
    p.add_argument("--samples", type=float, default=settings["total_samples"],
                   help="training samples evaluated per latent size (default 1e8, the paper's axis)")
    p.add_argument("--latent", type=int, nargs="+", default=list(settings["latent_dims"]))
    p.add_argument("--hidden", type=int, default=settings["hidden"])
    p.add_argument("--points", type=int, default=settings["n_points"], help="checkpoints (log-spaced)")
    p.add_argument("--lr", default="select", help="'select' (the paper's rule) or a number")
    p.add_argument("--optimizer", default=settings["optimizer"], choices=["adagrad", "adam"])
    p.add_argument("--n-eval", type=int, default=settings["n_eval"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    p.add_argument("--out", default=str(ROOT / "results"), help="folder for paper_fig2.json / .png")
    args = p.parse_args(argv)

    train = data.load(args.data, "train", binarize=args.binarize)
    test = data.load(args.data, "test", binarize=args.binarize)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    lr = args.lr if args.lr == "select" else float(args.lr)
    total = int(args.samples)
    print(f"{train.name}: {len(train):,} train / {len(test):,} test images; N_z {args.latent}; "
          f"{total:,} samples per model on {device}")
    start = time.perf_counter()
    result = paper.lower_bound_curves(
        train, test, latent_dims=args.latent, hidden=args.hidden, total_samples=total,
        n_points=args.points, batch_size=settings["batch_size"], optimizer=args.optimizer, lr=lr,
        weight_decay=settings["weight_decay"], n_eval=args.n_eval, seed=args.seed, progress=True,
        device=device)
    result["config"]["device"] = device
    result["config"]["wall_seconds"] = time.perf_counter() - start

    out = Path(args.out)
    path = paper.save_result(result, out / "paper_fig2.json")
    plots.plot_lower_bound_curves(result, title=f"{train.name}: lower bound vs training samples evaluated "
                                                f"({total:,} per model)")
    plt.tight_layout()
    plt.savefig(out / "paper_fig2.png", dpi=120)
    for key, c in result["curves"].items():
        print(f"N_z = {key:>3}: lr {c['lr']}, train {c['train_elbo'][-1]:.2f}, test {c['test_elbo'][-1]:.2f} "
              f"nats, {c['seconds'][-1]:.0f} s of training")
    print(f"wrote {path} and {out / 'paper_fig2.png'} ({result['config']['wall_seconds']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
