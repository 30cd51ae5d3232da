// Drive the chapter-11 k-slider explorer (vae_core.widgets.BoundExplorer) in Debian's chromium and
// report what happened, as JSON on stdout. tests/test_site_iwae.py makes the assertions.
//
//   node tests/browser/iwae_check.mjs < {"urls": [...], "screenshot_dir": "...", "chromium": "..."}
//
// Requests to any host other than 127.0.0.1 are recorded and aborted.
import { readFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const config = JSON.parse(readFileSync(0, "utf8"));
mkdirSync(config.screenshot_dir, { recursive: true });
const report = { external: [], page_errors: [], console_errors: [], explorers: [], screenshots: [] };

const browser = await chromium.launch({
  executablePath: config.chromium || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.route("**/*", (route) => {
    const u = new URL(route.request().url());
    if (["data:", "blob:", "about:"].includes(u.protocol) || u.hostname === "127.0.0.1") return route.continue();
    report.external.push(u.href);
    return route.abort("blockedbyclient");
  });
  const page = await context.newPage();
  page.on("pageerror", (err) => report.page_errors.push(`${page.url()}: ${err.message}`));
  page.on("console", (msg) => { if (msg.type() === "error") report.console_errors.push(msg.text()); });

  for (const [n, url] of config.urls.entries()) {
    const ex = { url };
    await page.goto(url, { waitUntil: "networkidle", timeout: 60000 });
    try {
      await page.waitForSelector('.vae-iwae[data-ready="1"] canvas.vae-iwae-canvas', { timeout: 30000 });
      ex.rendered = true;
    } catch (err) {
      ex.rendered = false;
      ex.error = String(err);
      report.explorers.push(ex);
      continue;
    }
    const root = page.locator(".vae-iwae").first();
    await root.scrollIntoViewIfNeeded();
    const state = () => page.evaluate(() => {
      const c = document.querySelector(".vae-iwae canvas.vae-iwae-canvas");
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let hash = 0, min = 255, max = 0;
      for (let i = 0; i < d.length; i += 4) { hash = (hash * 31 + d[i]) >>> 0; min = Math.min(min, d[i]); max = Math.max(max, d[i]); }
      return { hash, min, max, readout: document.querySelector(".vae-iwae .vae-iwae-readout").textContent,
        value: document.querySelector(".vae-iwae .vae-iwae-k").value };
    });
    ex.before = await state();
    const slider = page.locator(".vae-iwae .vae-iwae-k").first();
    const box = await slider.boundingBox();
    const y = box.y + box.height / 2;
    await page.mouse.move(box.x + 6, y);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.5, y, { steps: 5 });
    await page.mouse.move(box.x + box.width - 4, y, { steps: 5 });
    await page.mouse.up();
    await page.waitForTimeout(100);
    ex.dragged = (await slider.inputValue()) !== ex.before.value;
    if (!ex.dragged) {
      await slider.evaluate((s) => { s.value = s.max; s.dispatchEvent(new Event("input", { bubbles: true })); });
    }
    await page.waitForTimeout(100);
    ex.after = await state();
    const shot = path.join(config.screenshot_dir, `iwae_explorer_${n}.png`);
    await root.screenshot({ path: shot });
    report.screenshots.push(shot);
    report.explorers.push(ex);
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report, null, 2) + "\n");
