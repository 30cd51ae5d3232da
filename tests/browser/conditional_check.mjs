// Drive Debian's chromium over the chapter-10 page of the built site and report, as JSON on stdout,
// what the conditional explorer (vae_core.widgets.ConditionalExplorer) did.
//
//   node tests/browser/conditional_check.mjs < {"urls": [...], "screenshot_dir": "...", "chromium": "..."}
//
// On each page: wait for the explorer to draw, press a class button, drag the first style slider,
// press a "style of test image" button and "reset", and record the main canvas after each step.
// Requests to hosts other than 127.0.0.1 are recorded and aborted. tests/test_site_conditional.py
// makes the assertions.
import { readFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const config = JSON.parse(readFileSync(0, "utf8"));
mkdirSync(config.screenshot_dir, { recursive: true });
const report = { external: [], page_errors: [], console_errors: [], explorers: [], screenshots: [] };

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

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (isLocal(url)) return route.continue();
    report.external.push(url);
    return route.abort("blockedbyclient");
  });
  const page = await context.newPage();
  page.on("console", (msg) => { if (msg.type() === "error") report.console_errors.push(msg.text()); });
  page.on("pageerror", (err) => report.page_errors.push(`${page.url()}: ${err.message}`));

  const canvasStats = (selector) => page.evaluate((sel) => {
    const c = document.querySelector(sel);
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let min = 255, max = 0, hash = 0;
    for (let i = 0; i < d.length; i += 4) {
      min = Math.min(min, d[i]); max = Math.max(max, d[i]);
      hash = (hash * 31 + d[i]) >>> 0;
    }
    return { min, max, hash };
  }, selector);
  const main = ".vae-ce canvas.vae-ce-canvas";
  const caption = () => page.locator(".vae-ce .vae-ce-caption").first().textContent();

  for (const [index, url] of config.urls.entries()) {
    const ex = { url };
    await page.goto(url, { waitUntil: "networkidle", timeout: 60000 });
    try {
      await page.waitForSelector('.vae-ce[data-ready="1"] canvas.vae-ce-canvas', { timeout: 30000 });
      ex.rendered = true;
    } catch (err) {
      ex.rendered = false;
      ex.error = String(err);
      report.explorers.push(ex);
      continue;
    }
    const root = page.locator(".vae-ce").first();
    await root.scrollIntoViewIfNeeded();
    ex.class_buttons = await page.locator(".vae-ce .vae-ce-class").count();
    ex.thumbs = await page.locator(".vae-ce canvas.vae-ce-thumb").count();
    ex.sliders = await page.locator(".vae-ce .vae-ce-slider").count();
    ex.before = await canvasStats(main);
    ex.caption_before = await caption();

    // press a class button other than the chosen one
    const pressed = await page.locator('.vae-ce .vae-ce-class[aria-pressed="true"]').first().getAttribute("data-label");
    const other = pressed === "1" ? "2" : "1";
    await page.locator(`.vae-ce .vae-ce-class[data-label="${other}"]`).first().click();
    await page.waitForTimeout(100);
    ex.after_class = await canvasStats(main);
    ex.pressed_after_class = await page.locator('.vae-ce .vae-ce-class[aria-pressed="true"]').first().getAttribute("data-label");
    ex.caption_after_class = await caption();

    // drag the first style slider to the right with the mouse
    const slider = page.locator(".vae-ce .vae-ce-slider").first();
    ex.value_before = await slider.inputValue();
    const box = await slider.boundingBox();
    const [lo, hi] = await slider.evaluate((s) => [parseFloat(s.min), parseFloat(s.max)]);
    const frac = (parseFloat(ex.value_before) - lo) / (hi - lo);
    const y = box.y + box.height / 2;
    const x0 = box.x + 8 + frac * (box.width - 16);
    const x1 = box.x + box.width * (frac < 0.5 ? 0.95 : 0.05);
    await page.mouse.move(x0, y);
    await page.mouse.down();
    await page.mouse.move((x0 + x1) / 2, y, { steps: 5 });
    await page.mouse.move(x1, y, { steps: 5 });
    await page.mouse.up();
    await page.waitForTimeout(100);
    ex.value_after = await slider.inputValue();
    ex.after_slider = await canvasStats(main);
    ex.caption_after_slider = await caption();

    const shot = path.join(config.screenshot_dir, `conditional_explorer_${index}.png`);
    await root.screenshot({ path: shot });
    report.screenshots.push(shot);

    // a style taken from a test image, then reset
    ex.style_buttons = await page.locator(".vae-ce .vae-ce-style").count();
    if (ex.style_buttons > 0) {
      await page.locator(".vae-ce .vae-ce-style").first().click();
      await page.waitForTimeout(100);
      ex.after_style = await canvasStats(main);
    }
    await page.locator(".vae-ce .vae-ce-reset").first().click();
    await page.waitForTimeout(100);
    ex.after_reset = await canvasStats(main);
    ex.reset_restores = ex.after_reset.hash === ex.before.hash;
    report.explorers.push(ex);
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report, null, 2) + "\n");
