// Drive Debian's chromium over the built site and report what happened, as JSON on stdout.
//
//   node tests/browser/site_check.mjs < config.json
//
// config: {
//   "page_urls": ["http://127.0.0.1:PORT/...html", ...],     // every page: loads, math, a screenshot
//   "probes": {"latent_z": [url, ...], "beta": [url, ...], ...},   // pages to drive, per probe below
//   "screenshot_dir": "_build/screenshots", "chromium": "/usr/bin/chromium"
// }
//
// Every request is recorded; requests to any host other than 127.0.0.1 are recorded and aborted
// (the site must not need a network). A probe drives the first explorer of its kind on a page:
// it takes a snapshot of the explorer (a hash of each canvas, the readout text, the control counts)
// at the start and after each step (drag a slider, click a button). tests/test_site.py holds the
// table of what each probe must see, and makes the assertions.
import { readFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

// ---------------------------------------------------------------- the probes
// root: the explorer's root element; text: its readout; count: selectors to count; steps: [name, action];
// main (optional): the explorer's main picture, listed first among the canvases (the "image" claims).
const drag = (selector) => ({ drag: selector });
const click = (selector, nth = 0) => ({ click: selector, nth });
const other = (selector) => ({ other: selector });    // a button of `selector` that is not pressed
const le = (map) => `.vae-le[data-map="${map}"]`;
const LE_MAIN = "canvas.vae-le-canvas";

const PROBES = {
  latent_z: { main: LE_MAIN, root: le("z"), text: ".vae-le-caption", count: [".vae-le-slider"],
    steps: [["slider", drag(".vae-le-slider")], ["random", click(".vae-le-random")], ["reset", click(".vae-le-reset")]] },
  latent_label: { main: LE_MAIN, root: le("z+label"), text: ".vae-le-caption", count: [".vae-le-choice", ".vae-le-thumb", ".vae-le-slider", ".vae-le-style"],
    steps: [["class", other(".vae-le-choice")], ["slider", drag(".vae-le-slider")], ["style", click(".vae-le-style")],
            ["reset", click(".vae-le-reset")]] },
  latent_codes: { main: LE_MAIN, root: le("codes"), text: ".vae-le-caption", count: [".vae-le-cell", ".vae-le-thumb"],
    steps: [["cell", click('.vae-le-cell[data-variable="0"][data-category="3"]')], ["thumb", click(".vae-le-thumb", 2)],
            ["cell2", click('.vae-le-cell[data-variable="0"][data-category="2"]')],
            ["random", click(".vae-le-random")], ["reset", click(".vae-le-reset")]] },
  latent_cluster: { main: LE_MAIN, root: le("cluster"), text: ".vae-le-caption", count: [".vae-le-choice", ".vae-le-slider"],
    steps: [["cluster", other(".vae-le-choice")], ["slider", drag(".vae-le-slider")], ["reset", click(".vae-le-reset")]] },
  beta: { root: ".vae-beta", text: ".vae-beta-readout", count: ["canvas"], steps: [["slider", drag(".vae-beta-slider")]] },
  bound: { root: ".vae-iwae", text: ".vae-iwae-readout", count: ["canvas"], steps: [["slider", drag(".vae-iwae-k")]] },
  traversal: { root: ".vae-tr", text: ".vae-tr-value", count: ["canvas.vae-tr-canvas"], steps: [["slider", drag(".vae-tr-slider")]] },
  elbo: { root: ".vae-iw-elbo", text: ".vae-iw-readout", count: ["canvas"], steps: [["slider", drag(".vae-iw-slider")]] },
  kl: { root: ".vae-iw-kl", text: ".vae-iw-readout", count: ["canvas"], steps: [["slider", drag(".vae-iw-slider")]] },
  estimator: { root: ".vae-estimators", text: ".vae-est-readout", count: ["canvas"], steps: [["slider", drag(".vae-est-mu")]] },
  gumbel: { root: ".vae-gumbel", text: ".vae-gumbel-readout", count: ["canvas"], steps: [["slider", drag(".vae-gumbel-tau")]] },
};

// ---------------------------------------------------------------- the browser

const config = JSON.parse(readFileSync(0, "utf8"));
const shotDir = config.screenshot_dir;
mkdirSync(path.join(shotDir, "pages"), { recursive: true });
const report = { requests: [], external: [], failed: [], http_errors: [], console_errors: [], page_errors: [],
  pages: [], probes: {}, screenshots: [] };
const isLocal = (url) => {
  const u = new URL(url);
  return ["data:", "blob:", "about:"].includes(u.protocol) || u.hostname === "127.0.0.1";
};

const browser = await chromium.launch({
  executablePath: config.chromium || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});

// The explorer under `root` now: canvases (hash, min, max of the red channel), readout, control counts.
function snapshot(page, probe) {
  return page.evaluate(({ root, text, count, main }) => {
    const r = document.querySelector(root);
    const all = Array.from(r.querySelectorAll("canvas"));
    const first = main ? r.querySelector(main) : null;
    const canvases = (first ? [first, ...all.filter((c) => c !== first)] : all).map((c) => {
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let hash = 0, min = 255, max = 0;
      for (let i = 0; i < d.length; i += 4) { hash = (hash * 31 + d[i]) >>> 0; min = Math.min(min, d[i]); max = Math.max(max, d[i]); }
      return { hash, min, max };
    });
    const counts = Object.fromEntries(count.map((sel) => [sel, r.querySelectorAll(sel).length]));
    const textEl = r.querySelector(text);
    return { canvases, text: textEl ? textEl.textContent : null, counts };
  }, probe);
}

async function act(page, root, action) {
  if (action.drag) {
    const slider = root.locator(action.drag).first();
    const before = await slider.inputValue();
    const box = await slider.boundingBox();
    const [lo, hi] = await slider.evaluate((s) => [parseFloat(s.min), parseFloat(s.max)]);
    const frac = (parseFloat(before) - lo) / (hi - lo || 1);
    const y = box.y + box.height / 2;
    const x0 = box.x + 8 + frac * (box.width - 16);
    const x1 = box.x + box.width * (frac < 0.5 ? 0.92 : 0.08);
    await page.mouse.move(x0, y);
    await page.mouse.down();
    await page.mouse.move((x0 + x1) / 2, y, { steps: 5 });
    await page.mouse.move(x1, y, { steps: 5 });
    await page.mouse.up();
    let dragged = (await slider.inputValue()) !== before;
    if (!dragged) {   // set it the way a keyboard would, and say so in the report
      await slider.evaluate((s) => {
        s.value = String(parseFloat(s.min) + 0.8 * (parseFloat(s.max) - parseFloat(s.min)));
        s.dispatchEvent(new Event("input", { bubbles: true }));
        s.dispatchEvent(new Event("change", { bubbles: true }));
      });
    }
    return { moved: (await slider.inputValue()) !== before, dragged };
  }
  if (action.other) {
    const buttons = root.locator(`${action.other}:not([aria-pressed="true"])`);
    if ((await buttons.count()) === 0) return { missing: true };
    await buttons.first().click();
    return {};
  }
  const target = root.locator(action.click);
  if ((await target.count()) <= action.nth) return { missing: true };
  await target.nth(action.nth).click();
  return {};
}

async function runProbe(page, name, url, index) {
  const probe = PROBES[name];
  const result = { url };
  await page.goto(url, { waitUntil: "networkidle", timeout: 60000 });
  try {
    await page.waitForSelector(`${probe.root}[data-ready="1"]`, { timeout: 30000 });
    result.rendered = true;
  } catch (err) {
    return { ...result, rendered: false, error: String(err) };
  }
  const root = page.locator(probe.root).first();
  await root.scrollIntoViewIfNeeded();
  result.snapshots = { start: await snapshot(page, probe) };
  result.actions = {};
  for (const [step, action] of probe.steps) {
    result.actions[step] = await act(page, root, action);
    await page.waitForTimeout(120);
    result.snapshots[step] = await snapshot(page, probe);
    if (step === probe.steps[0][0]) {
      const shot = path.join(shotDir, index === 0 ? `${name}.png` : `${name}_${index}.png`);
      await root.screenshot({ path: shot });
      report.screenshots.push(shot);
    }
  }
  return result;
}

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (isLocal(url)) return route.continue();
    report.external.push(url);
    return route.abort("blockedbyclient");
  });
  context.on("request", (r) => report.requests.push(r.url()));
  context.on("requestfailed", (r) => {
    if (isLocal(r.url())) report.failed.push(`${r.url()} ${r.failure()?.errorText ?? ""}`);
  });
  context.on("response", (r) => {
    if (r.status() >= 400) report.http_errors.push(`${r.status()} ${r.url()}`);
  });
  const page = await context.newPage();
  page.on("console", (msg) => {
    if (msg.type() === "error") report.console_errors.push(`${page.url()}: ${msg.text()}`);
  });
  page.on("pageerror", (err) => report.page_errors.push(`${page.url()}: ${err.message}`));

  for (const url of config.page_urls || []) {
    await page.goto(url, { waitUntil: "networkidle", timeout: 60000 });
    await page.waitForTimeout(300);
    const info = await page.evaluate(() => ({
      title: document.title,
      math_nodes: document.querySelectorAll("span.math, div.math").length,
      mathjax_rendered: document.querySelectorAll("mjx-container").length,
    }));
    const name = new URL(url).pathname.replace(/^\/+/, "").replace(/\.html$/, "").replace(/[^\w.-]+/g, "_");
    const shot = path.join(shotDir, "pages", `${name || "index"}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    report.screenshots.push(shot);
    report.pages.push({ url, ...info });
  }

  for (const [name, urls] of Object.entries(config.probes || {})) {
    if (!PROBES[name]) throw new Error(`no probe called ${name}; the probes are ${Object.keys(PROBES).join(", ")}`);
    report.probes[name] = [];
    for (const [i, url] of urls.entries()) report.probes[name].push(await runProbe(page, name, url, i));
  }
} finally {
  await browser.close();
}

process.stdout.write(JSON.stringify(report, null, 2) + "\n");
