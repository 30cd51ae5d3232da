"""Chapter 12's categorical code explorer on the built site: clicking a class redraws the image.

Skips (unless ``SITE_DIR`` is set, see ``tests/test_site.py``) when there is no built site, no page
with the explorer, or no node / playwright-core / chromium.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from test_site import CHROMIUM, ROOT, SCREENSHOTS, _missing, html_pages, served_site, site  # noqa: F401

DRIVER = ROOT / "tests" / "browser" / "categorical_check.mjs"
MARK = "CategoricalExplorer"


@pytest.fixture(scope="module")
def report(site, served_site):  # noqa: F811
    pages = [p for p in html_pages(site) if MARK in p.read_text("utf-8")]
    if not pages:
        _missing("no page of the built site contains a CategoricalExplorer (chapter 12)")
    node = shutil.which("node")
    if node is None:
        _missing("node is not installed")
    if not (ROOT / "node_modules" / "playwright-core").is_dir():
        _missing("node_modules/playwright-core is missing: run `npm ci`")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no chromium at {CHROMIUM}: install Debian's 'chromium' package")
    config = {"url": f"{served_site}/{pages[0].relative_to(site).as_posix()}",
              "screenshot_dir": str(SCREENSHOTS), "chromium": CHROMIUM}
    proc = subprocess.run([node, str(DRIVER)], input=json.dumps(config), capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, f"browser driver failed:\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout)


@pytest.mark.browser
def test_categorical_explorer_answers_clicks(report):
    r = report
    assert r["rendered"], f"the explorer did not render: {r.get('error')}\n{r['console_errors']}"
    assert r["external"] == [] and r["page_errors"] == [], (r["external"], r["page_errors"])
    assert r["cells"] == 20 * 10 and r["thumbs"] == 10
    assert r["before"]["max"] > r["before"]["min"], "the canvas is blank"
    # the ten classes of the first variable: the current class redraws the same image, others differ
    assert len(set(r["class_hashes"])) >= 2, "clicking the classes of a variable never changed the image"
    assert r["code_after_clicks"].startswith("c = (9,"), r["code_after_clicks"]
    assert r["code_after_thumb"].startswith("c = (2,"), r["code_after_thumb"]
    assert r["after_thumb"]["hash"] == r["class_hashes"][2], "the thumbnail did not set the class it shows"
    assert r["code_after_sample"] != r["code_after_thumb"]
    assert r["code_after_reset"] == r["code_before"] and r["after_reset"]["hash"] == r["before"]["hash"]
