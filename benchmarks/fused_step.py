"""One training step of the 784-400-20 VAE: autograd against the fused step, and how close each is to
the machine's matrix-multiply peak.

Times, interleaved in one process (round robin over ``--repeats`` rounds of ``--steps`` calls each;
medians and ranges over the rounds):

* ``autograd``  ``model.loss`` + ``backward()`` + the fused Adam step (fit with ``fused=False``)
* ``fused``     :class:`vae_core.fused.FusedVAEStep` + the same ``opt.step()``
* ``fit_step``  :class:`vae_core.fused.FusedVAEStep` + the fused Adam kernel called directly on the
  optimizer's state (what fit does by default: ``vae_core.train._DirectAdam``)
* ``adam``      the Adam step alone, ``opt.step()``
* ``adam_direct`` the Adam kernel alone, as fit calls it
* ``gemms``     the five large matrix products the step cannot avoid, on buffers of the same shapes
  (encoder layer 1 and decoder output forward; decoder-output weight and input gradients; encoder
  layer-1 weight gradient): the floor of any implementation using these GEMMs
* ``peak``      a 1024 x 1024 x 1024 float32 product, the machine's GEMM throughput

The fraction of peak of a step is (matmul FLOPs of the step) / (its time) / (peak FLOP/s); the matmul
FLOPs count every product of the step, the small 400-40 and 20-400 ones included.

    python benchmarks/fused_step.py [--threads 2] [--batch 128] [--repeats 9] [--json benchmarks/results/fused_step.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch


def interleaved(cases: dict, repeats: int, calls: dict) -> dict:
    """``{name: [seconds per call, one per round]}``: ``repeats`` rounds over ``cases`` (callables),
    ``calls[name]`` calls each, the order rotated by one case every round."""
    times = {k: [] for k in cases}
    names = list(cases)
    for r in range(repeats):
        for k in names[r % len(names):] + names[:r % len(names)]:
            t = time.perf_counter()
            for _ in range(calls[k]):
                cases[k]()
            times[k].append((time.perf_counter() - t) / calls[k])
    return times


def report(cases, times: dict, med: dict, json_path, result: dict) -> None:
    """Print each case's median and range in ms, and write ``result`` to ``json_path`` (when given)."""
    for k in cases:
        print(f"  {k:11s} {med[k] * 1e3:8.3f} ms  (range {min(times[k]) * 1e3:.3f}-{max(times[k]) * 1e3:.3f})")
    if json_path:
        from vae_core.data.files import atomic_write
        with atomic_write(Path(json_path), "w") as f:
            f.write(json.dumps(result, indent=2) + "\n")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--steps", type=int, default=20, help="calls per round")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from vae_core import VAE
    from vae_core.fused import FusedVAEStep
    from vae_core.models.base import Batch
    from vae_core.train import _DirectAdam, make_optimizer

    B, D, H, d = args.batch, 784, 400, 20
    torch.manual_seed(0)
    model = VAE(D, d, (H,))
    opt = make_optimizer(model.parameters())
    x = (torch.rand(B, D) < 0.3).float()
    gen = torch.Generator().manual_seed(0)
    step = FusedVAEStep(model)

    def autograd():
        out = model.loss(Batch(x), generator=gen)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()

    def fused():
        step(x, gen)
        opt.step()

    direct = _DirectAdam(opt)

    def fit_step():
        step(x, gen)
        direct.step()

    W1, W4 = torch.randn(H, D), torch.randn(D, H)
    h, d4, d1 = torch.randn(B, H), torch.randn(B, D), torch.randn(B, H)
    o1, o4, g1, g4 = torch.empty(B, H), torch.empty(B, D), torch.empty(H, D), torch.empty(D, H)

    def gemms():
        torch.mm(x, W1.t(), out=o1)
        torch.mm(h, W4.t(), out=o4)
        torch.mm(d4.t(), h, out=g4)
        torch.mm(d4, W4, out=o1)
        torch.mm(d1.t(), x, out=g1)

    big = torch.randn(1024, 1024)
    bo = torch.empty(1024, 1024)

    def peak():
        torch.mm(big, big, out=bo)

    cases = {"autograd": autograd, "fused": fused, "fit_step": fit_step, "adam": opt.step,
             "adam_direct": direct.step, "gemms": gemms, "peak": peak}
    calls = {k: max(1, args.steps // 5) if k == "peak" else args.steps for k in cases}
    for f in cases.values():   # warm up
        for _ in range(3):
            f()
    times = interleaved(cases, args.repeats, calls)
    med = {k: statistics.median(v) for k, v in times.items()}
    peak_flops = 2 * 1024 ** 3 / med["peak"]
    big5 = 5 * 2 * B * D * H
    step_flops = big5 + 2 * B * (H * 2 * d) * 2 + 2 * B * (d * H) * 3   # + encoder head (fwd, 2 bwd) + decoder layer 1
    result = {
        "settings": {"threads": args.threads, "batch": B, "sizes": [D, H, d], "repeats": args.repeats,
                     "steps": args.steps, "torch": torch.__version__, "machine": platform.processor() or platform.machine()},
        "seconds": {k: {"median": med[k], "min": min(v), "max": max(v)} for k, v in times.items()},
        "peak_gflops": peak_flops / 1e9,
        "fraction_of_peak": {k: step_flops / med[k] / peak_flops for k in ("autograd", "fused", "fit_step")},
        "gemm_floor_fraction": big5 / med["gemms"] / peak_flops,
        "autograd_over_fused": med["autograd"] / med["fused"],
        "autograd_over_fit_step": med["autograd"] / med["fit_step"],
        "epoch_seconds_60k": {k: med[k] * -(-60_000 // B) for k in ("autograd", "fused", "fit_step")},
    }
    print(f"threads {args.threads}, batch {B}: peak {result['peak_gflops']:.1f} GFLOP/s")
    fr = result["fraction_of_peak"]
    report(cases, times, med, args.json, result)
    print(f"  fraction of peak: autograd {fr['autograd']:.2f}, fused {fr['fused']:.2f}, fit's step "
          f"{fr['fit_step']:.2f} (the five GEMMs alone: {result['gemm_floor_fraction']:.2f}); "
          f"autograd / fit's step = {result['autograd_over_fit_step']:.2f}")
    return result


if __name__ == "__main__":
    main()
