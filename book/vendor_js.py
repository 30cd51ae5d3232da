"""Copy the JavaScript the website serves from node_modules/ into book/vendor/offline/.

Run by `make vendor` after `npm ci`. Sphinx copies book/vendor/ into the site's _static/, so the
pages load RequireJS, the widget manager, anywidget and MathJax from the site itself, never from
a CDN. The folder is rebuilt from scratch each time and is not tracked by git.

    python book/vendor_js.py [--node-modules DIR] [--dest DIR]
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (package, file or folder inside the package, destination inside offline/)
FILES = [
    ("requirejs", "require.js", "require.js"),
    ("@jupyter-widgets/html-manager", "dist/embed-amd.js", "html-manager/embed-amd.js"),
    ("anywidget", "dist/index.js", "npm/anywidget/dist/index.js"),
    ("mathjax", "es5/tex-chtml.js", "mathjax/tex-chtml.js"),
    # MathJax loads these on demand, relative to tex-chtml.js
    ("mathjax", "es5/output/chtml/fonts/woff-v2", "mathjax/output/chtml/fonts/woff-v2"),
    ("mathjax", "es5/input/tex/extensions", "mathjax/input/tex/extensions"),
    ("mathjax", "es5/ui", "mathjax/ui"),
    ("mathjax", "es5/a11y", "mathjax/a11y"),
    ("mathjax", "es5/sre", "mathjax/sre"),
    ("mathjax", "es5/adaptors", "mathjax/adaptors"),
]
# the widget manager's icon fonts, referenced from its CSS
FONT_SUFFIXES = (".woff2", ".woff", ".ttf", ".eot", ".svg")
# our own loader configuration (see the comment at its top)
OWN_FILES = [(ROOT / "book" / "offline-widgets.js", "offline-widgets.js")]

SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.MULTILINE)


def _copy_js(src: Path, dest: Path) -> None:
    """Copy a script, dropping source-map comments (their .map files are not shipped)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    text = src.read_text(encoding="utf-8")
    dest.write_text(SOURCE_MAP.sub("", text), encoding="utf-8")


def vendor(node_modules: Path, dest_root: Path) -> list[Path]:
    missing = [f"{pkg}/{rel}" for pkg, rel, _ in FILES if not (node_modules / pkg / rel).exists()]
    if missing:
        sys.exit("book/vendor_js.py: missing in " + str(node_modules) + ": " + ", ".join(missing)
                 + "\nRun `npm ci` (or `make setup-js`) first.")
    out = dest_root / "offline"
    if out.exists():
        shutil.rmtree(out)
    written = []
    for pkg, rel, target in FILES:
        src, dest = node_modules / pkg / rel, out / target
        if src.is_dir():
            shutil.copytree(src, dest)
        elif src.suffix == ".js":
            _copy_js(src, dest)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
        written.append(dest)
    for font in sorted((node_modules / "@jupyter-widgets/html-manager/dist").iterdir()):
        if font.suffix in FONT_SUFFIXES:
            shutil.copy2(font, out / "html-manager" / font.name)
    for src, target in OWN_FILES:
        _copy_js(src, out / target)
        written.append(out / target)
    # licences and versions of what is served
    versions = {}
    for pkg in sorted({pkg for pkg, _, _ in FILES}):
        meta = json.loads((node_modules / pkg / "package.json").read_text(encoding="utf-8"))
        versions[pkg] = {"version": meta["version"], "license": meta.get("license", "see package")}
        for name in ("LICENSE", "LICENSE.txt", "LICENSE.md"):
            if (node_modules / pkg / name).exists():
                lic = out / "licenses" / f"{pkg.replace('/', '__')}-{name}"
                lic.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(node_modules / pkg / name, lic)
                break
    (out / "versions.json").write_text(json.dumps(versions, indent=2) + "\n", encoding="utf-8")
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node-modules", type=Path, default=ROOT / "node_modules")
    parser.add_argument("--dest", type=Path, default=ROOT / "book" / "vendor")
    args = parser.parse_args(argv)
    written = vendor(args.node_modules, args.dest)
    size = sum(f.stat().st_size for f in (args.dest / "offline").rglob("*") if f.is_file())
    print(f"vendored {len(written)} items into {args.dest / 'offline'} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
