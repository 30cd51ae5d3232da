"""The cluster explorer of chapter 13 on the built site, driven in a real browser.

Skips unless a built site (``SITE_DIR``) has a page with a ClusterExplorer; needs node,
``node_modules/playwright-core`` and chromium, like :mod:`tests.test_site`.
"""
from __future__ import annotations


import pytest

from test_site import drive_widget_pages, served_site, site  # noqa: F401

MARK = "ClusterExplorer"


@pytest.fixture(scope="module")
def cluster_report(site, served_site):  # noqa: F811
    return drive_widget_pages(site, served_site, "cluster_check.mjs", MARK, "a ClusterExplorer (chapter 13)")


@pytest.mark.browser
def test_cluster_explorer_answers_buttons_and_sliders(cluster_report):
    r = cluster_report
    assert r["external"] == [] and r["page_errors"] == [], (r["external"], r["page_errors"], r["console_errors"])
    assert r["pages"]
    for p in r["pages"]:
        assert p["rendered"], f"{p['url']}: the cluster explorer did not render: {p.get('error')}"
        assert p["buttons"] >= 2 and p["sliders"] >= 1
        assert p["before"]["max"] > p["before"]["min"], "the canvas is blank"
        assert p["cluster_after"] != p["cluster_before"], "clicking a cluster button did not select it"
        assert p["after_cluster"]["hash"] != p["before"]["hash"], "another cluster drew the same image"
        assert p["label_after_cluster"] != p["label_before"]
        assert p["value_after"] != p["value_before"], "the slider did not move"
        assert p["after_slider"]["hash"] != p["after_cluster"]["hash"], "moving the slider did not change the image"
        assert p["after_centre"]["hash"] == p["after_cluster"]["hash"], "'back to the mean' did not restore the image"
