// Drive Debian's chromium over the built site and report what happened, as JSON on stdout.
//
//   node tests/browser/explorer_check.mjs < config.json
//
// config: {
//   "explorer_url": "http://127.0.0.1:PORT/notebooks/...html",   // page with a LatentExplorer
//   "page_urls": ["http://127.0.0.1:PORT/...html", ...],          // other pages to open
//   "screenshot_dir": "_build/screenshots",
//   "chromium": "/usr/bin/chromium"                              // optional
// }
//
// Every request the pages make is recorded; requests to any host other than 127.0.0.1 are
// recorded and aborted (there is no network here, and the site must not need one). The pytest
// side (tests/test_site.py) makes the assertions.
import { readFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const config = JSON.parse(readFileSync(0, "utf8"));
const shotDir = config.screenshot_dir;
mkdirSync(shotDir, { recursive: true });

const report = {
  requests: [], external: [], failed: [], http_errors: [], console_errors: [], page_errors: [],
  pages: [], explorer: null, screenshots: [],
};

function isLocal(url) {
  const u = new URL(url);
  if (u.protocol === "data:" || u.protocol === "blob:" || u.protocol === "about:") return true;
  return u.hostname === "127.0.0.1";
}

const browser = await chromium.launch({
  executablePath: config.chromium || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
  ],
});

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

  // ---------------------------------------------------------------- every page: loads, math
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
    mkdirSync(path.dirname(shot), { recursive: true });
    await page.screenshot({ path: shot, fullPage: true });
    report.screenshots.push(shot);
    report.pages.push({ url, ...info });
  }

  // ---------------------------------------------------------------- the explorer
  async function checkExplorer(url, index) {
    const ex = { url };
    await page.goto(url, { waitUntil: "networkidle", timeout: 60000 });
    const root = page.locator(".vae-le").first();
    try {
      await page.waitForSelector('.vae-le[data-ready="1"] canvas.vae-le-canvas', { timeout: 30000 });
      ex.rendered = true;
    } catch (err) {
      ex.rendered = false;
      ex.error = String(err);
    }
    if (ex.rendered) {
      await root.scrollIntoViewIfNeeded();
      const pixels = () => page.evaluate(() => {
        const c = document.querySelector(".vae-le canvas.vae-le-canvas");
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let min = 255, max = 0, sum = 0, hash = 0;
        for (let i = 0; i < d.length; i += 4) {
          const g = d[i];
          min = Math.min(min, g); max = Math.max(max, g); sum += g;
          hash = (hash * 31 + g) >>> 0;
        }
        return { width: c.width, height: c.height, min, max, mean: sum / (d.length / 4), hash };
      });
      const label = () => page.locator(".vae-le .vae-le-z").first().textContent();
      ex.sliders = await page.locator(".vae-le .vae-le-slider").count();
      ex.slider_labels = await page.locator(".vae-le .vae-le-name").allTextContents();
      ex.before = await pixels();
      ex.label_before = await label();

      // drag the first slider's thumb to the right with the mouse
      const slider = page.locator(".vae-le .vae-le-slider").first();
      ex.value_before = await slider.inputValue();
      const box = await slider.boundingBox();
      const [lo, hi] = await slider.evaluate((s) => [parseFloat(s.min), parseFloat(s.max)]);
      const frac = (parseFloat(ex.value_before) - lo) / (hi - lo);
      const y = box.y + box.height / 2;
      const x0 = box.x + 8 + frac * (box.width - 16);
      const x1 = box.x + box.width * 0.9;
      await page.mouse.move(x0, y);
      await page.mouse.down();
      await page.mouse.move((x0 + x1) / 2, y, { steps: 5 });
      await page.mouse.move(x1, y, { steps: 5 });
      await page.mouse.up();
      ex.value_after_drag = await slider.inputValue();
      ex.dragged = ex.value_after_drag !== ex.value_before;
      if (!ex.dragged) {
        // fall back to setting the value the way a keyboard or script would
        await slider.evaluate((s) => {
          s.value = String(parseFloat(s.max) * 0.8);
          s.dispatchEvent(new Event("input", { bubbles: true }));
          s.dispatchEvent(new Event("change", { bubbles: true }));
        });
      }
      await page.waitForTimeout(100);
      ex.value_after = await slider.inputValue();
      ex.after = await pixels();
      ex.label_after = await label();
      ex.pixels_changed = ex.after.hash !== ex.before.hash;

      const shot = path.join(shotDir, index === 0 ? "latent_explorer.png" : `latent_explorer_${index}.png`);
      await root.screenshot({ path: shot });
      report.screenshots.push(shot);

      // the two buttons
      await page.locator(".vae-le .vae-le-sample").first().click();
      await page.waitForTimeout(100);
      ex.after_sample = await pixels();
      await page.locator(".vae-le .vae-le-reset").first().click();
      await page.waitForTimeout(100);
      ex.after_reset = await pixels();
      ex.reset_restores = ex.after_reset.hash === ex.before.hash;
    }
    const full = path.join(shotDir, index === 0 ? "explorer_page.png" : `explorer_page_${index}.png`);
    await page.screenshot({ path: full, fullPage: false });
    report.screenshots.push(full);
    return ex;
  }

  // every page with an explorer (config.explorer_urls), or the one config.explorer_url
  const urls = config.explorer_urls || (config.explorer_url ? [config.explorer_url] : []);
  report.explorers = [];
  for (const [i, url] of urls.entries()) {
    report.explorers.push(await checkExplorer(url, i));
  }
  report.explorer = report.explorers[0];
} finally {
  await browser.close();
}

process.stdout.write(JSON.stringify(report, null, 2) + "\n");
