"""The chapter-11 k-slider explorer on the built site: it draws, and dragging the slider moves the
highlighted point and the readout. Skips without a built site that has the page (see test_site.py)."""
import json
import os
import re
import shutil
import subprocess

import pytest

from test_site import CHROMIUM, ROOT, SCREENSHOTS, _missing, html_pages, served_site, site  # noqa: F401

DRIVER = ROOT / "tests" / "browser" / "iwae_check.mjs"
MARK = "vae-iwae-readout"        # in the explorer's front end, saved in the page's widget state


@pytest.fixture(scope="module")
def iwae_report(site, served_site):  # noqa: F811
    pages = [p for p in html_pages(site) if MARK in p.read_text("utf-8")]
    if not pages:
        pytest.skip("the built site has no page with the chapter-11 bound explorer")
    if shutil.which("node") is None:
        _missing("node is not installed")
    if not (ROOT / "node_modules" / "playwright-core").is_dir():
        _missing("node_modules/playwright-core is missing: run `npm ci`")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no chromium at {CHROMIUM}")
    config = {"urls": [f"{served_site}/{p.relative_to(site).as_posix()}" for p in pages],
              "screenshot_dir": str(SCREENSHOTS), "chromium": CHROMIUM}
    proc = subprocess.run(["node", str(DRIVER)], input=json.dumps(config), capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, f"browser driver failed:\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout)


@pytest.mark.browser
def test_bound_explorer_answers_the_k_slider(iwae_report):
    r = iwae_report
    assert r["external"] == [] and r["page_errors"] == [], r
    assert r["explorers"]
    for ex in r["explorers"]:
        assert ex["rendered"], f"{ex['url']}: the explorer did not render: {ex.get('error')}"
        before, after = ex["before"], ex["after"]
        assert before["max"] > before["min"], "the canvas is blank"
        assert after["value"] != before["value"], "the slider did not move"
        assert after["hash"] != before["hash"], "moving the slider did not redraw the figure"
        k_before = int(re.search(r"at k = (\d+)", before["readout"]).group(1))
        k_after = int(re.search(r"at k = (\d+)", after["readout"]).group(1))
        assert k_after > k_before, (before["readout"], after["readout"])
