"""Print how long each chapter took to execute in a book build, from the build's execution cache.

    python book/chapter_times.py [BUILD_DIR]      # default _build (what `make book` writes)

One line per chapter of ``_toc.yml``: the seconds the notebook's execution took (the record that
Jupyter Book's cache keeps of the notebook's current code), the data set the chapter really used
(read from the executed notebook: a chapter that fell back to ``digits`` says so in its output), and
the budget: 45 s is the aim, 60 s the limit. A chapter over the limit is marked as a warning, not a
failure: machines differ, and the table is a measurement. A chapter with no record (it failed, or the
build did not reach it) is listed as such. The exit status is 0 unless the cache cannot be read.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AIM_S, LIMIT_S = 45.0, 60.0


def chapters(toc: Path = ROOT / "_toc.yml") -> list[Path]:
    """The notebooks of the table of contents, in order."""
    files = re.findall(r"^\s*-\s*file:\s*(\S+)\s*$", toc.read_text(), flags=re.M)
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]


def dataset_used(nb, requested: str) -> str:
    """``requested``, or ``digits (fallback: <name> missing)`` when the chapter announced a fallback."""
    from vae_core.notebook import fallback_in

    missing = fallback_in(nb)
    return f"digits (fallback: {missing} missing)" if missing else requested


def table(build_dir: Path, requested: str) -> tuple[list[tuple[str, float | None, str, str]], str]:
    """Rows ``(chapter, seconds or None, data set, verdict)`` and the path of the cache read."""
    from jupyter_cache import get_cache

    cache_dir = build_dir / ".jupyter_cache"
    if not cache_dir.is_dir():
        raise FileNotFoundError(f"no execution cache at {cache_dir}: build the book first (make book), or "
                                f"pass the build folder that holds .jupyter_cache")
    cache = get_cache(str(cache_dir))
    rows = []
    for path in chapters():
        try:
            record = cache.match_cache_file(str(path))
        except KeyError:
            rows.append((path.stem, None, "-", "not executed (failed, or not reached)"))
            continue
        seconds = (record.data or {}).get("execution_seconds")
        nb = cache.get_cache_bundle(record.pk).nb
        if seconds is None:
            verdict = "no time recorded"
        elif seconds > LIMIT_S:
            verdict = f"WARNING: over the {LIMIT_S:.0f} s limit"
        elif seconds > AIM_S:
            verdict = f"over the {AIM_S:.0f} s aim, within the limit"
        else:
            verdict = "ok"
        rows.append((path.stem, seconds, dataset_used(nb, requested), verdict))
    return rows, str(cache_dir)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build_dir", nargs="?", default="_build", help="the build folder holding .jupyter_cache")
    args = ap.parse_args(argv)
    requested = os.environ.get("VAE_BOOK_DATASET") or "mnist"
    quick = os.environ.get("VAE_BOOK_QUICK", "").strip().lower() in ("1", "true", "yes")
    try:
        rows, where = table(Path(args.build_dir).resolve(), requested)
    except FileNotFoundError as err:
        print(f"chapter_times: {err}", file=sys.stderr)
        return 2
    mode = "quick mode" if quick else "full mode"
    width = max(len(r[0]) for r in rows)
    print(f"Chapter execution times ({mode}, data set requested: {requested}; aim {AIM_S:.0f} s, "
          f"limit {LIMIT_S:.0f} s; from {where})")
    print(f"  {'chapter':<{width}}  {'seconds':>8}  {'data set':<28}  budget")
    total = 0.0
    for name, seconds, ds, verdict in rows:
        shown = "-" if seconds is None else f"{seconds:.1f}"
        total += seconds or 0.0
        print(f"  {name:<{width}}  {shown:>8}  {ds:<28}  {verdict}")
    over = sum(1 for r in rows if r[1] is not None and r[1] > LIMIT_S)
    missing = sum(1 for r in rows if r[1] is None)
    print(f"  {'total':<{width}}  {total:>8.1f}  {len(rows) - missing} of {len(rows)} chapters executed, "
          f"{over} over the limit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
