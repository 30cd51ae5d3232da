"""M2 with 100 labels on image features (chapter 10's stored run): M2 against its supervised baseline, and alpha.

For each seed (a fresh draw of 10 labelled images per class, and a fresh initialisation) this trains
M2 with a Gaussian decoder on the 50 principal-component features of the training images
(``vae_core.semisupervised.pca_features``, fitted without labels; an M1+M2-style stand-in for
Kingma et al.'s VAE features) with every other training image unlabelled, for each weight
alpha = a N of the classification term in ``--alpha-over-n`` (the paper's a = 0.1; a = 0 switches the
term off). The baselines are the same classifier network trained on the 100 labelled feature
vectors alone, and on the 100 labelled images' pixels. Test accuracy of q(y|x) is recorded after
every epoch; nothing is selected on the test set (the reported number is the last epoch's).

    python benchmarks/m2_100_labels.py                         # MNIST, 4 seeds, a in {0, 0.1, 1}
    python benchmarks/m2_100_labels.py --data fashion-mnist --epochs 3

On the book's 2-core CPU one M2 epoch over 10,000 feature rows takes about 1-3 s, so the default
(the 8,000-image MNIST subset here, 8 epochs, 4 seeds x 3 weights) takes about 3-5 minutes on an
idle machine (15-25 on a busy one); 60,000 images take six times as long per epoch. Writes
``benchmarks/results/m2_100_labels.json`` (every setting, seed and number).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from vae_core import data, paper
from vae_core import semisupervised as ss

ROOT = Path(__file__).resolve().parent


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="mnist", choices=[d for d in data.DATASETS if d != "frey"])
    p.add_argument("--labels-per-class", type=int, default=10)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--alpha-over-n", type=float, nargs="+", default=[0.0, 0.1, 1.0])
    p.add_argument("--features", type=int, default=50, help="principal components")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--latent", type=int, default=4)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--repeat", type=int, default=20, help="copies of each labelled row in the training rows")
    p.add_argument("--baseline-steps", type=int, default=300)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "results" / "m2_100_labels.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    train = data.load(args.data, "train")
    test = data.load(args.data, "test")
    start = time.perf_counter()
    f_train, f_test = ss.pca_features(train.x, test.x, k=args.features)
    print(f"{train.name}: {len(train):,} train / {len(test):,} test images, {args.features} PCA features "
          f"({time.perf_counter() - start:.1f} s)", flush=True)
    runs = []
    for seed in args.seeds:
        labelled, unlabelled = ss.split_labels(train.y, args.labels_per_class, torch.Generator().manual_seed(seed))
        base = ss.train_supervised_baseline(f_train, train.y, labelled, args.hidden, args.baseline_steps, seed=seed)
        pix = ss.train_supervised_baseline(train.x, train.y, labelled, args.hidden, args.baseline_steps, seed=seed)
        with torch.no_grad():
            run = {"seed": seed, "n_labelled": len(labelled), "n_unlabelled": len(unlabelled),
                   "baseline_features": ss.accuracy(base(f_test).argmax(-1), test.y),
                   "baseline_pixels": ss.accuracy(pix(test.x).argmax(-1), test.y), "m2": {}}
        for a in args.alpha_over_n:
            _, rec = ss.train_m2_on_features(f_train, train.y, labelled, unlabelled, f_test, test.y,
                                             alpha_over_n=a, epochs=args.epochs, latent_dim=args.latent,
                                             hidden=args.hidden, batch_size=args.batch_size, lr=args.lr,
                                             repeat=args.repeat, seed=seed)
            run["m2"][str(a)] = rec
            print(f"seed {seed}: baseline {run['baseline_features']:.3f} (pixels {run['baseline_pixels']:.3f}); "
                  f"M2 alpha = {a} N: {rec['accuracy'][-1]:.3f} ({rec['seconds']:.0f} s)", flush=True)
        runs.append(run)

    def summary(values):
        return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
                "n": len(values)}

    result = {
        "what": "M2 (Kingma et al. 2014) with a Gaussian decoder on PCA features, 100 labels, vs the same "
                "classifier trained on the labels alone",
        "config": {**vars(args), "data": train.name, "n_train": len(train), "n_test": len(test),
                   "source": str(train.source), "classifier": f"MLP {args.features}-{args.hidden}-10 tanh",
                   "decoder": "Gaussian MLP (learned variance), one hidden layer", "optimizer": "Adam",
                   "torch": torch.__version__, "wall_seconds": time.perf_counter() - start},
        "runs": runs,
        "summary": {"baseline_features": summary([r["baseline_features"] for r in runs]),
                    "baseline_pixels": summary([r["baseline_pixels"] for r in runs]),
                    **{f"m2_alpha_{a}N": summary([r["m2"][str(a)]["accuracy"][-1] for r in runs])
                       for a in args.alpha_over_n}},
    }
    path = paper.save_result(result, args.out)
    for key, s in result["summary"].items():
        print(f"{key:>24}: {s['mean']:.3f} +- {s['sd']:.3f} over {s['n']} seeds")
    print(f"wrote {path} ({result['config']['wall_seconds']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
