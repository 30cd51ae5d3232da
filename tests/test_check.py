"""vae_core.check: each checker accepts right implementations (the library's own and independent ones)
and names the usual mistakes; bad arguments and failing functions give clear messages."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal, kl_divergence

from vae_core import check
from vae_core.distributions import bernoulli_log_prob, kl_normal_standard
from vae_core.estimators import reparameterize
from vae_core.gumbel import gumbel_softmax
from vae_core.objectives import gaussian_elbo

pytestmark = pytest.mark.usefixtures("one_thread")   # see conftest.py


def rejected(result, *words):
    """The result failed, and its problems (and its verdict) contain every word given."""
    assert not result.ok and not bool(result)
    assert result.problems, "a failed check must say why"
    text = " ".join(result.problems)
    for w in words:
        assert w in text, f"{w!r} not in: {text}"
    assert text.split(". ")[0] in str(result)
    return text


def accepted(result):
    assert result.ok and bool(result), str(result)
    assert result.problems == []
    assert str(result).startswith(f"✓ check.{result.name}: ok.")
    return result


# --------------------------------------------------------------------------- the Gaussian KL

def kl_by_hand(mu, logvar):
    return 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(-1)


def kl_torch(mu, logvar):   # independent of vae_core: torch.distributions
    q = Normal(mu, torch.exp(0.5 * logvar))
    return kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(-1)


@pytest.mark.parametrize("fn", [kl_normal_standard, kl_by_hand, kl_torch,
                                lambda mu, lv: -0.5 * (1 + lv - mu ** 2 - lv.exp()).sum(-1),
                                lambda mu, lv: kl_by_hand(mu.float(), lv.float())],   # float32 is fine
                         ids=["library", "by_hand", "torch.distributions", "minus_form", "float32"])
def test_gaussian_kl_accepts_right_versions(fn):
    r = accepted(check.gaussian_kl(fn))
    assert r.max_abs_diff < 1e-5


WRONG_KL = {
    "sign": (lambda mu, lv: 0.5 * (1 + lv - mu ** 2 - lv.exp()).sum(-1), ["wrong sign"]),
    "sigma for sigma^2": (lambda mu, lv: 0.5 * (mu ** 2 + (0.5 * lv).exp() - lv - 1).sum(-1),
                          ["σ = exp(½·logvar) where σ² = exp(logvar) belongs"]),
    "mean for sum": (lambda mu, lv: 0.5 * (mu ** 2 + lv.exp() - lv - 1).mean(-1), ["averages", "sum", "β = 1/d"]),
    "missing 1/2": (lambda mu, lv: (mu ** 2 + lv.exp() - lv - 1).sum(-1), ["factor ½"]),
    "logvar as log sigma": (lambda mu, lv: 0.5 * (mu ** 2 + (2 * lv).exp() - 2 * lv - 1).sum(-1), ["log σ"]),
    "reverse KL": (lambda mu, lv: 0.5 * ((1 + mu ** 2) / lv.exp() + lv - 1).sum(-1), ["KL(p‖q)"]),
    "missing -1": (lambda mu, lv: 0.5 * (mu ** 2 + lv.exp() - lv).sum(-1), ["−1"]),
    "not summed": (lambda mu, lv: 0.5 * (mu ** 2 + lv.exp() - lv - 1), ["shape (6, 4)", ".sum(-1)"]),
    "batch mean": (lambda mu, lv: kl_by_hand(mu, lv).mean(), ["one number", "mean over the batch"]),
    "log of logvar": (lambda mu, lv: 0.5 * (mu ** 2 + lv.exp() - torch.log(lv) - 1).sum(-1), ["NaN", "log σ²"]),
    "detached": (lambda mu, lv: kl_by_hand(mu, lv).detach(), ["no gradient"]),
    "constant offset": (lambda mu, lv: kl_by_hand(mu, lv) + 3.0, ["same constant, 3"]),
}


@pytest.mark.parametrize("name", list(WRONG_KL))
def test_gaussian_kl_names_the_mistake(name):
    fn, words = WRONG_KL[name]
    rejected(check.gaussian_kl(fn), *words)


def test_gaussian_kl_reports_a_shape_and_a_value_mistake_together():
    text = rejected(check.gaussian_kl(lambda mu, lv: 0.5 * (mu ** 2 + (0.5 * lv).exp() - lv - 1)),
                    "shape (6, 4)", "σ = exp(½·logvar)")
    assert text.count("It ") >= 2


def test_the_kl_mistakes_are_distinguishable_on_the_checks_inputs():
    """Every known mistake gives values different from the right ones and from every other mistake,
    so a diagnosis is never ambiguous."""
    mu, logvar = check._kl_inputs()
    ref, variants = check._kl_variants(mu, logvar)
    values = [ref] + [v for _, v in variants]
    for a, b in itertools.combinations(values, 2):
        assert not check._close(a, b, 1e-4)


# --------------------------------------------------------------------------- reparameterization

def reparam_eps(mu, logvar, eps):
    return mu + torch.exp(0.5 * logvar) * eps


def reparam_global(mu, logvar):
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


@pytest.mark.parametrize("fn", [reparameterize, reparam_eps, reparam_global,
                                lambda mu, logvar, noise: mu + logvar.mul(0.5).exp() * noise,
                                lambda mu, logvar, generator=None: reparameterize(mu, logvar, generator=generator)],
                         ids=["library", "eps", "global_rng", "named_noise", "generator"])
def test_reparameterize_accepts_right_versions(fn):
    accepted(check.reparameterize(fn))


WRONG_REPARAM = {
    "sigma^2 for sigma": (lambda mu, logvar, eps: mu + logvar.exp() * eps, ["σ²·ε", "σ⁴"]),
    "logvar as std": (lambda mu, logvar, eps: mu + logvar * eps, ["logvar itself as the standard deviation"]),
    "sign": (lambda mu, logvar, eps: mu - torch.exp(0.5 * logvar) * eps, ["μ − σ·ε"]),
    "forgets mu": (lambda mu, logvar, eps: torch.exp(0.5 * logvar) * eps, ["forgets μ"]),
    "own noise": (lambda mu, logvar, eps: reparam_eps(mu, logvar, torch.randn_like(mu)), ["draws its own noise"]),
    "detached": (lambda mu, logvar, eps: reparam_eps(mu, logvar, eps).detach(), ["no gradient"]),
    "mu detached": (lambda mu, logvar, eps: reparam_eps(mu.detach(), logvar, eps), ["no gradient reaches `mu`"]),
    "sqrt of logvar": (lambda mu, logvar, eps: mu + logvar.sqrt() * eps, ["NaN"]),
    # functions that draw their own noise are judged by the mean and variance of their samples
    "global rng, sigma^2": (lambda mu, logvar: mu + logvar.exp() * torch.randn_like(mu), ["variance σ⁴"]),
    "global rng, no mu": (lambda mu, logvar: torch.exp(0.5 * logvar) * torch.randn_like(mu), ["centred at 0"]),
    "torch.normal": (lambda mu, logvar: torch.normal(mu, torch.exp(0.5 * logvar)), ["torch.normal", "no gradient"]),
    "generator, sigma^2": (lambda mu, logvar, generator=None:
                           mu + logvar.exp() * torch.randn(mu.shape, generator=generator, dtype=mu.dtype),
                           ["variance σ⁴"]),
}


@pytest.mark.parametrize("name", list(WRONG_REPARAM))
def test_reparameterize_names_the_mistake(name):
    fn, words = WRONG_REPARAM[name]
    rejected(check.reparameterize(fn), *words)


def test_reparameterize_leaves_the_global_random_state_alone():
    before = torch.get_rng_state()
    accepted(check.reparameterize(reparam_global))
    assert torch.equal(torch.get_rng_state(), before)


def test_the_reparameterization_mistakes_are_distinguishable_and_the_reference_is_the_library():
    mu, logvar, eps, noise_seed = check._reparam_inputs()
    library = reparameterize(mu, logvar, generator=torch.Generator().manual_seed(noise_seed))
    torch.testing.assert_close(library, reparam_eps(mu, logvar, eps), rtol=0, atol=1e-12)
    values = [library] + [v for _, v in check._reparam_variants(mu, logvar, eps)]
    for a, b in itertools.combinations(values, 2):
        assert not check._close(a, b, 1e-4)


# --------------------------------------------------------------------------- Bernoulli log-likelihood

def bern_logits(x, logits):
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


@pytest.mark.parametrize("fn", [bernoulli_log_prob, bern_logits,
                                lambda x, logits: Bernoulli(logits=logits).log_prob(x).sum(-1),
                                lambda x, logits: (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(-1)],
                         ids=["library", "bce_with_logits", "torch.distributions", "logsigmoid"])
def test_bernoulli_accepts_right_versions(fn):
    accepted(check.bernoulli_log_likelihood(fn))


WRONG_BERNOULLI = {
    "sign (cross-entropy)": (lambda x, logits: -bern_logits(x, logits), ["wrong sign", "cross-entropy"]),
    "mean over pixels": (lambda x, logits: -F.binary_cross_entropy_with_logits(logits, x, reduction="none").mean(-1),
                         ["averages over the pixels (D = 10 in this check)", "reduction='none'"]),
    "p and 1-p swapped": (lambda x, logits: bern_logits(x, -logits), ["swaps p and 1 − p"]),
    "sigmoid twice": (lambda x, logits: bern_logits(x, torch.sigmoid(logits)), ["sigmoid twice"]),
    "arguments swapped": (lambda x, logits: -F.binary_cross_entropy_with_logits(x, logits, reduction="none").sum(-1),
                          ["swaps the arguments"]),
    "missing (1-x) term": (lambda x, logits: (x * F.logsigmoid(logits)).sum(-1), ["(1 − x)·log(1 − p)"]),
    "default reduction": (lambda x, logits: -F.binary_cross_entropy_with_logits(logits, x), ["single number"]),
    "log of logits": (lambda x, logits: (x * torch.log(logits) + (1 - x) * torch.log(1 - logits)).sum(-1), ["NaN"]),
    "unstable log(sigmoid)": (lambda x, logits: (x * torch.log(torch.sigmoid(logits))
                                                 + (1 - x) * torch.log(1 - torch.sigmoid(logits))).sum(-1),
                              ["agrees with vae_core for moderate logits", "F.logsigmoid"]),
    "clamped BCE on probabilities": (lambda x, logits: -F.binary_cross_entropy(torch.sigmoid(logits), x,
                                                                              reduction="none").sum(-1),
                                     ["large ones"]),
}


@pytest.mark.parametrize("name", list(WRONG_BERNOULLI))
def test_bernoulli_names_the_mistake(name):
    fn, words = WRONG_BERNOULLI[name]
    rejected(check.bernoulli_log_likelihood(fn), *words)


# --------------------------------------------------------------------------- the ELBO

def elbo_by_hand(x, logits, mu, logvar):
    return bern_logits(x, logits) - kl_by_hand(mu, logvar)


@pytest.mark.parametrize("fn", [gaussian_elbo, elbo_by_hand,
                                lambda x, logits, mu, logvar: (elbo_by_hand(x, logits, mu, logvar),
                                                               bern_logits(x, logits), kl_by_hand(mu, logvar))],
                         ids=["library", "by_hand", "returns_a_tuple"])
def test_elbo_accepts_right_versions(fn):
    accepted(check.elbo(fn))


def bce_sum(x, logits):
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


WRONG_ELBO = {
    "KL sign": (lambda x, lg, mu, lv: bern_logits(x, lg) + kl_by_hand(mu, lv), ["adds the KL"]),
    "mean over pixels (silent beta)": (lambda x, lg, mu, lv: -F.binary_cross_entropy_with_logits(
        lg, x, reduction="none").mean(-1) - kl_by_hand(mu, lv), ["averages the reconstruction", "β = D"]),
    "KL mean over latent dims": (lambda x, lg, mu, lv: bern_logits(x, lg) - kl_by_hand(mu, lv) / 3, ["β = 1/d"]),
    "returns the loss per example": (lambda x, lg, mu, lv: bce_sum(x, lg) + kl_by_hand(mu, lv), ["minus the ELBO"]),
    "returns the training loss": (lambda x, lg, mu, lv: (bce_sum(x, lg) + kl_by_hand(mu, lv)).mean(),
                                  ["training loss"]),
    "KL sigma for sigma^2": (lambda x, lg, mu, lv: bern_logits(x, lg) - 0.5 * (mu ** 2 + (0.5 * lv).exp()
                                                                                - lv - 1).sum(-1), ["σ = exp"]),
    "no KL": (lambda x, lg, mu, lv: bern_logits(x, lg), ["leaves out the KL"]),
    # two mistakes at once: found by writing the values as a*log p(x|z) + b*KL + c
    "mean over pixels and KL sign": (lambda x, lg, mu, lv: -F.binary_cross_entropy_with_logits(
        lg, x, reduction="none").mean(-1) + kl_by_hand(mu, lv), ["0.1·log p(x|z) + 1·KL", "averaged over the pixels",
                                                                 "KL is added"]),
    "KL detached": (lambda x, lg, mu, lv: bern_logits(x, lg) - kl_by_hand(mu, lv).detach(),
                    ["no gradient reaches `mu`"]),
}


@pytest.mark.parametrize("name", list(WRONG_ELBO))
def test_elbo_names_the_mistake(name):
    fn, words = WRONG_ELBO[name]
    rejected(check.elbo(fn), *words)


# --------------------------------------------------------------------------- Gumbel-softmax

@pytest.mark.parametrize("fn", [gumbel_softmax,
                                lambda logits, tau, g: torch.softmax((logits + g) / tau, dim=-1),
                                lambda logits, tau, u: torch.softmax((torch.log_softmax(logits, -1) + u) / tau, -1)],
                         ids=["library", "by_hand", "normalised_logits_positional_noise"])
def test_gumbel_softmax_accepts_right_versions(fn):
    accepted(check.gumbel_softmax(fn))


WRONG_GUMBEL = {
    "missing tau": (lambda logits, tau, g: torch.softmax(logits + g, -1), ["ignores τ"]),
    "tau multiplies": (lambda logits, tau, g: torch.softmax((logits + g) * tau, -1), ["multiplies by τ"]),
    "noise outside tau": (lambda logits, tau, g: torch.softmax(logits / tau + g, -1), ["noise belongs inside"]),
    "log_softmax": (lambda logits, tau, g: torch.log_softmax((logits + g) / tau, -1), ["log-probabilities"]),
    "noise on probabilities": (lambda logits, tau, g: torch.softmax((torch.softmax(logits, -1) + g) / tau, -1),
                               ["probabilities softmax(logits)"]),
    "log of logits": (lambda logits, tau, g: torch.softmax((torch.log(logits) + g) / tau, -1), ["NaN"]),
    "wrong dim": (lambda logits, tau, g: torch.softmax((logits + g) / tau, 0), ["wrong dimension"]),
    "hard sample": (lambda logits, tau, noise: gumbel_softmax(logits, tau, hard=True, noise=noise) .detach(),
                    ["hard one-hot"]),
    "detached": (lambda logits, tau, g: torch.softmax((logits + g) / tau, -1).detach(), ["no gradient"]),
}


@pytest.mark.parametrize("name", list(WRONG_GUMBEL))
def test_gumbel_softmax_names_the_mistake(name):
    fn, words = WRONG_GUMBEL[name]
    rejected(check.gumbel_softmax(fn), *words)


# --------------------------------------------------------------------------- bad arguments, failing functions

CHECKS = [check.gaussian_kl, check.reparameterize, check.bernoulli_log_likelihood, check.elbo, check.gumbel_softmax]


@pytest.mark.parametrize("checker", CHECKS, ids=lambda c: c.__name__)
def test_a_non_callable_is_a_type_error_that_says_what_was_expected(checker):
    with pytest.raises(TypeError, match=rf"check\.{checker.__name__} expects a function fn\(.*got int"):
        checker(3)
    with pytest.raises(TypeError, match="pass the function itself"):
        checker(torch.zeros(3))
    with pytest.raises(TypeError, match="Did the cell that defines your function run"):
        checker(None)


@pytest.mark.parametrize("checker", CHECKS, ids=lambda c: c.__name__)
def test_a_function_that_raises_is_reported_not_propagated(checker):
    def broken(*args, **kwargs):
        raise KeyError("oops")

    r = checker(broken)
    rejected(r, "raised KeyError", "`fn(", "full traceback")


@pytest.mark.parametrize("checker, out, words", [
    (check.gaussian_kl, None, ["returns None", "return"]),
    (check.bernoulli_log_likelihood, 1.5, ["Python number", ".item()"]),
    (check.elbo, "elbo", ["returns a str"]),
], ids=["none", "float", "str"])
def test_a_function_that_returns_no_tensor_is_told_so(checker, out, words):
    rejected(checker(lambda *args, **kwargs: out), *words)


def test_changing_an_input_in_place_is_reported():
    def in_place(mu, logvar):
        var = logvar.exp_()          # overwrites logvar
        return 0.5 * (mu ** 2 + var - var.log() - 1).sum(-1)

    rejected(check.gaussian_kl(in_place), "in place")


def test_a_verdict_is_the_same_every_time_and_renders_in_a_notebook():
    wrong = WRONG_KL["sigma for sigma^2"][0]
    a, b = check.gaussian_kl(wrong), check.gaussian_kl(wrong)
    assert str(a) == str(b) == repr(a)
    md = a._repr_markdown_()
    assert md.startswith("**✗ check.gaussian_kl: not yet.**") and "σ²" in md
    ok = check.elbo(gaussian_elbo)
    assert ok._repr_markdown_().startswith("**✓ check.elbo: ok.**")
    assert "\n" not in str(a) and "\n" not in str(ok)     # one paragraph
