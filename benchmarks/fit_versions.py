"""``fit`` of two versions of vae_core, side by side: one epoch each, runs interleaved.

Each source folder is a checkout of the project (e.g. a ``git worktree`` of an older commit). For
every repeat, each version trains the same model (``--models``; by default the 784-400-20 Bernoulli
VAE: tanh, analytic KL, one sample; any other of ``vae_core.models.MODELS`` at its default sizes, with
the labels for CVAE and M2) with Adam, batch 128, for one epoch over the same images (60,000 by
default) in a fresh subprocess, alternating the order, so both see the same machine state. Prints the median epoch time of each and their ratio.

    git worktree add --detach /tmp/vae-before <commit>
    python benchmarks/fit_versions.py --before /tmp/vae-before --after . [--repeats 5] [--threads 2]
    python benchmarks/fit_versions.py --before /tmp/vae-before --models VAE,IWAE,CVAE,LadderVAE --examples 20000
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
import vae_core
from vae_core import fit, data
from vae_core.models import MODELS
name, n = sys.argv[2], int(sys.argv[3])
try:
    ds = data.load("fashion-mnist", "train", download=False)
    x, y = ds.x, ds.y
except Exception:
    ds = data.load("digits", "train")
    x = torch.nn.functional.interpolate(ds.x.view(-1, 1, 8, 8), size=(28, 28)).view(len(ds.x), -1)
    y = ds.y
reps = n // len(x) + 1
x, y = x.repeat(reps, 1)[:n].contiguous(), y.repeat(reps)[:n].contiguous()
torch.manual_seed(0)
m = MODELS[name](input_dim=784, latent_dim=20) if name != "VAE" else MODELS[name](784, 20, (400,))
train = (x, y) if name in ("CVAE", "M2") else x
torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])   # the first torch.optim use imports torch._dynamo
t = time.perf_counter()                                   # (seconds, once a process): not part of an epoch
fit(m, train, epochs=1, batch_size=128, lr=1e-3, seed=0, progress=False, device="cpu")
print(time.perf_counter() - t, vae_core.__file__)
"""


def run(src: Path, threads: int, model: str = "VAE", n: int = 60_000) -> float:
    env = dict(os.environ, PYTHONPATH=str(src.resolve()))
    out = subprocess.run([sys.executable, "-c", CHILD, str(threads), model, str(n)], env=env, capture_output=True, cwd=src,
                         text=True, check=True).stdout.split()
    if not out[1].startswith(str(src.resolve())):
        raise RuntimeError(f"imported {out[1]}, not the copy in {src}")
    return float(out[0])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", required=True, type=Path, help="checkout of the old version")
    p.add_argument("--after", default=Path("."), type=Path, help="checkout of the new version (default .)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models", default="VAE",
                   help="comma-separated names of vae_core.models.MODELS (default VAE); CVAE and M2 get the labels")
    p.add_argument("--examples", type=int, default=60_000, help="training images per epoch (default 60,000)")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    report = {}
    for model in args.models.split(","):
        times = {"before": [], "after": []}
        for r in range(args.repeats):
            order = ("before", "after") if r % 2 == 0 else ("after", "before")
            for name in order:
                times[name].append(run(getattr(args, name), args.threads, model, args.examples))
            print(f"  {model} run {r + 1}: before {times['before'][-1]:.2f} s   after {times['after'][-1]:.2f} s")
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{model}: median epoch before {med['before']:.2f} s, after {med['after']:.2f} s; "
              f"after/before = {med['after'] / med['before']:.3f}")
        report[model] = {"times": times, "median": med, "ratio": med["after"] / med["before"]}
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "examples": args.examples,
                                               "models": report}, indent=2))


if __name__ == "__main__":
    main()
