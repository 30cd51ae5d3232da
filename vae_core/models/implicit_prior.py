r"""The VAE with an implicit optimal prior (Takahashi et al., 2019).

ELBO surgery (Hoffman & Johnson, 2016) shows that the prior maximising the average ELBO is the
aggregated posterior :math:`q(z) = \int p_{\rm data}(x)\, q(z|x)\,dx`. It has no closed form, but its
KL term does not need one:

.. math:: \mathrm{KL}(q(z|x)\,\|\,q(z)) = \mathrm{KL}(q(z|x)\,\|\,\mathcal N(0, I))
          - \mathbb E_{q(z|x)}\!\left[\log\frac{q(z)}{\mathcal N(z; 0, I)}\right],

(expand :math:`\log q(z|x) - \log q(z) = [\log q(z|x) - \log\mathcal N(z)] - [\log q(z) - \log\mathcal N(z)]`:
the second bracket enters with a *minus*). The first term is the usual closed form; the density
ratio in the second is estimated by a classifier :math:`T(z)` (:class:`~vae_core.nets.Discriminator`)
trained to tell aggregated-posterior samples (label 1) from :math:`\mathcal N(0, I)` samples
(label 0) in equal numbers, whose optimal logit is :math:`\log q(z)/\mathcal N(z; 0, I)`.
"""
from __future__ import annotations

import torch

from .._validate import check_hidden, check_positive_float, check_positive_int
from ..distributions import gaussian_log_prob, standard_normal_log_prob
from ..estimators import reparameterize
from ..nets import Discriminator
from ..objectives import KL_MODES, gaussian_elbo, log_mean_exp
from .base import Batch, Output, parameters_of
from .vae import VAE

__all__ = ["ImplicitPriorVAE", "BOUND_PRIORS"]

#: which prior the reported bound and the importance weights use (see :class:`ImplicitPriorVAE`).
BOUND_PRIORS = ("standard", "implicit")


class ImplicitPriorVAE(VAE):
    r"""A VAE trained against the implicit optimal prior :math:`q(z)` through a density-ratio discriminator.

    Training objective per example (to maximise), with :math:`T` the discriminator's logit:

    .. math:: \mathbb E_{q(z|x)}[\log p(x|z)] - \beta\Big(\mathrm{KL}(q(z|x)\,\|\,\mathcal N(0,I))
              - \mathbb E_{q(z|x)}[T(z)]\Big).

    The encoder receives the gradient of :math:`T` through the reparameterized :math:`z`; the extra
    term from :math:`q(z)` itself depending on the encoder vanishes, because
    :math:`\mathbb E_{q(z)}[\nabla \log q(z)] = \nabla\!\int q = 0`. The discriminator is trained on
    **detached** latents (``discriminator_loss``, its own parameter group), so its loss never reaches
    the encoder or decoder.

    **T is unnormalised.** :math:`\mathcal N(z; 0, I)\,e^{T(z)}` is a probability density only when
    :math:`T` is exactly :math:`\log q(z)/\mathcal N(z)`; a trained classifier is not, and
    :math:`\int \mathcal N(z)\,e^{T(z)}dz` (estimated by :meth:`log_prior_normaliser`) can be above or
    below 1. So every number that uses :math:`T` (the "implicit" bound, ``log_weights(prior="implicit")``)
    is an *estimate* of a bound under the implicit prior, not a guaranteed bound, and can be off by
    that log-normaliser. The ``"standard"`` versions use :math:`\mathcal N(0, I)` as the prior with the
    same encoder and decoder: a true, normalised bound of a well-defined model (the decoder paired
    with the standard-normal prior), which is the honest number to compare with a plain VAE.

    Args:
        input_dim, latent_dim, hidden_dims, likelihood, activation: as :class:`~vae_core.models.vae.VAE`.
        discriminator_hidden: hidden sizes of the discriminator MLP.
        discriminator_lr: its Adam learning rate (``None``: the one ``fit`` uses). Takahashi et al.'s
            setting trains the discriminator faster than the VAE.
        bound_prior: ``"standard"`` (default) or ``"implicit"``: the prior used by ``Output.elbo``, by
            :meth:`log_weights` (so by :func:`vae_core.evaluate.log_marginal`) and by :meth:`sample`.
            The training loss always uses the implicit prior.

    Terms (per example): ``recon``, ``kl`` (to :math:`\mathcal N(0, I)`, analytic or Monte-Carlo as
    ``kl_estimator``), ``log_ratio`` (:math:`\mathbb E_q T(z)`) and ``kl_implicit``
    (``kl - log_ratio``, the estimate of :math:`\mathrm{KL}(q(z|x)\|q(z))`; an estimate, so it can
    come out negative for single examples).
    """

    def __init__(self, input_dim: int, latent_dim: int, hidden_dims=(400,), likelihood: str = "bernoulli",
                 activation: str = "tanh", discriminator_hidden=(256, 256), discriminator_lr: float | None = None,
                 bound_prior: str = "standard"):
        super().__init__(input_dim, latent_dim, hidden_dims, likelihood, activation)
        disc_hidden = list(check_hidden(discriminator_hidden))
        if discriminator_lr is not None:
            discriminator_lr = check_positive_float("discriminator_lr", discriminator_lr)
        self.bound_prior = _check_prior(bound_prior)
        self.discriminator_lr = discriminator_lr
        self.discriminator = Discriminator(latent_dim, disc_hidden)
        self.config.update(discriminator_hidden=disc_hidden, discriminator_lr=discriminator_lr,
                           bound_prior=bound_prior)

    # -- parameter groups -------------------------------------------------------------------------
    def parameter_groups(self) -> dict:
        """``model``: encoder and decoder; ``discriminator``: T (with its own learning rate if set)."""
        disc = {"params": list(self.discriminator.parameters())}
        if self.discriminator_lr is not None:
            disc["lr"] = self.discriminator_lr
        return {"model": parameters_of(self.encoder, self.decoder), "discriminator": disc}

    # -- the density ratio ------------------------------------------------------------------------
    def log_ratio(self, z: torch.Tensor) -> torch.Tensor:
        r"""The discriminator's estimate :math:`T(z) \approx \log q(z) - \log\mathcal N(z; 0, I)`, shape ``z.shape[:-1]``."""
        return self.discriminator(z)

    def implicit_prior_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        r"""Unnormalised :math:`\log\mathcal N(z; 0, I) + T(z)`, the implicit prior's log-density up to
        :meth:`log_prior_normaliser`."""
        return standard_normal_log_prob(z) + self.log_ratio(z)

    def prior_discriminator_loss(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""The discriminator's loss on aggregated-posterior samples ``z`` (label 1) against as many
        :math:`\mathcal N(0, I)` samples (label 0). ``z`` is detached here: this loss trains only T."""
        z = z.detach().reshape(-1, self.latent_dim)
        noise = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        return self.discriminator.ratio_loss(z, noise)

    @torch.no_grad()
    def log_prior_normaliser(self, n_samples: int = 10_000, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Monte-Carlo estimate of :math:`\log\int\mathcal N(z; 0, I)\,e^{T(z)}\,dz
        = \log\mathbb E_{\mathcal N(0,I)}[e^{T(z)}]`: 0 for the exact ratio; the offset by which
        the implicit prior is not normalised otherwise."""
        check_positive_int("n_samples", n_samples)
        p = next(self.parameters())
        z = torch.randn(n_samples, self.latent_dim, generator=generator, device=p.device, dtype=p.dtype)
        return log_mean_exp(self.log_ratio(z), dim=0)

    # -- the model interface ----------------------------------------------------------------------
    def loss(self, batch: Batch | torch.Tensor, generator: torch.Generator | None = None) -> Output:
        x = batch.x if isinstance(batch, Batch) else batch
        check_positive_int("n_samples", self.n_samples)
        if self.kl_estimator not in KL_MODES:
            raise ValueError(f"kl_estimator must be one of {KL_MODES}, got {self.kl_estimator!r}.")
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, self.n_samples, generator=generator)           # (L, B, d)
        t = gaussian_elbo(self.log_likelihood(x, z), z, mu, logvar, kl=self.kl_estimator)
        log_ratio = self.log_ratio(z).mean(0)                                           # E_q T(z), (B,)
        kl_implicit = t.kl - log_ratio
        objective = t.recon - self.beta * kl_implicit
        elbo = t.recon - (t.kl if self.bound_prior == "standard" else kl_implicit)
        return Output(loss=-objective.mean(), elbo=elbo,
                      terms={"recon": t.recon, "kl": t.kl, "log_ratio": log_ratio, "kl_implicit": kl_implicit},
                      discriminator_loss=self.prior_discriminator_loss(z, generator))

    def log_weights(self, batch: Batch | torch.Tensor, n_samples: int, generator: torch.Generator | None = None,
                    prior: str | None = None) -> torch.Tensor:
        r"""``(K, B)`` log-weights :math:`\log p(x|z_k) + \log p(z_k) - \log q(z_k|x)`, :math:`z_k\sim q(z|x)`.

        ``prior`` (default ``bound_prior``): ``"standard"`` uses :math:`\log p = \log\mathcal N(z; 0, I)`,
        normalised, so ``log_mean_exp`` of these weights is a consistent estimate of a true
        :math:`\log p(x)`. ``"implicit"`` adds :math:`T(z_k)`: an estimate under the implicit prior
        that is only as normalised as :math:`T` is (see :meth:`log_prior_normaliser`; subtracting
        that estimate corrects the offset to first order).
        """
        check_positive_int("n_samples", n_samples)
        prior = self.bound_prior if prior is None else _check_prior(prior)
        x = batch.x if isinstance(batch, Batch) else batch
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, n_samples, generator=generator)
        log_w = self.log_likelihood(x, z) + standard_normal_log_prob(z) - gaussian_log_prob(z, mu, logvar)
        return log_w + self.log_ratio(z) if prior == "implicit" else log_w

    @torch.no_grad()
    def sample(self, n: int, y=None, generator: torch.Generator | None = None, mean: bool = True,
               prior: str | None = None, n_candidates: int = 32) -> torch.Tensor:
        r"""``n`` images. ``prior="standard"`` decodes :math:`z\sim\mathcal N(0, I)` (as a VAE);
        ``"implicit"`` draws :math:`z` from the implicit prior approximately by sampling-importance-
        resampling: ``n_candidates`` standard-normal draws per image, one kept with probability
        :math:`\propto e^{T(z)}` (exact as ``n_candidates`` grows, for the exact ratio). Default:
        ``bound_prior``."""
        check_positive_int("n", n)
        if isinstance(y, torch.Generator):
            raise TypeError("sample(n, y=None, generator=None): pass the generator by name, generator=...")
        if y is not None:
            raise ValueError(f"{type(self).__name__} is not conditional: sample() takes no labels y.")
        prior = self.bound_prior if prior is None else _check_prior(prior)
        if prior == "standard":
            return super().sample(n, generator=generator, mean=mean)
        check_positive_int("n_candidates", n_candidates)
        p = next(self.parameters())
        cand = torch.randn(n, n_candidates, self.latent_dim, generator=generator, device=p.device, dtype=p.dtype)
        probs = torch.softmax(self.log_ratio(cand), dim=-1)                   # (n, n_candidates)
        pick = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        z = cand[torch.arange(n, device=p.device), pick]
        m = self.decode_mean(z)
        if mean:
            return m
        if self.likelihood == "bernoulli":
            return torch.bernoulli(m, generator=generator)
        _, logvar = self.decode(z)
        return m + torch.exp(0.5 * logvar) * torch.randn(m.shape, generator=generator, device=m.device)


def _check_prior(prior) -> str:
    if prior not in BOUND_PRIORS:
        raise ValueError(f"prior must be one of {BOUND_PRIORS} ('standard': N(0, I), normalised; 'implicit': "
                         f"N(0, I) * exp(T), unnormalised), got {prior!r}.")
    return prior
