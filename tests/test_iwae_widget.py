"""The k-slider explorer of chapter 11: its arguments, and its JavaScript readout against Python's."""
import json

import pytest

from vae_core.widgets import BoundExplorer
from vae_core.widgets.precomputed import bound_summary

KS = [1, 2, 5, 10, 50, 200]
BOUNDS = [-7.30, -6.91, -6.55, -6.40, -6.21, -6.17]
LOG_PX = -6.10


def test_summary_numbers():
    s = bound_summary(KS, BOUNDS, LOG_PX, 3)
    assert s["k"] == 10
    assert s["gap"] == pytest.approx(LOG_PX - BOUNDS[3])
    assert s["gain"] == pytest.approx(BOUNDS[3] - BOUNDS[0])
    assert s["closed"] == pytest.approx((BOUNDS[3] - BOUNDS[0]) / (LOG_PX - BOUNDS[0]))
    assert bound_summary(KS, BOUNDS, LOG_PX, 0)["closed"] == 0.0
    w = BoundExplorer(KS, BOUNDS, LOG_PX, spread=[0.5] * 6, ess=[1, 1.5, 2, 3, 5, 8], index=2)
    assert w.summary() == bound_summary(KS, BOUNDS, LOG_PX, 2)
    assert "iwae_explorer" not in w._esm and "function summarize" in w._esm


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(ks=[1, 5, 5]), ValueError, "increasing"),
    (dict(ks=[0, 5]), ValueError, "positive ints"),
    (dict(ks=[1, 2.5]), ValueError, "positive ints"),
    (dict(bounds=[1.0, 2.0]), ValueError, "one value per k"),
    (dict(bounds=[float("nan")] * 6), ValueError, "finite"),
    (dict(bounds="abc"), TypeError, "sequence of numbers"),
    (dict(spread=[0.1]), ValueError, "one value per k"),
    (dict(index=6), ValueError, "index"),
])
def test_bad_arguments_are_clear_errors(kwargs, error, match):
    args = dict(ks=KS, bounds=BOUNDS, log_px=LOG_PX)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        BoundExplorer(**args)


def test_javascript_readout_equals_python(run_js):
    js = run_js("iwae_explorer.js",
        f"const ks = {json.dumps(KS)}, b = {json.dumps(BOUNDS)}, lp = {LOG_PX};\n"
        "const out = ks.map((_, i) => M.summarize(ks, b, lp, i));\n"
        "const range = M.axisRange(b, lp, []);\n"
        "const box = {left: 0, right: 100, top: 0, bottom: 50};\n"
        "const ends = [M.toCanvas(ks[0], range[0], ks, range, box), M.toCanvas(ks[5], range[1], ks, range, box)];\n"
        "let threw = false; try { M.summarize(ks, b, lp, 6); } catch (e) { threw = true; }\n"
        "return {out, range, ends, threw, render: typeof M.default.render};")
    for i, row in enumerate(js["out"]):
        py = bound_summary(KS, BOUNDS, LOG_PX, i)
        assert row.keys() == py.keys()
        for key in py:
            assert row[key] == pytest.approx(py[key], rel=1e-12, abs=1e-12)
    lo, hi = js["range"]
    assert lo < min(BOUNDS) and hi > LOG_PX
    assert js["ends"] == [[0, 50], [100, 0]]
    assert js["threw"] and js["render"] == "function"
