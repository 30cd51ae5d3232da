"""The conditional explorer of chapter 10 on the built website, driven in a headless browser.

Uses the built site of ``tests/test_site.py`` (``$SITE_DIR``) and its fixtures; skips when there is
no built site, or when it has no page with a ConditionalExplorer (unless ``SITE_DIR`` is set).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from test_site import CHROMIUM, ROOT, SCREENSHOTS, _missing, html_pages, served_site, site  # noqa: F401

DRIVER = ROOT / "tests" / "browser" / "conditional_check.mjs"
MARK = "vae_core.widgets.conditional.ConditionalExplorer"   # the explorer's anywidget id, in the saved state


@pytest.fixture(scope="module")
def report(site, served_site):  # noqa: F811
    node = shutil.which("node")
    if node is None:
        _missing("node is not installed")
    if not (ROOT / "node_modules" / "playwright-core").is_dir():
        _missing("node_modules/playwright-core is missing: run `npm ci`")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no chromium at {CHROMIUM}: install Debian's 'chromium' package")
    pages = [p for p in html_pages(site) if MARK in p.read_text("utf-8")]
    if not pages:
        _missing("no page of the built site contains a ConditionalExplorer (chapter 10)")
    config = {"urls": [f"{served_site}/{p.relative_to(site).as_posix()}" for p in pages],
              "screenshot_dir": str(SCREENSHOTS), "chromium": CHROMIUM}
    proc = subprocess.run([node, str(DRIVER)], input=json.dumps(config), capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, f"browser driver failed:\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout)


@pytest.mark.browser
def test_conditional_explorer_answers_its_buttons_and_sliders(report):
    assert report["external"] == [], f"requests to other hosts: {report['external']}"
    assert report["page_errors"] == [], f"JavaScript errors: {report['page_errors']}"
    assert report["explorers"], "no conditional explorer was visited"
    for ex in report["explorers"]:
        assert ex["rendered"], f"{ex['url']}: the explorer did not render: {ex.get('error')}"
        assert ex["class_buttons"] == ex["thumbs"] >= 2 and ex["sliders"] >= 1
        assert ex["before"]["max"] > ex["before"]["min"], "the canvas is blank"
        assert ex["after_class"]["hash"] != ex["before"]["hash"], "a class button did not change the image"
        assert ex["pressed_after_class"] != ex["caption_before"] and ex["caption_after_class"] != ex["caption_before"]
        assert ex["value_after"] != ex["value_before"], "the slider did not move"
        assert ex["after_slider"]["hash"] != ex["after_class"]["hash"], "moving the style slider did not change the image"
        assert ex["caption_after_slider"] != ex["caption_after_class"]
        if ex["style_buttons"]:
            assert ex["after_style"]["hash"] != ex["after_slider"]["hash"]
        assert ex["reset_restores"], "reset did not bring back the first image"
