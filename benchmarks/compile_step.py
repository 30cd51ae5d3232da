"""``torch.compile`` as a lever for the 784-400-20 VAE step, against fit's fused step, in one process.

The compiled function is the VAE's loss from its own networks (encoder, reparameterization, decoder,
Bernoulli cross-entropy, analytic KL) with the noise passed in, so no generator or input check
breaks the graph; backward runs through the compiled graph (AOT autograd). Both cases take the
fused Adam update (``torch.optim.Adam(fused=True)`` for the compiled one; the kernel called directly,
as fit does, for the fused one). Reports the compilation time (first call, which a notebook pays in
every fresh kernel) and the step times, interleaved, median and range over ``--repeats`` rounds.

    python benchmarks/compile_step.py [--threads 2] [--repeats 9] [--json benchmarks/results/compile_step.json]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from fused_step import interleaved, report   # this folder's step benchmark: its timing loop and report


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from vae_core import VAE
    from vae_core.fused import FusedVAEStep
    from vae_core.train import _DirectAdam, make_optimizer

    B = args.batch
    torch.manual_seed(0)
    x = (torch.rand(B, 784) < 0.3).float()
    gen = torch.Generator().manual_seed(0)
    compiled_model = VAE(784, 20, (400,))
    fused_model = VAE(784, 20, (400,))
    fused_model.load_state_dict(compiled_model.state_dict())
    opt_c = make_optimizer(compiled_model.parameters())
    direct = _DirectAdam(make_optimizer(fused_model.parameters()))
    fused = FusedVAEStep(fused_model)
    enc, dec = compiled_model.encoder, compiled_model.decoder

    def loss_fn(xb, eps):
        mu, logvar = enc(xb)
        logits = dec(mu + torch.exp(0.5 * logvar) * eps)
        recon = -torch.nn.functional.binary_cross_entropy_with_logits(logits, xb, reduction="none").sum(-1)
        kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum(-1)
        return -(recon - kl).mean()

    t = time.perf_counter()
    compiled = torch.compile(loss_fn)
    compiled(x, torch.randn(B, 20)).backward()
    opt_c.step()
    compile_s = time.perf_counter() - t

    def compiled_step():
        opt_c.zero_grad(set_to_none=True)
        compiled(x, torch.randn(B, 20, generator=gen)).backward()
        opt_c.step()

    def fit_step():
        fused(x, gen)
        direct.step()

    cases = {"compiled": compiled_step, "fit_step": fit_step}
    for f in cases.values():
        for _ in range(5):
            f()
    times = interleaved(cases, args.repeats, {k: args.steps for k in cases})
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {"settings": {"threads": args.threads, "batch": B, "repeats": args.repeats, "steps": args.steps,
                           "torch": torch.__version__},
              "compile_and_first_step_s": compile_s,
              "seconds": {k: {"median": med[k], "min": min(v), "max": max(v)} for k, v in times.items()},
              "compiled_over_fit_step": med["compiled"] / med["fit_step"]}
    print(f"torch.compile: {compile_s:.1f} s to compile and take the first step")
    report(cases, times, med, args.json, result)
    print(f"  compiled / fit's step = {result['compiled_over_fit_step']:.2f}")
    return result


if __name__ == "__main__":
    main()
