"""Checks of the built website: it loads nothing from other hosts, and every explorer works offline.

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
DRIVER = ROOT / "tests" / "browser" / "site_check.mjs"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _missing(reason: str):
    if REQUIRED:
        pytest.fail(f"{reason} (SITE_DIR is set, so this check must run)")
    pytest.skip(reason)


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


# Each row: a probe of tests/browser/site_check.mjs, the mark of the pages it drives (a regular expression
# on the page's HTML: the explorer's anywidget id or input map, saved in the widget state), what the
# pages show, and what the probe must see. A claim is (kind, snapshot[, snapshot or value]) with the
# snapshots "start" and one per step of the probe:
#   drawn a: the first canvas is not blank;     moved a: the step's slider moved;
#   image a b / same image a b: the first canvas differs / is equal;  every image a b: every canvas differs;
#   some image a b: at least one canvas differs;  text a b / same text a b: the readout differs / is equal;
#   text starts a v: the readout starts with v;  count a (selector, n): at least n of selector.
LATENT = "vae_core.widgets.latent.LatentExplorer"
SITE_TABLE = {
    "latent_z": (r'"input_map":\s*"z"', "a LatentExplorer of z (chapters 0, 6, 8, 15)", [
        ("count", "start", (".vae-le-slider", 1)), ("drawn", "start"), ("moved", "slider"),
        ("image", "start", "slider"), ("text", "start", "slider"), ("image", "slider", "random"),
        ("same image", "start", "reset"), ("same text", "start", "reset")]),
    "latent_label": (r'"input_map":\s*"z\+label"', "a LatentExplorer of [z, onehot(y)] (chapter 10)", [
        ("count", "start", (".vae-le-choice", 2)), ("count", "start", (".vae-le-thumb", 2)),
        ("count", "start", (".vae-le-slider", 1)), ("drawn", "start"), ("image", "start", "class"),
        ("text", "start", "class"), ("moved", "slider"), ("image", "class", "slider"), ("text", "class", "slider"),
        ("image", "slider", "style"), ("same image", "start", "reset")]),
    "latent_codes": (r'"input_map":\s*"codes"', "a LatentExplorer of categorical codes (chapter 12)", [
        ("count", "start", (".vae-le-cell", 4)), ("count", "start", (".vae-le-thumb", 2)), ("drawn", "start"),
        ("text starts", "cell", "c = (3,"), ("text starts", "thumb", "c = (2,"), ("image", "cell", "thumb"),
        # the thumbnail of class 2 sets exactly what clicking class 2 of that variable sets
        ("same image", "thumb", "cell2"), ("same text", "thumb", "cell2"), ("text", "cell2", "random"), ("same image", "start", "reset"), ("same text", "start", "reset")]),
    "latent_cluster": (r'"input_map":\s*"cluster"', "a LatentExplorer of clusters (chapter 13)", [
        ("count", "start", (".vae-le-choice", 2)), ("count", "start", (".vae-le-slider", 1)), ("drawn", "start"),
        ("image", "start", "cluster"), ("text", "start", "cluster"), ("moved", "slider"),
        ("image", "cluster", "slider"), ("same image", "cluster", "reset")]),
    "beta": (r"vae_core\.widgets\.precomputed\.BetaExplorer", "a BetaExplorer (chapter 9)", [
        ("drawn", "start"), ("moved", "slider"), ("every image", "start", "slider"), ("text", "start", "slider")]),
    "bound": (r"vae_core\.widgets\.precomputed\.BoundExplorer", "a BoundExplorer (chapter 11)", [
        ("drawn", "start"), ("moved", "slider"), ("image", "start", "slider"), ("text", "start", "slider"),
        ("bound climbs with k", "start", "slider")]),
    "traversal": (r"vae_core\.widgets\.precomputed\.TraversalExplorer", "a TraversalExplorer (chapter 14)", [
        ("count", "start", ("canvas.vae-tr-canvas", 2)), ("moved", "slider"), ("some image", "start", "slider"),
        ("text", "start", "slider")]),
    "elbo": (r"vae_core\.widgets\.part1\.ELBOExplorer", "an ELBOExplorer (chapter 2)", [
        ("drawn", "start"), ("moved", "slider"), ("image", "start", "slider"), ("text", "start", "slider")]),
    "kl": (r"vae_core\.widgets\.part1\.KLExplorer", "a KLExplorer (chapter 3)", [
        ("drawn", "start"), ("moved", "slider"), ("some image", "start", "slider"), ("text", "start", "slider")]),
    "estimator": (r"vae_core\.widgets\.gradients\.EstimatorExplorer", "an EstimatorExplorer (chapter 4)", [
        ("drawn", "start"), ("moved", "slider"), ("image", "start", "slider"), ("text", "start", "slider")]),
    "gumbel": (r"vae_core\.widgets\.gumbel\.GumbelSoftmaxExplorer", "a GumbelSoftmaxExplorer (chapter 5)", [
        ("drawn", "start"), ("moved", "slider"), ("image", "start", "slider"), ("text", "start", "slider")]),
}


def _claim(result: dict, kind: str, a: str, b=None) -> str | None:
    """None if the claim holds on the probe's result, else what went wrong."""
    snaps = result["snapshots"]
    if kind == "moved":
        return None if result["actions"][a].get("moved") else f"the slider of step {a!r} did not move"
    if result["actions"].get(a, {}).get("missing") or (isinstance(b, str) and result["actions"].get(b, {}).get("missing")):
        return f"the control of step {a if result['actions'].get(a, {}).get('missing') else b!r} is missing"
    first = lambda s: snaps[s]["canvases"][0]   # noqa: E731
    if kind == "drawn":
        return None if first(a)["max"] > first(a)["min"] else f"the canvas is blank at {a!r}"
    if kind == "count":
        selector, n = b
        return None if snaps[a]["counts"][selector] >= n else f"{snaps[a]['counts'][selector]} of {selector}, expected >= {n}"
    if kind == "text starts":
        return None if (snaps[a]["text"] or "").startswith(b) else f"readout {snaps[a]['text']!r} after {a!r}, expected {b}..."
    if kind == "bound climbs with k":   # the readout "L_k at k = K: B nats" before and after: K and B move together
        (k0, b0), (k1, b1) = (map(float, re.match(r"L_k at k = (\d+): (-?[\d.]+)", snaps[s]["text"] or "").groups())
                              for s in (a, b))
        return None if k1 != k0 and (k1 - k0) * (b1 - b0) > 0 else f"k {k0:g} -> {k1:g} but L_k {b0} -> {b1}"
    differ = [x["hash"] != y["hash"] for x, y in zip(snaps[a]["canvases"], snaps[b]["canvases"])]
    ok = {"image": differ[0], "same image": not differ[0], "every image": all(differ), "some image": any(differ),
          "text": snaps[a]["text"] != snaps[b]["text"], "same text": snaps[a]["text"] == snaps[b]["text"]}[kind]
    return None if ok else f"{kind!r} from {a!r} to {b!r} does not hold (readouts {snaps[a]['text']!r}, {snaps[b]['text']!r})"


def _pages_with(site: Path, pattern: str) -> list[Path]:
    return [p for p in html_pages(site) if re.search(pattern, p.read_text("utf-8"))]


@pytest.fixture(scope="module")
def browser_report(site, served_site):
    node = shutil.which("node")
    if node is None:
        _missing("node is not installed")
    if not (ROOT / "node_modules" / "playwright-core").is_dir():
        _missing("node_modules/playwright-core is missing: run `npm ci`")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no chromium at {CHROMIUM}: install Debian's 'chromium' package")
    url = lambda p: f"{served_site}/{p.relative_to(site).as_posix()}"   # noqa: E731
    config = {
        "probes": {name: [url(p) for p in _pages_with(site, mark)] for name, (mark, _, _) in SITE_TABLE.items()},
        "page_urls": [url(p) for p in html_pages(site)],
        "screenshot_dir": str(SCREENSHOTS),
        "chromium": CHROMIUM,
    }
    proc = subprocess.run([node, str(DRIVER)], input=json.dumps(config), capture_output=True, text=True,
                          timeout=900, cwd=ROOT)
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
@pytest.mark.parametrize("probe", list(SITE_TABLE))
def test_browser_explorer_answers_the_reader(browser_report, probe):
    """On every page that shows the explorer, its first one draws, and each control changes the picture."""
    mark, what, claims = SITE_TABLE[probe]
    results = browser_report["probes"][probe]
    if not results:
        _missing(f"no page of the built site contains {what}")
    for result in results:
        assert result["rendered"], f"{result['url']}: {what} did not render: {result.get('error')}"
        failed = [msg for claim in claims if (msg := _claim(result, *claim))]
        assert not failed, f"{result['url']}, {what}: " + "; ".join(failed)
    for shot in browser_report["screenshots"]:
        assert Path(shot).is_file()
