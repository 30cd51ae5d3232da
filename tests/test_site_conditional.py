"""The conditional explorer of chapter 10 on the built website, driven in a headless browser.

Uses the built site of ``tests/test_site.py`` (``$SITE_DIR``) and its fixtures; skips when there is
no built site, or when it has no page with a ConditionalExplorer (unless ``SITE_DIR`` is set).
"""
from __future__ import annotations


import pytest

from test_site import drive_widget_pages, served_site, site  # noqa: F401

MARK = "vae_core.widgets.conditional.ConditionalExplorer"   # the explorer's anywidget id, in the saved state


@pytest.fixture(scope="module")
def report(site, served_site):  # noqa: F811
    return drive_widget_pages(site, served_site, "conditional_check.mjs", MARK, "a ConditionalExplorer (chapter 10)")


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
