"""The traversal explorer on the built website (chapter 14): it draws, and a dragged slider changes
the pictures and the readout. Skips (or fails, when SITE_DIR is set) like tests/test_site.py."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from test_site import CHROMIUM, ROOT, SCREENSHOTS, _missing, html_pages, served_site, site  # noqa: F401

DRIVER = ROOT / "tests" / "browser" / "traversal_check.mjs"
MARK = "vae_core.widgets.traversal.TraversalExplorer"     # the anywidget id in the saved widget state


@pytest.fixture(scope="module")
def traversal_report(site, served_site):  # noqa: F811
    pages = [p for p in html_pages(site) if MARK in p.read_text("utf-8")]
    if not pages:
        pytest.skip("no page of the built site shows a TraversalExplorer")
    node = shutil.which("node")
    if node is None:
        _missing("node is not installed")
    if not (ROOT / "node_modules" / "playwright-core").is_dir():
        _missing("node_modules/playwright-core is missing: run `npm ci`")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no chromium at {CHROMIUM}")
    config = {"urls": [f"{served_site}/{p.relative_to(site).as_posix()}" for p in pages],
              "screenshot_dir": str(SCREENSHOTS), "chromium": CHROMIUM}
    proc = subprocess.run([node, str(DRIVER)], input=json.dumps(config), capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, f"browser driver failed:\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout)


@pytest.mark.browser
def test_traversal_explorer_draws_and_answers_the_slider(traversal_report):
    r = traversal_report
    assert r["external"] == [] and r["page_errors"] == [], r
    assert r["explorers"]
    for ex in r["explorers"]:
        assert ex["rendered"], f"{ex['url']}: did not render: {ex.get('error')}"
        assert ex["canvases"] >= 2
        assert any(c["max"] > c["min"] for c in ex["before"]), "every picture is blank"
        assert ex["value_after"] != ex["value_before"], "the slider did not move"
        assert ex["readout_after"] != ex["readout_before"]
        changed = sum(b["hash"] != a["hash"] for b, a in zip(ex["before"], ex["after"]))
        assert changed >= 1, f"{ex['url']}: moving the slider changed no picture"
