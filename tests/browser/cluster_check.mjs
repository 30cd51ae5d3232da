// Drive Debian's chromium over the built site's cluster explorer (chapter 13) and report, as JSON.
//
//   node tests/browser/cluster_check.mjs < {"urls": [...], "screenshot_dir": "...", "chromium": "..."}
//
// On each page: wait for the explorer, read its canvas, click another cluster's button, drag the
// first slider, press "back to the cluster mean"; record what the canvas showed each time.
// tests/test_site_cluster.py makes the assertions.
import { readFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const config = JSON.parse(readFileSync(0, "utf8"));
mkdirSync(config.screenshot_dir, { recursive: true });
const report = { external: [], page_errors: [], console_errors: [], pages: [] };

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
  const label = () => page.locator(".vae-ce .vae-ce-label").first().textContent();

  for (const [index, url] of config.urls.entries()) {
    const r = { url };
    await page.goto(url, { waitUntil: "networkidle", timeout: 60000 });
    try {
      await page.waitForSelector('.vae-ce[data-ready="1"] canvas.vae-ce-canvas', { timeout: 30000 });
      r.rendered = true;
    } catch (err) {
      r.rendered = false;
      r.error = String(err);
      report.pages.push(r);
      continue;
    }
    const root = page.locator(".vae-ce").first();
    await root.scrollIntoViewIfNeeded();
    r.buttons = await page.locator(".vae-ce .vae-ce-cluster").count();
    r.sliders = await page.locator(".vae-ce .vae-ce-slider").count();
    r.before = await pixels();
    r.cluster_before = await root.getAttribute("data-cluster");
    r.label_before = await label();

    // another cluster
    const target = r.cluster_before === "1" ? 0 : 1;
    await page.locator(`.vae-ce .vae-ce-cluster[data-cluster="${target}"]`).first().click();
    await page.waitForTimeout(100);
    r.cluster_after = await root.getAttribute("data-cluster");
    r.after_cluster = await pixels();
    r.label_after_cluster = await label();

    // drag the first slider to the right
    const slider = page.locator(".vae-ce .vae-ce-slider").first();
    r.value_before = await slider.inputValue();
    const box = await slider.boundingBox();
    const y = box.y + box.height / 2;
    const x0 = box.x + box.width / 2, x1 = box.x + box.width * 0.92;
    await page.mouse.move(x0, y);
    await page.mouse.down();
    await page.mouse.move(x1, y, { steps: 8 });
    await page.mouse.up();
    r.dragged = (await slider.inputValue()) !== r.value_before;
    if (!r.dragged) {
      await slider.evaluate((s) => {
        s.value = String(parseFloat(s.max) * 0.8);
        s.dispatchEvent(new Event("input", { bubbles: true }));
        s.dispatchEvent(new Event("change", { bubbles: true }));
      });
    }
    await page.waitForTimeout(100);
    r.value_after = await slider.inputValue();
    r.after_slider = await pixels();
    const shot = path.join(config.screenshot_dir, index === 0 ? "cluster_explorer.png" : `cluster_explorer_${index}.png`);
    await root.screenshot({ path: shot });
    r.screenshot = shot;

    // back to the mean of the chosen cluster
    await page.locator(".vae-ce .vae-ce-centre").first().click();
    await page.waitForTimeout(100);
    r.after_centre = await pixels();
    report.pages.push(r);
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report, null, 2) + "\n");
