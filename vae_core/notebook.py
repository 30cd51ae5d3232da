"""Helpers the chapters share: quick mode, the data set for chapters, and the chapter timer.

* Quick mode (``VAE_BOOK_QUICK=1``, set by the test command) runs every chapter on tiny settings;
  :func:`pick` chooses between the quick and the full value of a setting. Long mode
  (``VAE_BOOK_LONG=1``, :func:`long_mode`) asks chapter 7 for the paper-length run.
* :func:`chapter_data` loads the chapter's data set (``VAE_BOOK_DATASET``, default ``mnist``; in
  quick mode ``digits`` unless the variable is set). When MNIST cannot be had it shows a visible
  notice that says how to get it and falls back to ``digits``; it never waits on a network.
* :func:`start_chapter` shows the measured run time at the top of the page once the chapter ends.
"""
from __future__ import annotations

import dataclasses
import html
import os
import time

__all__ = ["quick_mode", "long_mode", "pick", "epochs_for", "chapter_data", "fallback_in", "start_chapter", "ChapterTimer",
           "notice"]

_FALLBACK = "The '{}' data set is not available here"


def quick_mode() -> bool:
    """True when ``VAE_BOOK_QUICK`` is set to 1/true/yes."""
    return os.environ.get("VAE_BOOK_QUICK", "").strip().lower() in ("1", "true", "yes")


def long_mode() -> bool:
    """True when ``VAE_BOOK_LONG`` is 1/true/yes: chapters then run the paper-length experiments."""
    return os.environ.get("VAE_BOOK_LONG", "").strip().lower() in ("1", "true", "yes")


def pick(quick, full):
    """``quick`` in quick mode, ``full`` otherwise: ``epochs = pick(1, 30)``."""
    return quick if quick_mode() else full


def epochs_for(n_train: int, examples: int = 120_000, quick: int = 2, max_epochs: int = 30) -> int:
    """Epochs that show the model about ``examples`` training images (at least 1, at most ``max_epochs``).

    Keeps a chapter's full-mode run time roughly the same whether it trains on the 8,000-image
    MNIST subset or on 60,000 images; in quick mode returns ``quick``.
    """
    if quick_mode():
        return quick
    return max(1, min(max_epochs, round(examples / max(1, n_train))))


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
        ip = get_ipython()
        return ip is not None and "IPKernelApp" in ip.config
    except Exception:  # pragma: no cover - IPython missing
        return False


def notice(message: str, kind: str = "warning") -> None:
    """Show ``message`` as a coloured box in a notebook (and on the built page), else print it."""
    if _in_notebook():
        from IPython.display import HTML, display
        colours = {"warning": ("#fff4e5", "#e69500"), "note": ("#e8f4fd", "#1f78b4")}
        bg, border = colours.get(kind, colours["note"])
        display(HTML(f'<div class="vae-notice vae-notice-{kind}" style="background:{bg};'
                     f'border-left:4px solid {border};padding:0.6em 1em;margin:0.5em 0">'
                     f'{html.escape(message)}</div>'))
    else:
        print(f"[{kind}] {message}")


def chapter_data(split: str = "train", name: str | None = None, binarize=None, quick_size: int | None = None):
    """The data set a chapter uses, with a visible fallback to ``digits``.

    Args:
        split: ``"train"`` or ``"test"``.
        name: overrides ``VAE_BOOK_DATASET``.
        binarize: passed to :func:`vae_core.data.load`.
        quick_size: in quick mode keep only the first ``quick_size`` examples.
    """
    from . import data

    explicit = name or os.environ.get("VAE_BOOK_DATASET")
    wanted = explicit or ("digits" if quick_mode() else "mnist")
    try:
        ds = data.load(wanted, split=split, binarize=binarize)
    except data.DataUnavailableError as err:
        notice(f"{_FALLBACK.format(wanted)}, so this chapter uses scikit-learn's "
               f"8x8 'digits' instead (results will differ from the text). {err}")
        ds = data.load("digits", split=split, binarize=binarize)
    if quick_mode() and quick_size is not None and len(ds) > quick_size:
        ds = dataclasses.replace(ds, x=ds.x[:quick_size], y=None if ds.y is None else ds.y[:quick_size])
    return ds


def fallback_in(nb) -> str | None:
    """The data set that an executed chapter notebook announced as missing (it then used ``digits``), or None."""
    import re

    pattern = re.compile(re.escape(_FALLBACK).replace(re.escape("{}"), r"([\w-]+)"))
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            for text in (out.get("text", ""), *out.get("data", {}).values()):
                found = pattern.search(str(text))
                if found:
                    return found.group(1)
    return None


class ChapterTimer:
    """Measures a chapter's run time and writes it into the box shown at the top of the page."""

    def __init__(self, title: str):
        self.title = title
        self.start = time.perf_counter()
        self.display_id = f"chapter-timer-{id(self)}"
        self.seconds: float | None = None
        self._show(f"Measured run time: this chapter is running ({self._mode()}) ...", update=False)

    @staticmethod
    def _mode() -> str:
        return "quick mode" if quick_mode() else "full mode"

    def _show(self, text: str, update: bool) -> None:
        if not _in_notebook():
            print(text)
            return
        from IPython.display import HTML, display, update_display
        box = (f'<div class="vae-timer" style="background:#eef6ee;border-left:4px solid #2e7d32;'
               f'padding:0.5em 1em">{html.escape(text)}</div>')
        (update_display if update else display)(HTML(box), display_id=self.display_id)

    def finish(self) -> None:
        """Stop the clock and write the measured time into the box at the top (also ``.seconds``)."""
        self.seconds = time.perf_counter() - self.start
        text = f"Measured run time: {self.seconds:.1f} s for the whole chapter ({self._mode()})."
        self._show(text, update=True)
        if _in_notebook():
            print(f"Chapter finished in {self.seconds:.1f} s ({self._mode()}).")


def start_chapter(title: str) -> ChapterTimer:
    """Call in a chapter's first code cell; call ``.finish()`` in its last."""
    return ChapterTimer(title)
