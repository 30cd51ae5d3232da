r"""The Ladder VAE (Sønderby et al., 2016): a hierarchy of latent layers inferred top-down.

Generative model, top to bottom, with :math:`L` latent layers (:math:`z_1` nearest the data):

.. math:: p(z_L) = \mathcal N(0, I), \quad p(z_i|z_{i+1}) = \mathcal N(\mu_{p,i}(z_{i+1}), \sigma^2_{p,i}(z_{i+1})),
          \quad p(x|z_1).

Inference: a deterministic bottom-up pass :math:`d_1 = f_1(x),\ d_i = f_i(d_{i-1})` gives a
Gaussian "likelihood" term :math:`(\hat\mu_i, \hat\sigma^2_i)` per layer; then a top-down pass
samples :math:`z_L \sim q(z_L|x) = \mathcal N(\hat\mu_L, \hat\sigma^2_L)` and, for :math:`i < L`,

.. math:: q(z_i|z_{i+1}, x) = \mathcal N(\mu_{q,i}, \sigma^2_{q,i}), \qquad
          (\mu_{q,i}, \sigma^2_{q,i}) = \text{precision-weighted}\big((\hat\mu_i, \hat\sigma^2_i),
          (\mu_{p,i}(z_{i+1}), \sigma^2_{p,i}(z_{i+1}))\big)

(:func:`~vae_core.distributions.precision_weighted`): the posterior merges what the data says with
what the layer above predicts, through the *same* top-down networks as the generative model.

Two baselines share the generative model and change only the inference network (``inference=``):
``"bottom-up"``, the *stochastic* bottom-up hierarchy of Sønderby et al.'s Fig. 1a (and of Burda et al.'s
two-layer VAEs), :math:`q(z_1|x)\,q(z_2|z_1)\cdots q(z_L|z_{L-1})`, each layer's Gaussian computed from the
*sample* of the layer below; and ``"mean-field"``, every layer's Gaussian read off one deterministic upward
pass, :math:`q(z_i|x) = \mathcal N(\hat\mu_i, \hat\sigma^2_i)`, independent given x.

ELBO, with each layer's KL taken against its **top-down prior** (never the bottom-up Gaussian):

.. math:: \mathcal L = \mathbb E_q[\log p(x|z_1)] - \mathrm{KL}(q(z_L|x)\,\|\,p(z_L))
          - \sum_{i<L} \mathbb E_{q(z_{i+1}|\cdot)}\Big[\mathrm{KL}\big(q(z_i|z_{i+1},x)\,\|\,p(z_i|z_{i+1})\big)\Big].
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import nn

from .._validate import check_hidden, check_positive_int
from ..distributions import (gaussian_log_prob, kl_normal_normal, kl_normal_standard, precision_weighted,
                             standard_normal_log_prob)
from ..estimators import reparameterize
from ..nets import ACTIVATIONS, DECODERS, GaussianMLP, soft_clamp
from ..priors import StandardNormal
from .base import Batch, LatentVariableModel, Output
from .vae import LIKELIHOODS

__all__ = ["LadderVAE", "Layer", "INFERENCE"]

INFERENCE = ("top-down", "bottom-up", "mean-field")


class Layer(NamedTuple):
    r"""One latent layer of a top-down pass: the sample ``z`` ``(S, B, d_i)``, the Gaussian
    ``(mu, logvar)`` of :math:`q` it was drawn from, and ``(mu_p, logvar_p)`` of its top-down prior
    :math:`p(z_i|z_{i+1})` (``None`` for the top layer, whose prior is :math:`\mathcal N(0, I)`).
    ``closed_form`` is False where the layer above was sampled *given this layer's sample* (stochastic
    bottom-up inference): :math:`z_{i+1}` then depends on :math:`z_i`, so the layer's term
    :math:`\mathbb E_q[\log q(z_i|z_{i-1}) - \log p(z_i|z_{i+1})]` is not a KL between the two Gaussians at a
    fixed :math:`z_{i+1}`, and :meth:`kl` estimates it by the log-ratio at the sample."""
    z: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    mu_p: torch.Tensor | None = None
    logvar_p: torch.Tensor | None = None
    closed_form: bool = True

    def log_ratio(self) -> torch.Tensor:
        r""":math:`\log q(z_i|\cdot) - \log p(z_i|z_{i+1})` at the sample, ``(S, B)``."""
        log_p = (standard_normal_log_prob(self.z) if self.mu_p is None
                 else gaussian_log_prob(self.z, self.mu_p, self.logvar_p))
        return gaussian_log_prob(self.z, self.mu, self.logvar) - log_p

    def kl(self) -> torch.Tensor:
        r"""The layer's KL against its top-down prior in closed form, averaged over the sampled
        :math:`z_{i+1}` (and, for a top layer computed from samples below, over those), ``(B,)``; the
        one-sample log-ratio where no closed form applies (``closed_form=False``)."""
        if not self.closed_form:
            return self.log_ratio().mean(0)
        kl = (kl_normal_standard(self.mu, self.logvar) if self.mu_p is None
              else kl_normal_normal(self.mu, self.logvar, self.mu_p, self.logvar_p))
        return kl.mean(0) if kl.dim() > 1 else kl


class LadderVAE(LatentVariableModel):
    r"""A Ladder VAE with MLP blocks, diagonal Gaussian layers and a Bernoulli or Gaussian decoder.

    Args:
        input_dim: number of pixels D.
        latent_dim: size of the **top** latent layer :math:`z_L`.
        lower_latent_dims: sizes of the layers below the top, from the bottom (:math:`z_1`, nearest
            the data) upwards; ``()`` gives a one-layer model, which is exactly a
            :class:`~vae_core.models.vae.VAE` (same networks, same bound).
        hidden_dims: width of each layer's deterministic block, bottom to top: one int per latent
            layer, or a single int for all. Block :math:`i` is one hidden layer in the bottom-up pass
            (:math:`d_i`), and one in the top-down network :math:`p(z_i|z_{i+1})` (or the decoder for
            :math:`i = 1`).
        likelihood: ``"bernoulli"`` (logits) or ``"gaussian"``.
        activation: ``"tanh"``, ``"relu"``, ``"softplus"`` or ``"elu"``.
        inference: the inference network, with the generative model unchanged:

            * ``"top-down"`` (the Ladder VAE): :math:`q(z_L|x)\prod_{i<L} q(z_i|z_{i+1}, x)`, each lower
              posterior the precision-weighted merge of the bottom-up Gaussian and the top-down prior;
            * ``"bottom-up"``: the *stochastic* bottom-up hierarchy that Sønderby et al. compare with (their
              Fig. 1a), :math:`q(z_1|x)\prod_{i>1} q(z_i|z_{i-1})`: block :math:`i > 1` of the upward pass
              takes the **sample** :math:`z_{i-1}`, so every layer's noise reaches the layers above
              (chapter 15, §15.1). The lower layers' terms are Monte-Carlo log-ratios whatever
              ``kl_estimator`` says (their prior's :math:`z_{i+1}` was sampled given :math:`z_i`); the top
              layer's KL against :math:`\mathcal N(0, I)` is in closed form at the sampled :math:`z_{L-1}`;
            * ``"mean-field"``: every :math:`q(z_i|x) = \mathcal N(\hat\mu_i, \hat\sigma^2_i)` from one
              deterministic upward pass, the layers independent given x. Each lower KL is taken against
              :math:`p(z_i|z_{i+1})` at the sampled :math:`z_{i+1}`.
        merge: the older switch, kept for existing code: ``True`` is ``inference="top-down"``, ``False``
            is ``inference="mean-field"``. Give ``inference`` or ``merge``, not both.

    Settings (:func:`vae_core.fit` may set or schedule them): ``beta`` (the KL warm-up weight of every
    layer's KL), ``n_samples`` and ``kl_estimator`` (``"analytic"``: each layer's KL between the two
    Gaussians in closed form at the sampled :math:`z_{i+1}`; ``"mc"``: :math:`\log q(z_i|\cdot) - \log
    p(z_i|z_{i+1})` at the sampled :math:`z_i`; both estimate the same expectation).

    Terms: ``recon``, ``kl`` (all layers), and ``kl1`` … ``klL`` per layer (``kl1`` the bottom). With
    ``inference="bottom-up"`` a lower layer's term is the expected log-ratio
    :math:`\log q(z_i|z_{i-1}) - \log p(z_i|z_{i+1})`, which need not be positive on its own; the sum
    over layers is still :math:`\mathrm{KL}(q(z|x)\,\|\,p(z))`.
    Log-variances are soft-clamped to (-10, 10). The paper's batch normalisation is left out, so
    training and evaluation compute the same function.
    """

    settings = {"beta": 1.0, "n_samples": 1, "kl_estimator": "analytic"}

    def __init__(self, input_dim: int, latent_dim: int, lower_latent_dims: Sequence[int] = (32,),
                 hidden_dims: Sequence[int] | int = (256,), likelihood: str = "bernoulli", activation: str = "tanh",
                 merge: bool | None = None, inference: str | None = None):
        super().__init__()
        self.input_dim = check_positive_int("input_dim", input_dim)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        if not isinstance(lower_latent_dims, (list, tuple)):
            raise TypeError(f"lower_latent_dims must be a sequence of ints (e.g. (64, 32), or () for one layer), "
                            f"got {lower_latent_dims!r}; for one lower layer write ({lower_latent_dims},).")
        dims = [check_positive_int("each lower latent dimension", v) for v in lower_latent_dims] + [latent_dim]
        hidden = list(check_hidden(hidden_dims))
        if len(hidden) == 1:
            hidden = hidden * len(dims)
        if len(hidden) != len(dims):
            raise ValueError(f"hidden_dims must give one width per latent layer ({len(dims)} layers: "
                             f"{dims}) or a single width, got {hidden}.")
        if likelihood not in DECODERS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}.")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}.")
        if merge is not None and not isinstance(merge, bool):
            raise TypeError(f"merge must be True (Ladder VAE) or False (one-pass mean-field inference), got {merge!r}.")
        if inference is not None and inference not in INFERENCE:
            raise ValueError(f"inference must be one of {INFERENCE}, got {inference!r}.")
        if merge is not None and inference is not None:
            raise ValueError(f"give inference= or the older merge=, not both (got merge={merge!r}, "
                             f"inference={inference!r}).")
        if inference is None:
            inference = "mean-field" if merge is False else "top-down"
        self.inference, self.likelihood = inference, likelihood
        self.merge = inference == "top-down"
        self.latent_dims, self.n_layers = dims, len(dims)

        # bottom-up: d_i = act(W_i d_{i-1}), (mu_hat_i, logvar_hat_i) = head_i(d_i); with stochastic
        # bottom-up inference block i > 1 reads the sample z_{i-1} instead of d_{i-1}
        ins = [input_dim] + (dims[:-1] if inference == "bottom-up" else hidden[:-1])
        self.up = nn.ModuleList(nn.Sequential(nn.Linear(i, h), ACTIVATIONS[activation]()) for i, h in zip(ins, hidden))
        self.up_heads = nn.ModuleList(nn.Linear(h, 2 * d) for h, d in zip(hidden, dims))
        # top-down: p(z_i | z_{i+1}) for i = 1..L-1 (index i-1), the decoder p(x | z_1), and p(z_L)
        self.down = nn.ModuleList(GaussianMLP(dims[i + 1], dims[i], (hidden[i],), activation)
                                  for i in range(len(dims) - 1))
        self.decoder = DECODERS[likelihood](dims[0], input_dim, (hidden[0],), activation)
        self.prior = StandardNormal(latent_dim)


    # -- the two passes ---------------------------------------------------------------------------
    def bottom_up(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        r"""The deterministic pass: ``[(mu_hat_i, logvar_hat_i)]`` for layers 1..L (bottom first), each ``(B, d_i)``.
        With ``inference="bottom-up"`` there is no deterministic pass above the first block: use :meth:`top_down`
        (which samples in the inference order of every variant) or :meth:`posteriors`."""
        if self.inference == "bottom-up":
            raise RuntimeError("with inference='bottom-up' the upward pass runs on samples; use top_down() or "
                               "posteriors().")
        h, out = x, []
        for block, head in zip(self.up, self.up_heads):
            h = block(h)
            mu, logvar = head(h).chunk(2, dim=-1)
            out.append((mu, soft_clamp(logvar)))
        return out

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""``(mu, logvar)`` of the top layer's posterior :math:`q(z_L|x)` (which needs no sample);
        the lower layers' posteriors depend on the sampled layer above: :meth:`posteriors`.
        With ``inference="bottom-up"``, :math:`q(z_L|x)` is a continuous mixture; this returns its
        Gaussian at the *means* of the layers below (an approximation, for plots and diagnostics;
        :meth:`posteriors` averages over samples instead)."""
        if self.inference != "bottom-up":
            return self.bottom_up(x)[-1]
        h = x
        for block, head in zip(self.up, self.up_heads):
            mu, logvar = head(block(h)).chunk(2, dim=-1)
            h = mu
        return mu, soft_clamp(logvar)

    def prior_params(self, i: int, z_above: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""``(mu_p, logvar_p)`` of :math:`p(z_i|z_{i+1})` for layer ``i`` in 1..L-1, from ``z_above`` = :math:`z_{i+1}`."""
        if not 1 <= i < self.n_layers:
            raise ValueError(f"layer i must be in 1..{self.n_layers - 1} (layer {self.n_layers} has the "
                             f"standard-normal prior), got {i}.")
        return self.down[i - 1](z_above)

    def top_down(self, x: torch.Tensor, n_samples: int, generator: torch.Generator | None = None) -> list[Layer]:
        """Sample every layer from q, ``n_samples`` per image, top first (or bottom first for
        ``inference="bottom-up"``); the :class:`Layer` s bottom first in either case."""
        if self.inference == "bottom-up":
            return self._stochastic_bottom_up(x, n_samples, generator)
        ups = self.bottom_up(x)
        z = reparameterize(*ups[-1], n_samples, generator)                          # z_L ~ q(z_L|x), (S, B, d_L)
        layers = [Layer(z, *ups[-1])]
        for up, down in zip(ups[-2::-1], self.down[::-1]):                          # layers L-1 .. 1
            mu_p, lv_p = down(z)                                                    # p(z_i | z_{i+1})
            mu_q, lv_q = self._posterior(up, mu_p, lv_p)                            # q(z_i | z_{i+1}, x)
            z = reparameterize(mu_q, lv_q, generator=generator)                     # (S, B, d_i)
            layers.append(Layer(z, mu_q, lv_q, mu_p, lv_p))
        return layers[::-1]

    def _stochastic_bottom_up(self, x, n_samples, generator):
        """q(z_1|x) q(z_2|z_1) ...: sample upwards, each block fed the sample below; then the top-down priors."""
        h, zs, gauss = x, [], []
        for i, (block, head) in enumerate(zip(self.up, self.up_heads)):
            mu, logvar = head(block(h)).chunk(2, dim=-1)
            logvar = soft_clamp(logvar)
            h = reparameterize(mu, logvar, n_samples, generator) if i == 0 else reparameterize(mu, logvar,
                                                                                                generator=generator)
            zs.append(h)
            gauss.append((mu, logvar))
        layers = []
        for i in range(self.n_layers - 1):                                          # layers 1 .. L-1
            mu_p, lv_p = self.down[i](zs[i + 1])                                    # p(z_i | z_{i+1})
            layers.append(Layer(zs[i], *gauss[i], mu_p, lv_p, closed_form=False))
        layers.append(Layer(zs[-1], *gauss[-1]))                                    # p(z_L) = N(0, I)
        return layers

    def _posterior(self, up, mu_p, lv_p):
        """``(mu_q, logvar_q)`` of a lower layer, shape of ``mu_p``: merged (Ladder) or bottom-up only."""
        mu_hat, lv_hat = up[0].expand_as(mu_p), up[1].expand_as(lv_p)
        return precision_weighted(mu_hat, lv_hat, mu_p, lv_p) if self.merge else (mu_hat, lv_hat)

    @torch.no_grad()
    def posteriors(self, x: torch.Tensor, n_samples: int = 1, generator: torch.Generator | None = None):
        r"""``[(mu_q_i, logvar_q_i)]`` bottom first: the first-sampled layer's ``(B, d)`` (the top one, or
        :math:`z_1` for ``inference="bottom-up"``), the others' ``(S, B, d_i)`` at ``n_samples`` samples
        of the layers they condition on (for active units per layer, average ``mu_q`` over the samples)."""
        return [(layer.mu, layer.logvar) for layer in self.top_down(x, n_samples, generator)]

    @torch.no_grad()
    def active_units(self, x: torch.Tensor, n_samples: int = 20, threshold: float = 1e-2,
                     generator: torch.Generator | None = None, batch_size: int = 500) -> list[int]:
        r"""Active units per layer, bottom first (Burda et al., 2015): unit u of layer i is active when
        :math:`\operatorname{Var}_x\big(\mathbb E_q[u\,|\,x]\big) >` ``threshold``. A layer whose Gaussian
        depends on a sampled layer (above, for top-down inference; below, for stochastic bottom-up) has
        :math:`\mathbb E_q[z_i|x]` estimated by averaging its mean over ``n_samples`` draws of that layer."""
        check_positive_int("n_samples", n_samples)
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or threshold < 0:
            raise ValueError(f"threshold must be a number >= 0, got {threshold!r}.")
        x = self.as_batch(x).x
        means = None
        for xb in x.split(check_positive_int("batch_size", batch_size)):
            m = [mu if mu.dim() == 2 else mu.mean(0) for mu, _ in self.posteriors(xb, n_samples, generator)]
            means = m if means is None else [torch.cat([a, b]) for a, b in zip(means, m)]
        return [int((m.var(0, unbiased=False) > threshold).sum()) for m in means]

    # -- the model interface ----------------------------------------------------------------------
    def loss(self, batch: Batch | torch.Tensor, generator: torch.Generator | None = None) -> Output:
        r"""``loss = -mean(recon - beta * sum_i kl_i)``; ``elbo = recon - sum_i kl_i`` whatever ``beta``."""
        x = self.as_batch(batch).x
        layers = self.top_down(x, self.n_samples, generator)                        # bottom first
        recon = self.decoder.log_prob(x, layers[0].z).mean(0)                       # E_q log p(x|z_1)
        kls = [layer.kl() if self.kl_estimator == "analytic" else layer.log_ratio().mean(0)
               for layer in layers]                                                 # each against its top-down prior
        # (stochastic bottom-up: the lower layers' kl() is their log-ratio, no closed form exists there)
        kl = torch.stack(kls).sum(0)
        terms = {"recon": recon, "kl": kl, **{f"kl{i}": k for i, k in enumerate(kls, 1)}}
        return Output(loss=-(recon - self.beta * kl).mean(), elbo=recon - kl, terms=terms)

    def log_weights(self, batch: Batch | torch.Tensor, n_samples: int,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        r"""``(K, B)``: :math:`\log p(x|z_1) + \sum_i [\log p(z_i|z_{i+1}) - \log q(z_i|z_{i+1}, x)]`
        (with :math:`p(z_L) = \mathcal N(0, I)`) at the sampled :math:`z` of all layers."""
        x = self.as_batch(batch).x
        layers = self.top_down(x, n_samples, generator)
        return self.decoder.log_prob(x, layers[0].z) - torch.stack([layer.log_ratio() for layer in layers]).sum(0)

    # -- generation -------------------------------------------------------------------------------
    def decode_top(self, z_top: torch.Tensor, sample_lower: bool = False,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Decode a top-layer code through the hierarchy to the mean image: each lower layer is the
        mean of :math:`p(z_i|z_{i+1})` (default), or a sample of it with ``sample_lower=True``."""
        z = z_top
        for down in self.down[::-1]:
            z = down.sample(z, generator) if sample_lower else down.mean(z)
        return self.decoder.mean(z)

    def decode_mean(self, z_top: torch.Tensor) -> torch.Tensor:
        r"""The image of a *top-layer* code (``latent_dim`` values), as every model's ``decode_mean``:
        :meth:`decode_top` through the prior means of the lower layers (the map :meth:`mean_decoder`
        exports). It is the decoder's mean at those means, not :math:`\mathbb E[x|z_L]`."""
        return self.decode_top(z_top)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` codes of the bottom layer: :math:`z_L\\sim\\mathcal N(0, I)`, then each lower layer
        sampled from its top-down prior (:meth:`sample` decodes them)."""
        z = self.prior.sample(n, generator)
        for down in self.down[::-1]:
            z = down.sample(z, generator)
        return z

    def mean_decoder(self) -> tuple[nn.Sequential, str]:
        """A standalone ``nn.Sequential`` from the top code :math:`z_L` to the decoder's output through
        the prior means of every lower layer (as :meth:`decode_top`): each top-down network's
        ``export()`` (cut to the mean) and then the decoder's, with its output map (``"sigmoid"``:
        logits, or ``"identity"``), for exporting the hierarchy to the browser."""
        nets = [down.export()[0] for down in self.down[::-1]]
        decoder, output = self.decoder.export()
        return nn.Sequential(*(layer for net in nets + [decoder] for layer in net)), output
