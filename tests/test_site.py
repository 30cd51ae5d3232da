"""Checks of the built website: it loads nothing from other hosts, and its explorer works offline.

The site is read from ``$SITE_DIR`` (default ``_build/html``); ``make test`` builds a quick-mode
site into ``_build/quick/_build/html`` and points ``SITE_DIR`` there. Without a built site, or
without node, ``node_modules`` or chromium, these tests skip and say why -- unless ``SITE_DIR`` is
set explicitly, as the test command does: then a missing piece is a failure, not a skip.
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE_DIR = Path(os.environ.get("SITE_DIR", ROOT / "_build" / "html"))
if not SITE_DIR.is_absolute():
    SITE_DIR = ROOT / SITE_DIR
REQUIRED = "SITE_DIR" in os.environ           # the test command built the site: do not skip
SCREENSHOTS = ROOT / "_build" / "screenshots"
DRIVER = ROOT / "tests" / "browser" / "explorer_check.mjs"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
EXPLORER_MARK = "vae_core.widgets.LatentExplorer"   # the explorer's anywidget id, in the saved state


def _missing(reason: str):
    if REQUIRED:
        pytest.fail(f"{reason} (SITE_DIR is set, so this check must run)")
    pytest.skip(reason)


def drive_widget_pages(site: Path, served_site: str, driver: str, mark: str, what: str) -> dict:
    """Run ``tests/browser/<driver>`` on every built page whose HTML contains ``mark`` and return its report.

    The driver reads ``{"urls", "url", "screenshot_dir", "chromium"}`` as JSON on stdin and prints a JSON
    report. A missing page, node, playwright-core or chromium skips locally and fails when SITE_DIR is set.
    """
    pages = [p for p in html_pages(site) if mark in p.read_text("utf-8")]
    if not pages:
        _missing(f"no page of the built site contains {what}")
    node = shutil.which("node")
    if node is None:
        _missing("node is not installed")
    if not (ROOT / "node_modules" / "playwright-core").is_dir():
        _missing("node_modules/playwright-core is missing: run `npm ci`")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no chromium at {CHROMIUM}: install Debian's 'chromium' package")
    urls = [f"{served_site}/{p.relative_to(site).as_posix()}" for p in pages]
    config = {"urls": urls, "url": urls[0], "screenshot_dir": str(SCREENSHOTS), "chromium": CHROMIUM}
    proc = subprocess.run([node, str(ROOT / "tests" / "browser" / driver)], input=json.dumps(config),
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, f"browser driver {driver} failed:\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def site() -> Path:
    if not (SITE_DIR / "index.html").is_file():
        _missing(f"no built site at {SITE_DIR}: run `make book` (or `make test`) first")
    return SITE_DIR


def html_pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts)


# ------------------------------------------------------------------------ (a) static scan

# <link rel=...> values that never make the browser fetch the target
NON_LOADING_RELS = {"canonical", "alternate", "author", "license", "next", "prev", "help", "bookmark",
                    "external", "nofollow", "noopener", "noreferrer", "search", "index", "top", "up",
                    "first", "last"}
LOADING_ATTRS = {"script": ["src"], "img": ["src", "srcset"], "iframe": ["src"], "frame": ["src"],
                 "source": ["src", "srcset"], "video": ["src", "poster"], "audio": ["src"],
                 "track": ["src"], "embed": ["src"], "object": ["data"], "input": ["src"],
                 "image": ["href", "xlink:href"], "use": ["href", "xlink:href"]}
EXTERNAL = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
CSS_URL = re.compile(r"""(?:url\(\s*\\?["']?|@import\s+\\?["'])\s*((?:https?:)?//[^"')\s\\]+)""", re.IGNORECASE)
# in JavaScript: markup or DOM properties that load a resource, dynamic imports, workers, fetches
JS_LOAD = re.compile(
    r"""(?:\b(?:src|href|srcset|poster|data)\s*[=:]\s*\\?["'`]|\b(?:import|importScripts|fetch|Worker)\s*\(\s*\\?["'`])"""
    r"""\s*((?:https?:)?//[^"'`\s\\]+)""", re.IGNORECASE)


CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
ANCHOR_BEFORE = re.compile(r"<a\s[^<>]*$", re.IGNORECASE)


def css_loads(text: str) -> list[str]:
    """URLs a stylesheet (or CSS kept in a JS string) would fetch; commented-out rules are ignored."""
    return [m.group(1) for m in CSS_URL.finditer(CSS_COMMENT.sub("", text))]


def js_loads(text: str) -> list[str]:
    """URLs a script would fetch: src/href of markup it writes, dynamic imports, fetches, workers.

    ``<a href=...>`` inside a script is a link for the reader to follow, not a load.
    """
    found = []
    for m in JS_LOAD.finditer(text):
        if "href" in m.group(0).lower() and ANCHOR_BEFORE.search(text[max(0, m.start() - 300):m.start()]):
            continue
        found.append(m.group(1))
    return found


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.loads: list[tuple[str, str, str]] = []   # (tag, attribute, url)
        self.inline: list[tuple[str, str]] = []       # (tag, text) of <script>/<style>
        self.scripts: list[dict] = []
        self._open: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "script":
            self.scripts.append(a)
        if tag == "link":
            rels = set(a.get("rel", "").lower().split())
            if a.get("href") and not rels <= NON_LOADING_RELS:
                self.loads.append((tag, "href", a["href"]))
        for attr in LOADING_ATTRS.get(tag, []):
            if a.get(attr):
                for url in (a[attr].split(",") if attr == "srcset" else [a[attr]]):
                    self.loads.append((tag, attr, url.strip().split(" ")[0]))
        if "style" in a:
            self.inline.append(("style-attr", a["style"]))
        self._open = tag if tag in ("script", "style") else None

    def handle_data(self, data):
        if self._open:
            self.inline.append((self._open, data))

    def handle_endtag(self, tag):
        self._open = None


def external_loads_in_html(text: str) -> list[str]:
    c = _Collector()
    c.feed(text)
    found = [f"<{tag} {attr}={url}>" for tag, attr, url in c.loads if EXTERNAL.match(url)]
    for kind, body in c.inline:
        if kind == "script":
            # widget state is data, not code; its strings never load anything by themselves
            continue
        found += [f"{kind}: {url}" for url in css_loads(body)]
    for kind, body in c.inline:
        if kind == "script":
            found += [f"inline script: {url}" for url in js_loads(body)]
    return found


def test_every_page_loads_only_local_resources(site):
    problems = {}
    for page in html_pages(site):
        text = page.read_text(encoding="utf-8")
        # a widget-state block is JSON data (it may hold any text); drop it before scanning
        text = re.sub(r'<script type="application/vnd\.jupyter\.widget-state\+json">.*?</script>', "", text,
                      flags=re.DOTALL)
        found = external_loads_in_html(text)
        if found:
            problems[str(page.relative_to(site))] = found
    assert not problems, f"pages that would load from other hosts: {json.dumps(problems, indent=1)}"


def test_static_css_and_js_load_only_local_resources(site):
    problems = {}
    for f in sorted(site.rglob("*")):
        if f.suffix not in (".css", ".js", ".mjs") or not f.is_file():
            continue
        text = f.read_text(encoding="utf-8", errors="replace")
        found = css_loads(text) + (js_loads(text) if f.suffix != ".css" else [])
        if found:
            problems[str(f.relative_to(site))] = sorted(set(found))[:10]
    assert not problems, f"files that would load from other hosts: {json.dumps(problems, indent=1)}"


def test_scanner_catches_external_loads():
    """The scan itself: external scripts, styles, images, CSS imports and JS loaders are found."""
    html = ('<link rel="stylesheet" href="https://cdn.example.org/a.css"><link rel="canonical" href="https://x.org/">'
            '<script src="//cdn.example.org/b.js"></script><img srcset="a.png 1x, https://x.org/b.png 2x">'
            '<a href="https://arxiv.org/abs/1312.6114">paper</a><style>@import "https://f.org/x.css";</style>'
            '<script>s.src = "https://cdn.example.org/c.js"</script><script src="_static/local.js"></script>')
    found = external_loads_in_html(html)
    assert len(found) == 5, found
    assert not any("arxiv" in f or "local.js" in f for f in found)
    assert js_loads('import("https://esm.sh/x")') == ["https://esm.sh/x"]
    assert js_loads('e.innerHTML=\'<img src="https://a/b.png">\'') == ["https://a/b.png"]
    assert js_loads('about = \'<a href="https://www.mathjax.org">site</a>\'') == []
    assert css_loads("/* @import url('https://f.org/x.css'); */ b { background: url(https://f.org/y.png) }") == [
        "https://f.org/y.png"]


def test_widget_pages_load_the_vendored_manager_in_order(site):
    pages = [p for p in html_pages(site) if "application/vnd.jupyter.widget-state+json" in p.read_text("utf-8")]
    if not pages:
        _missing("no page of the built site shows a widget")
    for page in pages:
        c = _Collector()
        c.feed(page.read_text(encoding="utf-8"))
        srcs = [s["src"].split("?")[0] for s in c.scripts if s.get("src")]
        order = [next((i for i, s in enumerate(srcs) if s.endswith(name)), None)
                 for name in ("offline/require.js", "offline/offline-widgets.js", "offline/html-manager/embed-amd.js")]
        assert None not in order and order == sorted(order), f"{page}: widget scripts missing or out of order: {srcs}"
    for rel in ("require.js", "offline-widgets.js", "html-manager/embed-amd.js", "npm/anywidget/dist/index.js",
                "mathjax/tex-chtml.js"):
        assert (site / "_static" / "offline" / rel).is_file(), f"_static/offline/{rel} was not copied into the site"


def test_mathjax_is_served_locally(site):
    for page in html_pages(site):
        c = _Collector()
        c.feed(page.read_text(encoding="utf-8"))
        for s in c.scripts:
            if "mathjax" in s.get("src", "").lower():
                assert not EXTERNAL.match(s["src"]), f"{page}: MathJax from {s['src']}"


PLACEHOLDER_REPOSITORIES = ("vae-book/vae-book", "executablebooks/jupyter-book")
LAUNCH_LINK = re.compile(r'href="(https://(?:mybinder\.org|colab\.research\.google\.com)/[^"]*)"')


def test_no_page_points_to_a_placeholder_repository(site):
    """Repository and launch links come from VAE_BOOK_REPO_URL at build time (book/repo_links.py):
    never a placeholder; with the variable unset no page has a launch button, with it set every
    launch link opens that repository."""
    repo = os.environ.get("VAE_BOOK_REPO_URL", "").strip().rstrip("/").removesuffix(".git")
    problems, launch = {}, {}
    for page in html_pages(site):
        text = page.read_text(encoding="utf-8")
        found = [p for p in PLACEHOLDER_REPOSITORIES if p in text]
        if found:
            problems[str(page.relative_to(site))] = found
        links = LAUNCH_LINK.findall(text)
        if links:
            launch[str(page.relative_to(site))] = links
    assert not problems, f"pages naming a placeholder repository: {problems}"
    if not repo:
        assert not launch, f"launch buttons without VAE_BOOK_REPO_URL: {launch}"
    else:
        owner_repo = "/".join(repo.split("/")[-2:])
        wrong = {p: [u for u in links if owner_repo not in u] for p, links in launch.items()}
        assert not any(wrong.values()), f"launch links to another repository: {wrong}"
        assert launch, "VAE_BOOK_REPO_URL is set but no page has a launch button (was the site built with it?)"


# ------------------------------------------------------------------------ (b) the browser

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served_site(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser_report(site, served_site):
    node = shutil.which("node")
    if node is None:
        _missing("node is not installed")
    if not (ROOT / "node_modules" / "playwright-core").is_dir():
        _missing("node_modules/playwright-core is missing: run `npm ci`")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no chromium at {CHROMIUM}: install Debian's 'chromium' package")
    explorer_pages = [p for p in html_pages(site) if EXPLORER_MARK in p.read_text("utf-8")]
    if not explorer_pages:
        _missing("no page of the built site contains a LatentExplorer")
    rel = lambda p: p.relative_to(site).as_posix()   # noqa: E731
    config = {
        "explorer_urls": [f"{served_site}/{rel(p)}" for p in explorer_pages],
        "page_urls": [f"{served_site}/{rel(p)}" for p in html_pages(site)],
        "screenshot_dir": str(SCREENSHOTS),
        "chromium": CHROMIUM,
    }
    proc = subprocess.run([node, str(DRIVER)], input=json.dumps(config), capture_output=True, text=True,
                          timeout=540, cwd=ROOT)
    assert proc.returncode == 0, f"browser driver failed:\n{proc.stderr[-4000:]}"
    report = json.loads(proc.stdout)
    (SCREENSHOTS / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


@pytest.mark.browser
def test_browser_requests_stay_on_the_site(browser_report):
    r = browser_report
    assert r["external"] == [], f"requests to other hosts: {r['external']}"
    others = [u for u in r["requests"] if urlsplit(u).scheme in ("http", "https", "ws", "wss")
              and urlsplit(u).hostname != "127.0.0.1"]
    assert others == []
    assert r["failed"] == [], f"failed local requests: {r['failed']}"
    errors = [e for e in r["http_errors"] if not e.endswith("/favicon.ico")]
    assert errors == [], f"HTTP errors: {errors}"
    assert r["page_errors"] == [], f"JavaScript errors: {r['page_errors']}\nconsole: {r['console_errors']}"


@pytest.mark.browser
def test_browser_renders_math_offline(browser_report):
    with_math = [p for p in browser_report["pages"] if p["math_nodes"] > 0]
    assert with_math, "no page with mathematics was visited"
    for p in with_math:
        assert p["mathjax_rendered"] >= p["math_nodes"], f"MathJax did not render {p['url']}: {p}"


@pytest.mark.browser
def test_browser_explorer_draws_and_answers_the_slider(browser_report):
    """On every page that shows a LatentExplorer: it draws, a dragged slider redraws it, the
    buttons work. (The first explorer of each page is driven.)"""
    assert len(browser_report["explorers"]) >= 1
    for ex in browser_report["explorers"]:
        _check_explorer(ex, browser_report)
    for shot in browser_report["screenshots"]:
        assert Path(shot if Path(shot).is_absolute() else ROOT / shot).is_file()


def _check_explorer(ex, browser_report):
    assert ex["rendered"], f"{ex['url']}: the explorer did not render: {ex.get('error')}\n{browser_report['console_errors']}"
    assert ex["sliders"] >= 1 and all(re.fullmatch(r"z\[\d+\]", s) for s in ex["slider_labels"])
    before, after = ex["before"], ex["after"]
    assert before["max"] > before["min"], "the canvas is blank"
    assert ex["value_after"] != ex["value_before"], "the slider did not move"
    assert ex["pixels_changed"], f"{ex['url']}: moving the slider did not change the image"
    assert ex["label_after"] != ex["label_before"]
    assert ex["after_sample"]["hash"] != after["hash"] or ex["after_sample"]["mean"] != after["mean"]
    assert ex["reset_restores"], f"{ex['url']}: reset did not bring back the first image"
