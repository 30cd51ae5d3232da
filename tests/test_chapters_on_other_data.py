"""Every chapter that loads data also runs, in quick mode, on the full-size data sets.

The test command runs the chapters in quick mode on scikit-learn's 8x8 ``digits``; the book is built
on MNIST or Fashion-MNIST. An assert in a chapter states a fact for every data set, so each chapter
that calls ``notebook.chapter_data`` is executed here top to bottom with ``VAE_BOOK_DATASET`` set to
``fashion-mnist`` and to ``mnist`` (quick mode: small subsets, a few epochs). Two things are checked:

* the chapter runs, every assert included, and it really used that data set (no fallback notice);
* every ``torch.testing.assert_close`` that compares float32 values at PyTorch's default tolerance
  uses at most a tenth of it (``tests/nbrun.py`` measures ``max |a - b| / (atol + rtol |b|)``). A
  check nearer its edge than that fails on some other data set or machine: it should compare in
  float64, or state a tolerance that the text justifies.

A data set that is not on this machine skips its tests, except where ``VAE_BOOK_DATA_REQUIRED=1``
(set by ``.ci/run``, which installs both).
"""
from __future__ import annotations

import os

import pytest

from conftest import ROOT
from nbrun import execute
from vae_core import data, notebook

NOTEBOOKS = ROOT / "notebooks"
DATA_CHAPTERS = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb") if "chapter_data(" in p.read_text())
DATASETS = ("fashion-mnist", "mnist")
REQUIRED = os.environ.get("VAE_BOOK_DATA_REQUIRED", "") == "1"
SHARE = 0.1      # the most of its default tolerance a float32 identity check may use


def _available(name: str) -> str | None:
    """None when ``name`` loads here, else the reason."""
    try:
        data.load(name, "test", download=False)
    except data.DataUnavailableError as err:
        return str(err).splitlines()[0]
    return None


def test_the_chapters_that_load_data_are_found():
    assert len(DATA_CHAPTERS) >= 11 and "13_vade.ipynb" in DATA_CHAPTERS


@pytest.mark.slow
@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("chapter", DATA_CHAPTERS)
def test_chapter_runs_and_its_checks_hold_on(chapter, dataset):
    missing = _available(dataset)
    if missing:
        if REQUIRED:
            pytest.fail(f"{dataset} is needed (VAE_BOOK_DATA_REQUIRED=1): {missing}")
        pytest.skip(f"{dataset} is not on this machine: {missing}")
    nb, margins = execute(NOTEBOOKS / chapter, {"VAE_BOOK_QUICK": "1", "VAE_BOOK_DATASET": dataset})
    assert notebook.fallback_in(nb) is None, f"{chapter} fell back to another data set"
    fragile = [m for m in margins if m.dtype == "float32" and not m.explicit and not m.used <= SHARE]
    assert not fragile, (
        f"{chapter} on {dataset}: float32 checks at the default tolerance that use more than "
        f"{SHARE:.0%} of it (compare in float64 or state a justified tolerance): "
        + "; ".join(f"{m.line} uses {m.used:.2f}" for m in fragile))
