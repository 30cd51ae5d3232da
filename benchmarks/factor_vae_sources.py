"""FactorVAE against a plain VAE on rotated independent sources, over seeds (the long run of chapter 14).

Data (``vae_core.data.sources.mixed_sources``): two independent unit-variance sources, rotated by 45°
and embedded in 10 dimensions by a matrix with orthonormal columns, plus noise of sd 0.05. Two
kinds: *uniform* sources (a rotated square: its rotated coordinates are dependent, so a
total-correlation penalty can find the source axes) and *Gaussian* sources (the control: every
rotation of a standard Gaussian is equally independent, so no method can find the axes).

Models: a VAE and a FactorVAE (gamma 20), latent size 2, Gaussian decoder, encoder and decoder MLPs
with two hidden layers of 64 tanh units, discriminator 64-64 (Adam 1e-3, betas 0.5/0.9), Adam 2e-3,
batches of 128, ``--steps`` optimizer steps (default 2,000) on 4,000 points. Scores on the training
points: the rotation between the codes (encoder means) and the sources in degrees (0 = aligned,
45 = worst, 22.5 = the mean of a random rotation; ``rotation_to_sources``), the MIG against the
sources cut into 10 equal-mass bins, the ELBO and the discriminator's TC estimate.

    python benchmarks/factor_vae_sources.py                   # 3 seeds, 12 models: a few minutes on one idle core
    python benchmarks/factor_vae_sources.py --seeds 0 1 --steps 1000
    # the two kinds in parallel, then one file:
    python benchmarks/factor_vae_sources.py --kinds uniform --out /tmp/u.json &
    python benchmarks/factor_vae_sources.py --kinds gaussian --out /tmp/g.json; wait
    python benchmarks/factor_vae_sources.py --merge /tmp/u.json /tmp/g.json

One thread; the stored JSON came from the two kinds run in parallel (and merged, as above) on a busy
2-core machine, 45-870 s per model. Writes
``benchmarks/results/factor_vae_sources.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from vae_core import VAE, fit
from vae_core.data.files import atomic_write
from vae_core.data.sources import mixed_sources, rotation_to_sources, source_factors
from vae_core.evaluate import mean_elbo, mutual_information_gap
from vae_core.models import FactorVAE

ROOT = Path(__file__).resolve().parent
SETTINGS = dict(n=4000, n_sources=2, data_dim=10, angle_deg=45.0, noise=0.05, latent_dim=2, hidden=(64, 64),
                disc_hidden=(64, 64), disc_lr=1e-3, lr=2e-3, batch_size=128, gamma=20.0, n_bins=10, data_seed=0)


def make_model(name: str, s: dict):
    if name == "VAE":
        return VAE(s["data_dim"], s["latent_dim"], s["hidden"], likelihood="gaussian")
    return FactorVAE(s["data_dim"], s["latent_dim"], s["hidden"], likelihood="gaussian", gamma=s["gamma"],
                     discriminator_hidden=s["disc_hidden"], discriminator_lr=s["disc_lr"])


def run_one(kind: str, name: str, seed: int, steps: int, s: dict) -> dict:
    data = mixed_sources(s["n"], kind, s["n_sources"], s["data_dim"], s["angle_deg"], s["noise"], seed=s["data_seed"])
    torch.manual_seed(seed)
    model = make_model(name, s)
    epochs = max(1, round(steps * s["batch_size"] / s["n"]))
    t0 = time.perf_counter()
    h = fit(model, data.x, epochs=epochs, batch_size=s["batch_size"], lr=s["lr"], seed=seed, progress=False)
    seconds = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        mu, _ = model.encode(data.x)
        elbo = mean_elbo(model, data.x, generator=torch.Generator().manual_seed(seed))
    mig, gaps, _ = mutual_information_gap(mu, source_factors(data.sources, s["n_bins"]))
    corr = np.abs(np.corrcoef(mu.T.numpy(), data.sources.T.numpy())[:2, 2:])
    return dict(kind=kind, model=name, seed=seed, angle_deg=rotation_to_sources(mu, data.sources), mig=mig,
                abs_corr=corr.round(4).tolist(), elbo=elbo, tc_last_epoch=h.terms.get("tc", [None])[-1],
                steps=epochs * -(-s["n"] // s["batch_size"]), seconds=round(seconds, 2))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--kinds", nargs="+", default=["uniform", "gaussian"], choices=["uniform", "gaussian"])
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                   help="combine the runs of earlier result files (e.g. one per kind, run in parallel) and exit")
    p.add_argument("--out", default=str(ROOT / "results" / "factor_vae_sources.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    s = dict(SETTINGS)
    runs, t0 = [], time.perf_counter()
    if args.merge:
        parts = [json.loads(Path(f).read_text()) for f in args.merge]
        runs = [r for part in parts for r in part["runs"]]
        args.seeds = sorted({r["seed"] for r in runs})
        args.steps = parts[0]["steps"]
        t0 -= sum(part["total_seconds"] for part in parts)
    for kind in ([] if args.merge else args.kinds):
        for name in ("VAE", "FactorVAE"):
            for seed in args.seeds:
                r = run_one(kind, name, seed, args.steps, s)
                runs.append(r)
                print(f"{kind:8s} {name:9s} seed {seed}: rotation {r['angle_deg']:5.1f} deg, MIG {r['mig']:.3f}, "
                      f"ELBO {r['elbo']:.2f}, {r['seconds']:.0f} s", flush=True)
    summary = {}
    for kind in sorted({r["kind"] for r in runs}, reverse=True):
        for name in ("VAE", "FactorVAE"):
            rs = [r for r in runs if r["kind"] == kind and r["model"] == name]
            a, m = np.array([r["angle_deg"] for r in rs]), np.array([r["mig"] for r in rs])
            summary[f"{kind}/{name}"] = dict(angle_mean=a.mean(), angle_sd=a.std(ddof=1) if len(a) > 1 else None,
                                             mig_mean=m.mean(), mig_sd=m.std(ddof=1) if len(m) > 1 else None,
                                             n_seeds=len(rs))
    result = dict(script="benchmarks/factor_vae_sources.py", settings=s, steps=args.steps, seeds=args.seeds,
                  data="vae_core.data.sources.mixed_sources (synthetic; n=4000 training points)",
                  sample_count=s["n"], total_seconds=round(time.perf_counter() - t0, 1),
                  machine=platform.platform(), torch=torch.__version__, runs=runs, summary=summary)
    with atomic_write(args.out, "w") as f:
        json.dump(result, f, indent=1, default=float)
    print(json.dumps(summary, indent=1, default=float))
    return result


if __name__ == "__main__":
    main()
