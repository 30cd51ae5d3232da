"""Chapter 9's β explorer on the built site: it draws, and dragging β changes the point, the readout
and the pictures, with no request to another host. Skips without a built site that has the page."""
from __future__ import annotations


import pytest

from test_site import drive_widget_pages, served_site, site  # noqa: F401

MARK = "vae_core.widgets.beta.BetaExplorer"     # the explorer's anywidget id, in the saved state


@pytest.fixture(scope="module")
def beta_report(site, served_site):  # noqa: F811
    return drive_widget_pages(site, served_site, "beta_explorer_check.mjs", MARK, "a BetaExplorer (chapter 9)")


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
