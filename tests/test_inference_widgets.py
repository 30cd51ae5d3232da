"""The Part I explorers (widgets/part1.py): their JavaScript maths (run under node) equals the Python reference."""
import json

import pytest
import traitlets

from vae_core import exact
from vae_core.widgets import ELBOExplorer, KLExplorer


ELBO_CASES = [
    dict(x=2.0, w=1.5, b=0.0, sigma=0.8, q_mean=-1.0, q_std=1.0),
    dict(x=-3.1, w=-0.7, b=0.4, sigma=0.3, q_mean=0.9, q_std=0.2),
    dict(x=0.5, w=2.5, b=-1.0, sigma=2.0, q_mean=0.0, q_std=2.7),
]


def test_elbo_explorer_js_equals_python(run_js):
    widgets = [ELBOExplorer(**c) for c in ELBO_CASES]
    js_args = [dict(x=c["x"], w=c["w"], b=c["b"], sigma=c["sigma"], m=c["q_mean"], s=c["q_std"]) for c in ELBO_CASES]
    out = run_js("elbo_explorer.js", f"return {json.dumps(js_args)}.map(M.elboTerms);")
    for w, js in zip(widgets, out):
        py = w.readouts()
        assert set(py) == set(js)
        for k in py:
            assert js[k] == pytest.approx(py[k], rel=1e-9, abs=1e-9), k
        # the identity holds in the browser too, and the gap vanishes at the posterior
        assert js["elbo"] + js["gap"] == pytest.approx(js["logEvidence"], abs=1e-9)
    at_post = run_js("elbo_explorer.js",
                     "const p = M.posterior(2, 1.5, 0, 0.8);"
                     "return M.elboTerms({x: 2, w: 1.5, b: 0, sigma: 0.8, m: p.mean, s: p.std});")
    assert abs(at_post["gap"]) < 1e-12
    assert at_post["elbo"] == pytest.approx(at_post["logEvidence"], abs=1e-12)


KL_CASES = [dict(separation=4.0, weight=0.4, component_std=0.6),
            dict(separation=6.0, weight=0.25, component_std=0.8),
            dict(separation=1.0, weight=0.5, component_std=1.0)]
Q_POINTS = [(0.5, 1.0), (-2.0, 0.4), (3.0, 2.5)]


def test_kl_explorer_js_equals_python(run_js):
    body = (f"const cases = {json.dumps(KL_CASES)}; const qs = {json.dumps(Q_POINTS)};"
            "return cases.map((c) => { const mix = M.twoModeMixture(c.separation, c.weight, c.component_std);"
            "  return { moments: M.mixtureMoments(mix), negEnt: M.mixtureNegEntropy(mix),"
            "    fwd: qs.map(([m, s]) => M.klForward(mix, m, s)), rev: qs.map(([m, s]) => M.klReverse(mix, m, s)) }; });")
    out = run_js("kl_explorer.js", body)
    for case, js in zip(KL_CASES, out):
        p = KLExplorer(**case).mixture()
        assert js["moments"]["mean"] == pytest.approx(p.mean().item(), abs=1e-12)
        assert js["moments"]["variance"] == pytest.approx(p.variance().item(), abs=1e-12)
        for (m, s), f, r in zip(Q_POINTS, js["fwd"], js["rev"]):
            assert f == pytest.approx(exact.kl_forward(p, m, s).item(), abs=1e-9)
            assert r == pytest.approx(exact.kl_reverse(p, m, s).item(), abs=1e-9)


def test_kl_explorer_js_marks_the_same_optima_as_python(run_js):
    body = (f"const cases = {json.dumps(KL_CASES)};"
            "const ms = M.linspace(-5, 5, 101), ss = M.logspace(0.1, 4, 61);"
            "return cases.map((c) => { const mix = M.twoModeMixture(c.separation, c.weight, c.component_std);"
            "  const g = M.klGrids(mix, ms, ss); return M.reverseOptima(mix, ms, ss, g.reverse); });")
    out = run_js("kl_explorer.js", body)
    for case, js in zip(KL_CASES, out):
        py = KLExplorer(**case).readouts()["reverseOptima"]
        assert len(js) == len(py), (case, js, py)
        for a, b in zip(js, py):  # same order (best first), same place within a grid cell
            assert a["mean"] == pytest.approx(b["mean"], abs=0.05)
            assert a["std"] == pytest.approx(b["std"], rel=0.03)
            assert a["kl"] == pytest.approx(b["kl"], abs=1e-3)


def test_kl_explorer_readouts_follow_the_theory():
    r = KLExplorer(separation=4.0, weight=0.4, component_std=0.6).readouts()
    fwd, best = r["forwardOptimum"], r["reverseOptima"][0]
    assert fwd["mean"] == pytest.approx(0.4, abs=1e-12)                  # E_p = 0.4(-2) + 0.6(2)
    assert best["mean"] == pytest.approx(2.0, abs=0.05) and best["std"] < fwd["std"] / 2
    assert r["klForward"] > 0 and r["klReverse"] > 0 and r["klForward"] != pytest.approx(r["klReverse"])


def test_elbo_explorer_readouts_satisfy_the_identity():
    for c in ELBO_CASES:
        r = ELBOExplorer(**c).readouts()
        assert r["elbo"] + r["gap"] == pytest.approx(r["logEvidence"], abs=1e-10)
        assert r["elbo"] == pytest.approx(r["recon"] - r["klPrior"], abs=1e-12)


def test_widgets_are_anywidgets_with_a_render_export():
    for cls in (ELBOExplorer, KLExplorer):
        w = cls()
        assert "export default { render }" in w._esm
        assert ".vae-iw" in w._css
        state = w.get_state()
        assert state["q_std"] > 0 and "title" in state


def test_widgets_reject_bad_traits():
    with pytest.raises(traitlets.TraitError, match=r"sigma must be a finite number > 0"):
        ELBOExplorer(sigma=0.0)
    with pytest.raises(traitlets.TraitError, match=r"q_std must be a finite number > 0"):
        KLExplorer(q_std=-1.0)
    with pytest.raises(traitlets.TraitError, match=r"weight must lie strictly between 0 and 1"):
        KLExplorer(weight=1.0)
    with pytest.raises(traitlets.TraitError, match=r"std_range must be \[low, high\] with 0 < low < high"):
        ELBOExplorer(std_range=[0.0, 1.0])
