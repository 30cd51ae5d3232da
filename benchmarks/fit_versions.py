"""``fit`` of two versions of vae_core, side by side: one epoch each, runs interleaved.

Each source folder is a checkout of the project (e.g. a ``git worktree`` of an older commit). For
every repeat, each version trains the same 784-400-20 Bernoulli VAE (tanh, analytic KL, one sample,
Adam, batch 128) for one epoch over the same 60,000 images in a fresh subprocess, alternating the
order, so both see the same machine state. Prints the median epoch time of each and their ratio.

    git worktree add --detach /tmp/vae-before <commit>
    python benchmarks/fit_versions.py --before /tmp/vae-before --after . [--repeats 5] [--threads 2]
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
from vae_core import VAE, fit, data
try:
    x = data.load("fashion-mnist", "train", download=False).x
except Exception:
    x = data.load("digits", "train").x
    x = torch.nn.functional.interpolate(x.view(-1, 1, 8, 8), size=(28, 28)).view(len(x), -1)
x = x.repeat(60_000 // len(x) + 1, 1)[:60_000].contiguous()
torch.manual_seed(0)
m = VAE(784, 20, (400,))
t = time.perf_counter()
fit(m, x, epochs=1, batch_size=128, lr=1e-3, seed=0, progress=False, device="cpu")
print(time.perf_counter() - t, vae_core.__file__)
"""


def run(src: Path, threads: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(src.resolve()))
    out = subprocess.run([sys.executable, "-c", CHILD, str(threads)], env=env, capture_output=True, cwd=src,
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
    p.add_argument("--json", default=None)
    args = p.parse_args()
    times = {"before": [], "after": []}
    for r in range(args.repeats):
        order = ("before", "after") if r % 2 == 0 else ("after", "before")
        for name in order:
            times[name].append(run(getattr(args, name), args.threads))
        print(f"  run {r + 1}: before {times['before'][-1]:.2f} s   after {times['after'][-1]:.2f} s")
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"median epoch: before {med['before']:.2f} s, after {med['after']:.2f} s; "
          f"after/before = {med['after'] / med['before']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"times": times, "median": med}, indent=2))


if __name__ == "__main__":
    main()
