// Drive Debian's chromium over the built site's traversal explorers and report, as JSON on stdout.
//
//   node tests/browser/traversal_check.mjs < {"urls": [...], "screenshot_dir": "...", "chromium": "..."}
//
// On each page: wait for the explorer to draw, drag its slider with the mouse, and record the
// readout and a hash of every canvas before and after. Requests to other hosts are recorded and
// aborted. tests/test_site_traversal.py makes the assertions.
import { readFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const config = JSON.parse(readFileSync(0, "utf8"));
mkdirSync(config.screenshot_dir, { recursive: true });
const report = { external: [], page_errors: [], explorers: [] };

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

  const hashes = () => page.evaluate(() => Array.from(
    document.querySelector(".vae-tr").querySelectorAll("canvas.vae-tr-canvas"), (c) => {
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let hash = 0, min = 255, max = 0;
      for (let i = 0; i < d.length; i += 4) {
        hash = (hash * 31 + d[i]) >>> 0;
        min = Math.min(min, d[i]);
        max = Math.max(max, d[i]);
      }
      return { hash, min, max };
    }));

  for (const [k, url] of config.urls.entries()) {
    const ex = { url };
    await page.goto(url, { waitUntil: "networkidle", timeout: 60000 });
    try {
      await page.waitForSelector('.vae-tr[data-ready="1"] canvas.vae-tr-canvas', { timeout: 30000 });
      ex.rendered = true;
    } catch (err) {
      ex.rendered = false;
      ex.error = String(err);
    }
    if (ex.rendered) {
      const root = page.locator(".vae-tr").first();
      await root.scrollIntoViewIfNeeded();
      const readout = () => root.locator(".vae-tr-value").textContent();
      ex.canvases = await root.locator("canvas.vae-tr-canvas").count();
      ex.before = await hashes();
      ex.readout_before = await readout();
      const slider = root.locator(".vae-tr-slider");
      ex.value_before = await slider.inputValue();
      const box = await slider.boundingBox();
      const y = box.y + box.height / 2;
      const x0 = box.x + box.width / 2, x1 = box.x + box.width * 0.95;
      await page.mouse.move(x0, y);
      await page.mouse.down();
      await page.mouse.move(x1, y, { steps: 8 });
      await page.mouse.up();
      ex.dragged = (await slider.inputValue()) !== ex.value_before;
      if (!ex.dragged) {
        await slider.evaluate((s) => {
          s.value = s.max;
          s.dispatchEvent(new Event("input", { bubbles: true }));
          s.dispatchEvent(new Event("change", { bubbles: true }));
        });
      }
      await page.waitForTimeout(100);
      ex.value_after = await slider.inputValue();
      ex.after = await hashes();
      ex.readout_after = await readout();
      const shot = path.join(config.screenshot_dir, `traversal_explorer_${k}.png`);
      await root.screenshot({ path: shot });
      ex.screenshot = shot;
    }
    report.explorers.push(ex);
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report, null, 2) + "\n");
