"""Chapter 12's long run: the three estimators trained longer, evaluated as Jang et al. (2017) evaluate.

Jang, Gu & Poole report in Table 1 "negative variational lower bounds" for a VAE with a 20x10
categorical code; their §4 and §4.2 say the codes "are discretized to one-hot vectors during
evaluation" and that the bound is "a multi-sample bound for evaluation with m = 1000", on MNIST with
one fixed binarization. This script trains chapter 12's model (one tanh hidden layer of 200 units in
encoder and decoder, 20 variables of 10 classes, uniform prior) with each estimator -- score function
with a leave-one-out baseline (2 codes per image), straight-through Gumbel-softmax, Gumbel-softmax with
tau = max(0.5, exp(-r t)) annealed over the first two thirds of the run -- for many more examples than
the chapter can afford, and records the single-code -ELBO at checkpoints and, at the end, -L_K with
K = 1000 exact codes (the paper's quantity) on test images with one fixed binarization.

    python benchmarks/categorical_table1.py                    # 300,000 examples per model, MNIST
    python benchmarks/categorical_table1.py --examples 3e6     # closer to the paper's training length

Time: on a 2-core CPU shared with other work, about 15-25 minutes for the default (the score function
costs twice the others: two decoder passes per image). Writes ``benchmarks/results/categorical_table1.json``
(settings, seeds, data, sample counts, results) atomically; chapter 12 draws it when it is there.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from vae_core import fit
from vae_core import data as vdata
from vae_core.data import EpochParts
from vae_core.data.files import atomic_write
from vae_core.evaluate import log_marginal, mean_elbo
from vae_core.models import CategoricalVAE, ScoreFunctionCategoricalVAE
from vae_core.schedules import exponential_decay

ROOT = Path(__file__).resolve().parent
ESTIMATORS = {
    "score function (LOO baseline)": (ScoreFunctionCategoricalVAE, {}),
    "straight-through Gumbel-softmax": (CategoricalVAE, dict(hard=True)),
    "Gumbel-softmax": (CategoricalVAE, dict(hard=False)),
}
PAPER = {"score function (LOO baseline)": 110.6, "straight-through Gumbel-softmax": 107.8, "Gumbel-softmax": 101.5}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="mnist", choices=vdata.DATASETS)
    p.add_argument("--examples", type=float, default=3e5, help="training examples per model")
    p.add_argument("--part", type=int, default=6000, help="images per short epoch (tau changes once per epoch)")
    p.add_argument("--hidden", type=int, default=200)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--k-eval", type=int, default=1000, help="codes per image for -L_K (the paper's m = 1000)")
    p.add_argument("--n-eval", type=int, default=1000, help="test images for -L_K")
    p.add_argument("--checkpoints", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "results" / "categorical_table1.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    train = vdata.load(args.data, "train", binarize="dynamic")
    test = vdata.load(args.data, "test", binarize="static")
    x_test = test.x
    x_is = x_test[: args.n_eval]
    parts = max(1, round(len(train) / args.part))
    epoch_size = len(train) // parts
    epochs = max(3, round(args.examples / epoch_size))
    checkpoints = sorted({max(1, round(epochs * (i + 1) / args.checkpoints)) for i in range(args.checkpoints)})
    rate = math.log(1.0 / 0.5) / max(1, round(2 * (epochs - 1) / 3))
    print(f"{train.name}: {len(train):,} train / {len(x_test):,} test images; {epochs} epochs of {epoch_size:,} "
          f"= {epochs * epoch_size:,} examples per model; checkpoints at epochs {checkpoints}")

    results = {}
    for name, (cls, kw) in ESTIMATORS.items():
        torch.manual_seed(args.seed)
        model = cls(train.input_dim, 20, 10, hidden_dims=(args.hidden,), **kw)
        curve = []

        def monitor(epoch, history, m, curve=curve):
            if epoch in checkpoints:
                m.eval()
                g = torch.Generator().manual_seed(1000 + epoch)
                curve.append(dict(epoch=epoch, examples=epoch * epoch_size,
                                  neg_elbo=-mean_elbo(m, x_test, generator=g)))
                m.train()
                print(f"  {name}: epoch {epoch}/{epochs}, test -ELBO {curve[-1]['neg_elbo']:.2f}", flush=True)

        schedules = {"tau": exponential_decay(1.0, 0.5, rate)} if "tau" in cls.settings else None
        t0 = time.perf_counter()
        fit(model, EpochParts(train, parts), epochs=epochs, batch_size=args.batch, lr=args.lr, seed=args.seed,
            progress=False, schedules=schedules, callback=monitor)
        seconds = time.perf_counter() - t0
        model.eval()
        g = torch.Generator().manual_seed(7)
        per_image = -log_marginal(model, x_is, n_samples=args.k_eval, generator=g)
        neg_elbo = -sum(mean_elbo(model, x_test, generator=g) for _ in range(2)) / 2
        neg_elbo_same = -sum(mean_elbo(model, x_is, generator=g) for _ in range(2)) / 2   # the L_K images
        results[name] = dict(neg_elbo=neg_elbo, neg_elbo_L_K_images=neg_elbo_same, neg_L_K=per_image.mean().item(),
                             neg_L_K_se=(per_image.std() / len(x_is) ** 0.5).item(),
                             train_seconds=seconds, curve=curve, paper_neg_L_1000=PAPER[name])
        print(f"{name}: -ELBO {neg_elbo:.2f}, -L_{args.k_eval} {results[name]['neg_L_K']:.2f} "
              f"(paper {PAPER[name]}), {seconds:.0f} s", flush=True)

    out = dict(
        script="benchmarks/categorical_table1.py",
        settings=dict({k: v for k, v in vars(args).items() if k != "out"}, epochs=epochs, epoch_size=epoch_size, tau_schedule=f"max(0.5, exp(-{rate:.4g} (e-1)))",
                      code="20 x 10 categorical, uniform prior", optimizer="adam",
                      architecture=f"{train.input_dim}-{args.hidden}-(20x10)-{args.hidden}-{train.input_dim}, tanh"),
        seeds=[args.seed],
        data=dict(name=train.name, n_train=len(train), n_test=len(x_test), n_eval_L_K=len(x_is),
                  train_binarization="dynamic", test_binarization="static (one fixed draw)"),
        samples=dict(examples_per_model=epochs * epoch_size, k_eval=args.k_eval),
        paper="Jang, Gu & Poole (2017), Table 1, VAE (Cat.) row: -L_1000 with discretized codes, fixed-binarization MNIST",
        results=results,
    )
    with atomic_write(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", args.out)
    return out


if __name__ == "__main__":
    main()
