r"""A hand-derived training step for the MLP VAE of chapter 6, which :func:`vae_core.fit` uses where it applies.

One step of the VAE's loss, :math:`-\frac1B\sum_b\big(\frac1L\sum_l\log p(x_b|z_{lb}) - \beta\,
\mathrm{KL}(q(z|x_b)\,\|\,\mathcal N(0,I))\big)`, written as matrix products and in-place elementwise
updates on buffers allocated once per batch shape, forward and backward, with the gradient of every
weight written straight into its ``.grad``. The gradients are those of autograd (checked in float64 to
1e-10 in ``tests/test_fused.py``); they cost the same matrix products, but no graph, fewer passes over
memory and no per-step allocation.

The backward pass, layer by layer (:math:`a_0=x`, :math:`a_i=h(a_{i-1}W_i^\top+b_i)`):

* Bernoulli decoder: :math:`\partial/\partial\ell = (\sigma(\ell)-x)/(BL)`; Gaussian decoder with
  mean :math:`m` and clamped log-variance :math:`v=10\tanh(s/10)`:
  :math:`\partial/\partial m = -(x-m)e^{-v}/(BL)`, :math:`\partial/\partial s =
  \tfrac12(1-(x-m)^2e^{-v})(1-(v/10)^2)/(BL)`;
* a linear layer: :math:`\nabla W = \delta^\top a`, :math:`\nabla b = \sum_n\delta_n`,
  :math:`\delta_{\text{below}} = (\delta W)\odot h'`, with :math:`h' = 1-a^2` (tanh) or
  :math:`[a>0]` (ReLU);
* the reparameterization :math:`z=\mu+e^{v/2}\varepsilon`, with the KL's own gradient added:
  :math:`\partial/\partial\mu = \sum_l\delta_z + \beta\mu/B`,
  :math:`\partial/\partial v = \sum_l\delta_z\odot\varepsilon\,\tfrac12e^{v/2} + \tfrac\beta2(e^v-1)/B`,
  then through the clamp :math:`v = 10\tanh(r/10)`.

:func:`why_not` says, for any model, why the fused step does not apply (``None`` when it does):
the exact class :class:`~vae_core.models.vae.VAE` (a subclass may change the loss), the analytic KL,
``tanh`` or ``relu`` layers, float32 or float64, every parameter trainable, and no hooks.
"""
from __future__ import annotations

import torch
from torch import nn

from .models.base import Batch, Output

__all__ = ["why_not", "FusedVAEStep"]

_ACTIVATIONS = {nn.Tanh: "tanh", nn.ReLU: "relu"}
_BOUND = 10.0   # nets.LOGVAR_BOUND: log-variances are 10 tanh(raw / 10)
_LOG_2PI = 1.8378770664093453


def _layers(net: nn.Sequential):
    """``[(linear, activation name or None)]`` of an ``nets.mlp``, or a reason why it is not one."""
    mods = list(net)
    if not mods or len(mods) % 2 != 1:
        return f"its network has {len(mods)} modules, not Linear, activation, ..., Linear"
    out = []
    for i in range(0, len(mods), 2):
        lin = mods[i]
        if type(lin) is not nn.Linear or lin.bias is None:
            return f"module {i} of its network is {type(lin).__name__}, not a Linear layer with a bias"
        act = None
        if i + 1 < len(mods):
            act = _ACTIVATIONS.get(type(mods[i + 1]))
            if act is None:
                return f"its activation {type(mods[i + 1]).__name__} is not tanh or relu"
        out.append((lin, act))
    return out


def why_not(model) -> str | None:
    """``None`` when :class:`FusedVAEStep` computes ``model``'s loss and gradients; otherwise why not."""
    from .models.vae import VAE
    if type(model) is not VAE:
        return f"{type(model).__name__} is not the plain VAE (its loss may differ)"
    if model.kl_estimator != "analytic":
        return f"the KL is estimated by {model.kl_estimator!r}, not in closed form"
    for name, net in (("encoder", model.encoder.net), ("decoder", model.decoder.net)):
        layers = _layers(net)
        if isinstance(layers, str):
            return f"the {name}: {layers}"
    params = list(model.parameters())
    if not all(p.requires_grad for p in params):
        return "some parameters are frozen"
    dtypes = {p.dtype for p in params}
    if len(dtypes) != 1 or next(iter(dtypes)) not in (torch.float32, torch.float64):
        return f"its parameters are {sorted(map(str, dtypes))}, not all float32 or all float64"
    if len({p.device for p in params}) != 1:
        return "its parameters are on more than one device"
    for m in model.modules():
        if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or getattr(m, "_backward_pre_hooks", None):
            return f"a hook is registered on {type(m).__name__}"
    if any(p._backward_hooks for p in params if getattr(p, "_backward_hooks", None)):
        return "a gradient hook is registered on a parameter"
    if nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks:
        return "a global module hook is registered"
    return None


class _MLP:
    """Forward and backward of one ``nets.mlp`` on buffers kept per input size."""

    def __init__(self, net: nn.Sequential):
        self.layers = _layers(net)
        self._buf: dict = {}

    def buffers(self, n: int, like: torch.Tensor) -> list[torch.Tensor]:
        """The outputs of every layer for ``n`` inputs (the last is the network's output)."""
        if n not in self._buf:
            self._buf[n] = [like.new_empty(n, lin.out_features) for lin, _ in self.layers]
            self._buf[n + 0.5] = [like.new_empty(n, lin.out_features) for lin, _ in self.layers]   # deltas
        return self._buf[n]

    def forward(self, a: torch.Tensor) -> list[torch.Tensor]:
        outs = self.buffers(len(a), a)
        for (lin, act), out in zip(self.layers, outs):
            torch.addmm(lin.bias, a, lin.weight.t(), out=out)
            if act == "tanh":
                out.tanh_()
            elif act == "relu":
                out.relu_()
            a = out
        return outs

    def backward(self, a0: torch.Tensor, outs: list[torch.Tensor], delta: torch.Tensor,
                 grad_input: torch.Tensor | None = None) -> None:
        """``delta`` is d(loss)/d(output); accumulates nothing: writes every weight's ``.grad``.
        When ``grad_input`` is given, d(loss)/d(input) is written into it."""
        deltas = self._buf[len(a0) + 0.5]
        for i in range(len(self.layers) - 1, -1, -1):
            lin, _ = self.layers[i]
            a_below = outs[i - 1] if i > 0 else a0
            torch.mm(delta.t(), a_below, out=lin.weight.grad)
            torch.sum(delta, 0, out=lin.bias.grad)
            if i > 0:
                below = deltas[i - 1]
                torch.mm(delta, lin.weight, out=below)
                act = self.layers[i - 1][1]
                a = outs[i - 1]
                if act == "tanh":       # h' = 1 - a^2
                    below.addcmul_(below, a * a, value=-1.0)
                else:                   # relu: h' = [a > 0]
                    below.mul_(a > 0)
                delta = below
            elif grad_input is not None:
                torch.mm(delta, lin.weight, out=grad_input)


class FusedVAEStep:
    """The loss of a :class:`~vae_core.models.vae.VAE` and its gradients in one call.

    ``step(x, generator)`` draws the model's noise exactly as :meth:`VAE.loss` does (one
    ``torch.randn((L, B, d))`` from ``generator``), writes the gradient of the loss into every
    parameter's ``.grad`` (replacing what was there) and returns the same :class:`Output` as
    ``model.loss`` (values without a graph). It reads ``model.beta`` and ``model.n_samples`` at
    every call, so schedules apply. Raises ``ValueError`` when :func:`why_not` gives a reason.
    """

    def __init__(self, model):
        reason = why_not(model)
        if reason is not None:
            raise ValueError(f"the fused VAE step does not apply: {reason}; train with model.loss instead.")
        self.model = model
        self.enc = _MLP(model.encoder.net)
        self.dec = _MLP(model.decoder.net)
        self.d = model.latent_dim
        self.gaussian = model.likelihood == "gaussian"
        self._buf: dict = {}

    def _grads(self) -> None:
        for p in self.model.parameters():
            if p.grad is None or p.grad.shape != p.shape:
                p.grad = torch.zeros_like(p)

    def check(self, x: torch.Tensor) -> None:
        """The checks :meth:`VAE.loss` makes on every batch, for a whole epoch at once: shape ``(N, D)``,
        finite, the model's dtype, and pixels in [0, 1] for a Bernoulli decoder."""
        Batch(x)
        dtype = next(self.model.parameters()).dtype
        if x.shape[1] != self.model.input_dim or x.dtype != dtype:
            raise ValueError(f"x must have shape (N, {self.model.input_dim}) and dtype {dtype} like the model's "
                             f"weights, got {tuple(x.shape)} {x.dtype}.")
        if not self.gaussian and x.numel():
            lo, hi = torch.aminmax(x)
            if lo < 0 or hi > 1:
                raise ValueError(
                    f"a Bernoulli likelihood needs pixels in [0, 1], got values in [{lo.item():.3g}, {hi.item():.3g}]; "
                    f"rescale the data (e.g. x / 255) or use likelihood='gaussian' for real-valued data.")

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Output:
        model = self.model
        B, D = x.shape
        L, d, beta = int(model.n_samples), self.d, float(model.beta)
        N = L * B
        self._grads()
        # ---- forward: encoder, reparameterization, decoder
        enc_outs = self.enc.forward(x)
        o = enc_outs[-1]
        mu, raw = o[:, :d], o[:, d:]
        lv = torch.tanh(raw / _BOUND).mul_(_BOUND)                            # soft-clamped log-variance
        std = torch.exp(0.5 * lv)
        eps = torch.randn((L, B, d), generator=generator, dtype=x.dtype, device=x.device)
        z = torch.addcmul(mu, std, eps)                                        # (L, B, d)
        zf = z.view(N, d)
        dec_outs = self.dec.forward(zf)
        out = dec_outs[-1]
        inv = 1.0 / N
        key = (B, L)
        if key not in self._buf:
            self._buf[key] = (x.new_empty(N, out.shape[1]), x.new_empty(N, d))
        d_out, d_z = self._buf[key]
        xl = x.expand(L, B, D)
        if not self.gaussian:
            logits = out.view(L, B, D)
            p = torch.sigmoid(out, out=d_out).view(L, B, D)
            # log p(x|z) = sum x l - softplus(l), with softplus(l) = relu(l) - log max(p, 1 - p) from the
            # sigmoid the gradient needs anyway (as accurate as the cross-entropy, and one transcendental less)
            recon = ((xl * logits).sum(-1) - logits.relu().sum(-1)
                     + torch.maximum(p, 1.0 - p).log_().sum(-1)).mean(0)
            p.sub_(xl).mul_(inv)                                                       # (sigmoid(l) - x) / N
        else:
            m, s = out[:, :D], out[:, D:]
            v = torch.tanh(s / _BOUND).mul_(_BOUND)
            prec = torch.exp(-v)
            r = xl.reshape(N, D) - m                                                   # x - m
            r2p = r * r * prec
            recon = (-0.5 * (_LOG_2PI + v + r2p)).sum(-1).view(L, B).mean(0)
            torch.mul(r, prec, out=d_out[:, :D]).mul_(-inv)                            # -(x - m) e^-v / N
            dv = (1.0 - r2p).mul_(0.5 * inv)
            dv.mul_(1.0 - (v / _BOUND) ** 2)
            d_out[:, D:].copy_(dv)
        var = lv.exp()
        kl = 0.5 * (mu * mu + var - 1.0 - lv).sum(-1)
        elbo = recon - kl
        loss = -(recon - beta * kl).mean()
        # ---- backward: decoder, reparameterization + KL, encoder
        self.dec.backward(zf, dec_outs, d_out, grad_input=d_z)
        dz = d_z.view(L, B, d)
        d_o = self.enc._buf[B + 0.5][-1]
        d_mu, d_raw = d_o[:, :d], d_o[:, d:]
        torch.sum(dz, 0, out=d_mu) if L > 1 else d_mu.copy_(dz[0])
        d_mu.add_(mu, alpha=beta / B)
        dlv = (dz * eps).sum(0).mul_(std).mul_(0.5)
        dlv.add_(var - 1.0, alpha=0.5 * beta / B)
        d_raw.copy_(dlv.mul_(1.0 - (lv / _BOUND) ** 2))
        self.enc.backward(x, enc_outs, d_o)
        return Output(loss=loss, elbo=elbo, terms={"recon": recon, "kl": kl})
