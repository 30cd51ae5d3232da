"""A VAE whose decoder is linear-Gaussian, so log p(x) and p(z|x) are exact (test helper).

Decoder x = W z + b + sigma * eps with orthogonal columns of W, so the exact posterior
N(Lambda^{-1} W^T (x - b) / sigma^2, Lambda^{-1}), Lambda = I + W^T W / sigma^2, is diagonal
and a diagonal-Gaussian encoder can represent it exactly.
"""
import math

import torch
from torch.distributions import MultivariateNormal

from vae_core import VAE
from vae_core.nets import LOGVAR_BOUND


def _raw(logvar):  # inverse of the encoder's soft clamp
    return LOGVAR_BOUND * torch.atanh(torch.as_tensor(logvar) / LOGVAR_BOUND)


def make(D=3, d=2, sigma=0.5, encoder_shift=0.0, encoder_logvar_shift=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(D, d, generator=g))
    W = Q * torch.tensor([1.5, 0.7][:d] + [1.0] * max(0, d - 2))
    b = torch.randn(D, generator=g)
    s2 = sigma ** 2
    lam = 1 + (W ** 2).sum(0) / s2            # diagonal of Lambda
    post_var = 1 / lam
    A = (W / s2).T * post_var[:, None]        # posterior mean = A (x - b)
    model = VAE(D, d, hidden_dims=(), likelihood="gaussian")
    with torch.no_grad():
        enc = model.encoder.net[0]
        enc.weight.zero_()
        enc.weight[:d] = A
        enc.bias[:d] = -A @ b + encoder_shift
        enc.bias[d:] = _raw(post_var.log() + encoder_logvar_shift)
        dec = model.decoder.net[0]
        dec.weight.zero_()
        dec.weight[:D] = W
        dec.bias[:D] = b
        dec.bias[D:] = _raw(torch.full((D,), math.log(s2)))
    evidence = MultivariateNormal(b, W @ W.T + s2 * torch.eye(D))
    return model, evidence
