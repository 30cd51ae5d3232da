"""One epoch of ``vae_core.fit`` against the common tutorial training loop, side by side.

Both train the same 784-400-20 Bernoulli VAE (tanh MLPs, analytic KL, one sample, Adam, batch 128)
for one epoch over 60,000 images (Fashion-MNIST from Debian's ``dataset-fashion-mnist``; falls back
to MNIST/digits tiled to 60,000 images, with a note). The tutorial loop is the usual pattern: a
map-style ``Dataset`` that converts one uint8 image per item and a ``DataLoader`` that collates them.

It prints the median epoch time of each (runs interleaved), their ratio, and the fraction of this
machine's fp32 matrix-multiply throughput that ``fit`` reaches (model FLOPs per second divided by
the GFLOP/s of a large square ``torch.mm``).

    python benchmarks/train_throughput.py [--repeats 3] [--threads N] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vae_core import VAE, data, fit

BATCH = 128
N = 60_000


def load_uint8():
    """60,000 training images as a uint8 array (N, 784) and a description of the source."""
    try:
        ds = data.load("fashion-mnist", "train", download=False)
        source = f"Fashion-MNIST ({ds.source})"
    except (data.DataUnavailableError, ValueError):
        try:
            ds = data.load("mnist", "train", download=False)
        except (data.DataUnavailableError, ValueError):
            ds = data.load("digits", "train")
        source = f"{ds.name} tiled to {N} images (install dataset-fashion-mnist for the real thing)"
    x = (ds.x * 255).round().to(torch.uint8).numpy()
    if len(x) < N:
        x = np.resize(x, (N, x.shape[1]))
    return x[:N], source


class TutorialDataset(Dataset):
    """The map-style pattern: one image at a time, converted to float when indexed."""

    def __init__(self, images: np.ndarray):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return torch.from_numpy(self.images[i]).float() / 255.0


def tutorial_epoch(model, images, seed):
    torch.manual_seed(seed)
    loader = DataLoader(TutorialDataset(images), batch_size=BATCH, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for x in loader:
        loss = -model.elbo(x).elbo.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def fit_epoch(model, x_float, seed):
    fit(model, x_float, epochs=1, batch_size=BATCH, lr=1e-3, seed=seed, progress=False, device="cpu")


def model_flops_per_example(model) -> float:
    """Multiply-adds of the Linear layers ×2, forward + backward ≈ 3× forward."""
    macs = sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))
    return 3 * 2 * macs


def matmul_gflops(n=2048, repeats=5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None)
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads for both loops and the peak (default: PyTorch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    images, source = load_uint8()
    x_float = torch.from_numpy(images).float() / 255.0
    print(f"data: {source}; {len(images)} images; torch {torch.__version__}, {torch.get_num_threads()} threads")

    peak_before = matmul_gflops()
    t_fit, t_tut = [], []
    for r in range(args.repeats):  # interleaved so both see the same machine state
        torch.manual_seed(0)
        m = VAE(784, 20, (400,))
        t = time.perf_counter(); fit_epoch(m, x_float, r); t_fit.append(time.perf_counter() - t)
        torch.manual_seed(0)
        m = VAE(784, 20, (400,))
        t = time.perf_counter(); tutorial_epoch(m, images, r); t_tut.append(time.perf_counter() - t)
        print(f"  run {r + 1}: fit {t_fit[-1]:.2f} s   tutorial loop {t_tut[-1]:.2f} s")
    peak_after = matmul_gflops()
    peak = max(peak_before, peak_after)

    med_fit, med_tut = statistics.median(t_fit), statistics.median(t_tut)
    flops = model_flops_per_example(VAE(784, 20, (400,))) * len(images)
    achieved = flops / med_fit / 1e9
    result = {
        "source": source, "images": len(images), "batch_size": BATCH,
        "fit_epoch_s_median": med_fit, "tutorial_epoch_s_median": med_tut,
        "speedup": med_tut / med_fit,
        "matmul_peak_gflops": peak, "fit_gflops": achieved, "fraction_of_peak": achieved / peak,
        "fit_epoch_s": t_fit, "tutorial_epoch_s": t_tut,
    }
    print(f"median epoch: fit {med_fit:.2f} s, tutorial loop {med_tut:.2f} s -> fit is {med_tut / med_fit:.2f}x faster")
    print(f"fp32 matmul peak (2048^2 torch.mm): {peak:.1f} GFLOP/s; fit reaches {achieved:.1f} GFLOP/s "
          f"= {100 * achieved / peak:.0f}% of it")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
