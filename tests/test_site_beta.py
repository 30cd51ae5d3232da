"""Chapter 9's β explorer on the built site: it draws, and dragging β changes the point, the readout
and the pictures, with no request to another host. Skips without a built site that has the page."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from test_site import CHROMIUM, ROOT, SCREENSHOTS, _missing, html_pages, served_site, site  # noqa: F401

DRIVER = ROOT / "tests" / "browser" / "beta_explorer_check.mjs"
MARK = "vae_core.widgets.beta.BetaExplorer"     # the explorer's anywidget id, in the saved state


@pytest.fixture(scope="module")
def beta_report(site, served_site):  # noqa: F811
    pages = [p for p in html_pages(site) if MARK in p.read_text("utf-8")]
    if not pages:
        pytest.skip("no page of the built site contains a BetaExplorer (chapter 9 not built)")
    node = shutil.which("node")
    if node is None:
        _missing("node is not installed")
    if not (ROOT / "node_modules" / "playwright-core").is_dir():
        _missing("node_modules/playwright-core is missing: run `npm ci`")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no chromium at {CHROMIUM}: install Debian's 'chromium' package")
    config = {"urls": [f"{served_site}/{p.relative_to(site).as_posix()}" for p in pages],
              "screenshot_dir": str(SCREENSHOTS), "chromium": CHROMIUM}
    proc = subprocess.run([node, str(DRIVER)], input=json.dumps(config), capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, f"browser driver failed:\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout)


@pytest.mark.browser
def test_beta_explorer_answers_the_slider(beta_report):
    r = beta_report
    assert r["external"] == [], f"requests to other hosts: {r['external']}"
    assert r["page_errors"] == [], f"JavaScript errors: {r['page_errors']}\nconsole: {r['console_errors']}"
    assert r["explorers"]
    for ex in r["explorers"]:
        assert ex["rendered"], f"{ex['url']}: the β explorer did not render: {ex.get('error')}"
        before, after = ex["before"], ex["after"]
        for canvas in ("rd", "recon", "trav"):
            assert before[canvas]["max"] > before[canvas]["min"], f"the {canvas} canvas is blank"
        assert ex["dragged"] and after["index"] != before["index"], "dragging did not move the slider"
        assert after["beta"] != before["beta"] and after["readout"] != before["readout"]
        assert after["rd"]["hash"] != before["rd"]["hash"], "the chosen point did not move on the R–D plot"
        assert after["recon"]["hash"] != before["recon"]["hash"], "the reconstructions did not change"
        assert after["trav"]["hash"] != before["trav"]["hash"], "the traversals did not change"
