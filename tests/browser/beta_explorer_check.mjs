// Drive the β explorer of chapter 9 in Debian's chromium and report what happened, as JSON on stdout.
//
//   node tests/browser/beta_explorer_check.mjs < config.json
//
// config: {"urls": ["http://127.0.0.1:PORT/notebooks/09_beta_vae.html"], "screenshot_dir": "...",
//          "chromium": "/usr/bin/chromium"}
//
// On each page: wait for the explorer to draw, read its readout and hash its three canvases, drag the
// β slider to the right with the mouse, and read them again. Requests to other hosts are aborted and
// recorded. tests/test_site_beta.py makes the assertions.
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
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  await context.route("**/*", (route) => {
    const u = new URL(route.request().url());
    if (["data:", "blob:", "about:"].includes(u.protocol) || u.hostname === "127.0.0.1") return route.continue();
    report.external.push(u.href);
    return route.abort("blockedbyclient");
  });
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") report.console_errors.push(m.text()); });
  page.on("pageerror", (e) => report.page_errors.push(e.message));

  const state = () => page.evaluate(() => {
    const root = document.querySelector(".vae-beta");
    const hash = (sel) => {
      const c = root.querySelector(sel);
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let h = 0, min = 255, max = 0;
      for (let i = 0; i < d.length; i += 4) { h = (h * 31 + d[i]) >>> 0; min = Math.min(min, d[i]); max = Math.max(max, d[i]); }
      return { hash: h, min, max };
    };
    return {
      index: root.dataset.index,
      slider: root.querySelector(".vae-beta-slider").value,
      beta: root.querySelector(".vae-beta-value").textContent,
      readout: root.querySelector(".vae-beta-readout").textContent,
      rd: hash(".vae-beta-rd"), recon: hash(".vae-beta-recon"), trav: hash(".vae-beta-trav"),
    };
  });

  for (const [i, url] of config.urls.entries()) {
    const ex = { url };
    await page.goto(url, { waitUntil: "networkidle", timeout: 60000 });
    try {
      await page.waitForSelector('.vae-beta[data-ready="1"]', { timeout: 30000 });
      ex.rendered = true;
    } catch (err) {
      ex.rendered = false;
      ex.error = String(err);
    }
    if (ex.rendered) {
      const root = page.locator(".vae-beta").first();
      await root.scrollIntoViewIfNeeded();
      ex.before = await state();
      const slider = page.locator(".vae-beta .vae-beta-slider").first();
      const box = await slider.boundingBox();
      const [lo, hi] = await slider.evaluate((s) => [parseFloat(s.min), parseFloat(s.max)]);
      const frac = (parseFloat(ex.before.slider) - lo) / (hi - lo || 1);
      const y = box.y + box.height / 2;
      const x0 = box.x + 8 + frac * (box.width - 16);
      const x1 = box.x + box.width - 2;
      await page.mouse.move(x0, y);
      await page.mouse.down();
      await page.mouse.move((x0 + x1) / 2, y, { steps: 5 });
      await page.mouse.move(x1, y, { steps: 5 });
      await page.mouse.up();
      await page.waitForTimeout(150);
      ex.after = await state();
      ex.dragged = ex.after.slider !== ex.before.slider;
      const shot = path.join(config.screenshot_dir, i === 0 ? "beta_explorer.png" : `beta_explorer_${i}.png`);
      await root.screenshot({ path: shot });
      report.screenshots.push(shot);
    }
    report.explorers.push(ex);
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report, null, 2) + "\n");
