"""The long run of chapter 13: VaDE against its own autoencoder + GMM start on MNIST, over seeds.

For every seed, on the same images (the first ``--n-images`` of the training split, then of the test
split; clustered and scored as one set, the protocol of Jiang et al. 2017 and DEC):

* k-means on the pixels (k-means++ seeds, ``--kmeans-init`` restarts);
* for each autoencoder budget in ``--ae-epochs`` (e.g. a short and a long one): pretrain the
  encoder and decoder as an autoencoder, fit a Gaussian mixture to its codes (``--gmm-init``
  restarts; VaDE's start, scored as "AE + GMM"), then train VaDE for ``--vade-epochs`` epochs and
  score it again. The paired difference VaDE - AE + GMM is the effect of VaDE's own training.

Writes ``benchmarks/results/vade_mnist.json``: every setting, the seeds, the data (name, images,
binarisation), the accuracy and NMI of every method per seed, each VaDE run's ELBO before and after,
and the seconds each stage took. Chapter 13 draws this file when it exists.

    python benchmarks/vade_mnist.py                                  # the stored run
    python benchmarks/vade_mnist.py --seeds 0 1 --ae-epochs 5 --vade-epochs 2 --n-images 2000   # a smoke test
    python benchmarks/vade_mnist.py --seeds 1 --out s1.json   # seeds in parallel processes, then
    python benchmarks/vade_mnist.py --merge s0.json s1.json s2.json

The defaults are chapter 13's own setting (its first 3,000 images, a 784-256-256-10 network, VaDE 6
epochs) over 3 seeds, with a short (3 epochs) and the chapter's (15 epochs) autoencoder: about 2,700
minibatch steps of 100 images, 1-2 minutes of one CPU thread on an idle machine (10-15 ms a step, plus
k-means and the mixtures), many times longer on a busy one. Raise ``--n-images``, ``--ae-epochs`` and ``--vade-epochs`` for a run closer to
the paper's (70,000 images, hundreds of epochs).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from vae_core import data, fit
from vae_core.data.files import atomic_write
from vae_core.evaluate import cluster_accuracy
from vae_core.models import VaDE
from vae_core.train import pretrain_vade

ROOT = Path(__file__).resolve().parent


def _scores(y, pred) -> dict:
    pred = np.asarray(pred)
    return {"acc": float(cluster_accuracy(y, pred)), "nmi": float(normalized_mutual_info_score(y, pred))}


def run_seed(x, y, seed: int, args) -> dict:
    """Every method for one seed on images ``x`` (N, D) with labels ``y`` (used only for scoring)."""
    out = {"seed": seed}
    t0 = time.perf_counter()
    km = KMeans(args.k, n_init=args.kmeans_init, random_state=seed).fit(x.numpy())
    out["kmeans_pixels"] = {**_scores(y, km.labels_), "seconds": time.perf_counter() - t0}
    for ae_epochs in args.ae_epochs:
        torch.manual_seed(seed)
        model = VaDE(x.shape[1], args.latent, args.k, hidden_dims=tuple(args.hidden))
        t0 = time.perf_counter()
        _, gmm = pretrain_vade(model, x, epochs=ae_epochs, batch_size=args.batch_size, lr=args.ae_lr, seed=seed,
                               n_init=args.gmm_init, device="cpu")
        t_ae = time.perf_counter() - t0
        start = _scores(y, model.cluster(x))
        with torch.no_grad():
            elbo0 = float(model.elbo(x, generator=torch.Generator().manual_seed(seed)).elbo.mean())
        t0 = time.perf_counter()
        hist = fit(model, x, epochs=args.vade_epochs, batch_size=args.batch_size, lr=args.vade_lr, seed=seed,
                   progress=False, device="cpu")
        t_vade = time.perf_counter() - t0
        end = _scores(y, model.cluster(x))
        with torch.no_grad():
            elbo1 = float(model.elbo(x, generator=torch.Generator().manual_seed(seed)).elbo.mean())
        used = int((torch.bincount(model.cluster(x), minlength=args.k) > 0).sum())
        out[f"ae{ae_epochs}"] = {"ae_epochs": ae_epochs, "ae_gmm": start, "vade": end,
                                 "elbo_start": elbo0, "elbo_end": elbo1,
                                 "train_elbo_per_epoch": [float(v) for v in hist.train_elbo],
                                 "clusters_used": used, "seconds_ae_gmm": t_ae, "seconds_vade": t_vade}
        print(f"  seed {seed}, AE {ae_epochs} epochs: AE+GMM {start['acc']:.3f} -> VaDE {end['acc']:.3f} "
              f"(ELBO {elbo0:.1f} -> {elbo1:.1f}; {t_ae:.0f} s + {t_vade:.0f} s)", flush=True)
    print(f"  seed {seed}: k-means on pixels {out['kmeans_pixels']['acc']:.3f}", flush=True)
    return out


def summarise(runs: list, ae_epochs) -> dict:
    def ms(values):
        v = np.asarray(values, dtype=float)
        return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v))}
    s = {"kmeans_pixels": {k: ms([r["kmeans_pixels"][k] for r in runs]) for k in ("acc", "nmi")}}
    for e in ae_epochs:
        key = f"ae{e}"
        s[key] = {m: {k: ms([r[key][m][k] for r in runs]) for k in ("acc", "nmi")} for m in ("ae_gmm", "vade")}
        s[key]["vade_minus_ae_gmm"] = {k: ms([r[key]["vade"][k] - r[key]["ae_gmm"][k] for r in runs])
                                       for k in ("acc", "nmi")}
    return s


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="mnist", choices=data.DATASETS)
    p.add_argument("--n-images", type=int, default=3_000, help="images used (train split first, then test)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--latent", type=int, default=10)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument("--ae-epochs", type=int, nargs="+", default=[3, 15])
    p.add_argument("--vade-epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--ae-lr", type=float, default=3e-3)
    p.add_argument("--vade-lr", type=float, default=2e-3)
    p.add_argument("--gmm-init", type=int, default=5)
    p.add_argument("--kmeans-init", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "results" / "vade_mnist.json"))
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                   help="combine the files of runs made with the same settings and different --seeds into --out")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    if args.merge:
        parts = [json.loads(Path(f).read_text()) for f in args.merge]
        runs = sorted((r for part in parts for r in part["runs"]), key=lambda r: r["seed"])
        result = {**parts[0], "seeds": [r["seed"] for r in runs], "runs": runs,
                  "summary": summarise(runs, parts[0]["settings"]["ae_epochs"]),
                  "wall_seconds": max(part["wall_seconds"] for part in parts),
                  "merged_from": [Path(f).name for f in args.merge]}
        result["settings"]["seeds"] = result["seeds"]
        result["data"]["source"] = Path(result["data"]["source"]).name
        return _write(result, Path(args.out), parts[0]["settings"]["ae_epochs"])

    train = data.load(args.data, "train", binarize="static")
    test = data.load(args.data, "test", binarize="static")
    x = torch.cat([train.x, test.x])[: args.n_images]
    y = torch.cat([train.y, test.y])[: args.n_images].numpy()
    print(f"{train.name}: {len(x):,} images, static binarisation; seeds {args.seeds}")
    start = time.perf_counter()
    runs = []
    for seed in args.seeds:
        runs.append(run_seed(x, y, seed, args))
        result = _result(args, train, x, runs, time.perf_counter() - start)
        _write(result, Path(args.out), args.ae_epochs, quiet=seed != args.seeds[-1])   # after every seed
    return result


def _result(args, train, x, runs, seconds) -> dict:
    return {
        "what": "VaDE against its own autoencoder + GMM start and k-means on pixels, per seed",
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "threads", "merge")},
        "network": f"{x.shape[1]}-{'-'.join(map(str, args.hidden))}-{args.latent}, ReLU, Bernoulli decoder",
        "data": {"name": train.name, "source": Path(str(train.source)).name, "n_images": int(len(x)),
                 "splits": (f"the first {len(x):,} training images" if len(x) <= len(train) else
                            f"all {len(train):,} training and the first {len(x) - len(train):,} test images, "
                            "clustered and scored together"), "binarize": "static"},
        "seeds": [r["seed"] for r in runs], "runs": runs, "summary": summarise(runs, args.ae_epochs),
        "wall_seconds": seconds, "threads": args.threads,
        "torch": torch.__version__, "python": platform.python_version(),
    }


def _write(result: dict, out: Path, ae_epochs, quiet: bool = False) -> dict:
    with atomic_write(out, "w") as f:
        json.dump(result, f, indent=1)
    if quiet:
        return result
    for e in ae_epochs:
        d = result["summary"][f"ae{e}"]
        print(f"AE {e} epochs: AE+GMM {d['ae_gmm']['acc']['mean']:.3f} ± {d['ae_gmm']['acc']['sd']:.3f}, "
              f"VaDE {d['vade']['acc']['mean']:.3f} ± {d['vade']['acc']['sd']:.3f}, "
              f"paired difference {d['vade_minus_ae_gmm']['acc']['mean']:+.3f} ± {d['vade_minus_ae_gmm']['acc']['sd']:.3f}")
    km = result["summary"]["kmeans_pixels"]["acc"]
    print(f"k-means on pixels {km['mean']:.3f} ± {km['sd']:.3f}; wrote {out} ({result['wall_seconds']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
