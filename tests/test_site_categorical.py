"""Chapter 12's categorical code explorer on the built site: clicking a class redraws the image.

Skips (unless ``SITE_DIR`` is set, see ``tests/test_site.py``) when there is no built site, no page
with the explorer, or no node / playwright-core / chromium.
"""
from __future__ import annotations


import pytest

from test_site import drive_widget_pages, served_site, site  # noqa: F401

MARK = "CategoricalExplorer"


@pytest.fixture(scope="module")
def report(site, served_site):  # noqa: F811
    return drive_widget_pages(site, served_site, "categorical_check.mjs", MARK, "a CategoricalExplorer (chapter 12)")


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
