"""The chapter-11 k-slider explorer on the built site: it draws, and dragging the slider moves the
highlighted point and the readout. Skips without a built site that has the page (see test_site.py)."""
import re

import pytest

from test_site import drive_widget_pages, served_site, site  # noqa: F401

MARK = "vae-iwae-readout"        # in the explorer's front end, saved in the page's widget state


@pytest.fixture(scope="module")
def iwae_report(site, served_site):  # noqa: F811
    return drive_widget_pages(site, served_site, "iwae_check.mjs", MARK, "chapter 11's bound explorer")


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
