"""vae_core.notebook: quick mode, epochs, the chapter data set with its visible fallback, the timer."""
import pytest

from vae_core import notebook


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)])
def test_quick_mode_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("VAE_BOOK_QUICK", value)
    assert notebook.quick_mode() is expected
    assert notebook.pick("q", "f") == ("q" if expected else "f")


def test_epochs_for_keeps_examples_seen_roughly_constant(monkeypatch):
    monkeypatch.delenv("VAE_BOOK_QUICK", raising=False)
    assert notebook.epochs_for(8_000, examples=120_000) == 15
    assert notebook.epochs_for(60_000, examples=120_000) == 2
    assert notebook.epochs_for(1_000_000, examples=120_000) == 1
    assert notebook.epochs_for(10, examples=120_000, max_epochs=30) == 30
    monkeypatch.setenv("VAE_BOOK_QUICK", "1")
    assert notebook.epochs_for(60_000, quick=3) == 3


def test_chapter_data_falls_back_to_digits_with_a_visible_notice(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("VAE_BOOK_QUICK", raising=False)
    monkeypatch.setenv("VAE_CORE_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("VAE_CORE_OFFLINE", "1")
    monkeypatch.setenv("VAE_BOOK_DATASET", "mnist")
    ds = notebook.chapter_data("train")
    assert ds.name == "digits" and ds.image_shape == (8, 8)
    out = capsys.readouterr().out
    assert "'mnist' data set is not available" in out and "VAE_CORE_DATA" in out


def test_chapter_data_quick_mode_uses_digits_and_subsets(monkeypatch):
    monkeypatch.setenv("VAE_BOOK_QUICK", "1")
    monkeypatch.delenv("VAE_BOOK_DATASET", raising=False)
    ds = notebook.chapter_data("train", binarize="static", quick_size=100)
    assert ds.name == "digits" and len(ds) == 100 and len(ds.y) == 100
    assert set(ds.x.unique().tolist()) <= {0.0, 1.0}


def test_chapter_timer_reports_seconds(capsys):
    timer = notebook.start_chapter("test")
    assert timer.seconds is None
    timer.finish()
    assert timer.seconds >= 0
    assert "Measured run time" in capsys.readouterr().out


def test_chapter_times_reads_the_execution_cache(tmp_path, capsys):
    """book/chapter_times.py: the seconds the cache recorded for the chapter's current code, the data
    set it really used (a fallback notice in its outputs is reported), and the chapters not executed."""
    import importlib.util

    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    from conftest import ROOT
    spec = importlib.util.spec_from_file_location("chapter_times", ROOT / "book" / "chapter_times.py")
    ct = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ct)

    chapters = ct.chapters()
    assert [p.stem[:2] for p in chapters] == [f"{i:02d}" for i in range(16)]     # the toc's order
    cache = get_cache(str(tmp_path / "_build" / ".jupyter_cache"))
    for path, seconds, fallback in ((chapters[1], 12.5, False), (chapters[6], 75.0, True)):
        nb = nbformat.read(path, as_version=4)
        if fallback:
            nb.cells[1].outputs = [nbformat.v4.new_output(
                "display_data", data={"text/html": "<div>The 'fashion-mnist' data set is not available here, "
                                                   "so this chapter uses scikit-learn's 8x8 'digits'</div>"})]
        cache.cache_notebook_bundle(CacheBundleIn(nb, str(path), data={"execution_seconds": seconds}),
                                    check_validity=False)
    rows, _ = ct.table(tmp_path / "_build", "fashion-mnist")
    by_name = {r[0]: r for r in rows}
    assert by_name[chapters[1].stem][1:] == (12.5, "fashion-mnist", "ok")
    assert by_name[chapters[6].stem][1] == 75.0
    assert by_name[chapters[6].stem][2] == "digits (fallback: fashion-mnist missing)"
    assert by_name[chapters[6].stem][3].startswith("WARNING: over the 60 s limit")
    assert by_name[chapters[0].stem][1] is None and "not executed" in by_name[chapters[0].stem][3]
    assert ct.main([str(tmp_path / "_build")]) == 0
    out = capsys.readouterr().out
    assert "2 of 16 chapters executed, 1 over the limit" in out
    assert ct.main([str(tmp_path / "nowhere")]) == 2
    assert "no execution cache" in capsys.readouterr().err


def test_long_mode_reads_the_environment(monkeypatch):
    monkeypatch.setenv("VAE_BOOK_LONG", "1")
    assert notebook.long_mode()
    monkeypatch.setenv("VAE_BOOK_LONG", "0")
    assert not notebook.long_mode()
