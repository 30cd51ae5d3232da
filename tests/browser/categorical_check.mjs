// Drive Debian's chromium over the built site's chapter 12 and report, as JSON on stdout, what the
// categorical code explorer did when its cells, thumbnails and buttons were clicked.
//
//   node tests/browser/categorical_check.mjs < {"url": "...", "screenshot_dir": "...", "chromium": "..."}
//
// Requests to hosts other than 127.0.0.1 are recorded and aborted. tests/test_site_categorical.py
// makes the assertions.
import { readFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const config = JSON.parse(readFileSync(0, "utf8"));
mkdirSync(config.screenshot_dir, { recursive: true });
const report = { external: [], page_errors: [], console_errors: [], rendered: false };

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
  page.on("pageerror", (err) => report.page_errors.push(err.message));
  page.on("console", (msg) => { if (msg.type() === "error") report.console_errors.push(msg.text()); });
  await page.goto(config.url, { waitUntil: "networkidle", timeout: 60000 });
  try {
    await page.waitForSelector('.vae-ce[data-ready="1"] canvas.vae-ce-canvas', { timeout: 30000 });
    report.rendered = true;
  } catch (err) {
    report.error = String(err);
  }
  if (report.rendered) {
    const root = page.locator(".vae-ce").first();
    await root.scrollIntoViewIfNeeded();
    const pixels = () => page.evaluate(() => {
      const c = document.querySelector(".vae-ce canvas.vae-ce-canvas");
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let min = 255, max = 0, hash = 0;
      for (let i = 0; i < d.length; i += 4) {
        min = Math.min(min, d[i]); max = Math.max(max, d[i]);
        hash = (hash * 31 + d[i]) >>> 0;
      }
      return { min, max, hash };
    });
    const code = () => page.locator(".vae-ce .vae-ce-code").first().textContent();
    report.cells = await page.locator(".vae-ce .vae-ce-cell").count();
    report.thumbs = await page.locator(".vae-ce .vae-ce-thumb").count();
    report.before = await pixels();
    report.code_before = await code();

    // click every class of the first variable in turn; record the images
    const K = await page.locator('.vae-ce .vae-ce-cell[data-variable="0"]').count();
    report.class_hashes = [];
    for (let k = 0; k < K; k++) {
      await page.locator(`.vae-ce .vae-ce-cell[data-variable="0"][data-category="${k}"]`).first().click();
      await page.waitForTimeout(50);
      report.class_hashes.push((await pixels()).hash);
    }
    report.code_after_clicks = await code();
    await root.screenshot({ path: path.join(config.screenshot_dir, "categorical_explorer.png") });

    // a thumbnail of the last variable clicked sets that class
    await page.locator(".vae-ce .vae-ce-thumb").nth(2).click();
    await page.waitForTimeout(50);
    report.code_after_thumb = await code();
    report.after_thumb = await pixels();

    await page.locator(".vae-ce .vae-ce-sample").first().click();
    await page.waitForTimeout(50);
    report.code_after_sample = await code();
    report.after_sample = await pixels();
    await page.locator(".vae-ce .vae-ce-reset").first().click();
    await page.waitForTimeout(50);
    report.code_after_reset = await code();
    report.after_reset = await pixels();
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report, null, 2) + "\n");
