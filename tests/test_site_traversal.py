"""The traversal explorer on the built website (chapter 14): it draws, and a dragged slider changes
the pictures and the readout. Skips (or fails, when SITE_DIR is set) like tests/test_site.py."""
from __future__ import annotations


import pytest

from test_site import drive_widget_pages, served_site, site  # noqa: F401

MARK = "vae_core.widgets.traversal.TraversalExplorer"     # the anywidget id in the saved widget state


@pytest.fixture(scope="module")
def traversal_report(site, served_site):  # noqa: F811
    return drive_widget_pages(site, served_site, "traversal_check.mjs", MARK, "a TraversalExplorer (chapter 14)")


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
