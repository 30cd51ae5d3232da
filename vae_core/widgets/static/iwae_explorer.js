// The importance-weighted bound against k: the front end of vae_core.widgets.iwae.BoundExplorer.
//
// The values of L_k are precomputed in Python and carried in the widget's state; the k slider
// only chooses which one to highlight, so the widget works on a static page with no kernel.
//
// Exports (pure, tested under node against Python's bound_summary): summarize, axisRange, toCanvas;
// and the anywidget `default { render }`. The helpers come from common.js.

import { styledEl as el, styledCanvas, saveChanges, firstDraw } from "./common.js";

// ---------------------------------------------------------------- the numbers

// The readout at slider position i (same numbers as vae_core.widgets.iwae.bound_summary).
export function summarize(ks, bounds, logPx, i) {
  if (!(i >= 0 && i < ks.length)) throw new Error(`index must be in 0..${ks.length - 1}, got ${i}`);
  const firstGap = logPx - bounds[0];
  const gain = bounds[i] - bounds[0];
  return { k: ks[i], bound: bounds[i], gap: logPx - bounds[i], gain, closed: firstGap > 0 ? gain / firstGap : 1 };
}

// A y range that holds every bound (with its spread) and log p(x), with a margin.
export function axisRange(bounds, logPx, spread) {
  let lo = Math.min(...bounds.map((b, i) => b - (spread.length ? spread[i] : 0)), logPx);
  let hi = Math.max(...bounds.map((b, i) => b + (spread.length ? spread[i] : 0)), logPx);
  const pad = 0.08 * (hi - lo || 1);
  return [lo - pad, hi + pad];
}

// (k, value) -> canvas pixels; k on a log axis from ks[0] to ks[last].
export function toCanvas(k, v, ks, yRange, box) {
  const l0 = Math.log10(ks[0]);
  const l1 = Math.log10(ks[ks.length - 1]);
  const fx = l1 > l0 ? (Math.log10(k) - l0) / (l1 - l0) : 0.5;
  const fy = (v - yRange[0]) / (yRange[1] - yRange[0]);
  return [box.left + fx * (box.right - box.left), box.bottom - fy * (box.bottom - box.top)];
}

// ---------------------------------------------------------------- the widget

function render({ model, el: host }) {
  const W = 520, H = 320;
  const ks = Array.from(model.get("ks"));
  const bounds = Array.from(model.get("bounds"));
  const spread = Array.from(model.get("spread"));
  const ess = Array.from(model.get("ess"));
  const logPx = model.get("log_px");
  const label = model.get("log_px_label");
  let index = model.get("index");

  const root = el("div", "font-family:system-ui,sans-serif;font-size:14px;padding:8px;border:1px solid #ddd;" +
    "border-radius:6px;max-width:560px");
  root.className = "vae-iwae";
  const title = model.get("title");
  if (title) root.appendChild(el("div", "font-weight:600;margin-bottom:4px", title));
  const canvas = styledCanvas(`width:${W}px;height:${H}px`, W, H,
    "the importance-weighted bound L_k against k, with log p(x) as a dashed line");
  canvas.className = "vae-iwae-canvas";
  root.appendChild(canvas);
  const row = el("label", "display:flex;align-items:center;gap:8px;margin-top:6px");
  const input = el("input");
  Object.assign(input, { type: "range", min: "0", max: String(ks.length - 1), step: "1" });
  input.value = String(index);
  input.className = "vae-iwae-k";
  input.style.width = "300px";
  const kOut = el("span", "font-variant-numeric:tabular-nums;width:90px");
  row.append(el("span", null, "samples k"), input, kOut);
  root.appendChild(row);
  const readout = el("pre", "font-size:12.5px;background:#f7f7f7;padding:6px;margin:4px 0;white-space:pre-wrap");
  readout.className = "vae-iwae-readout";
  root.appendChild(readout);
  host.appendChild(root);

  const yRange = axisRange(bounds, logPx, spread);
  const box = { left: 62, right: W - 16, top: 16, bottom: H - 44 };

  function draw() {
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, W, H);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, W, H);
    // axes and ticks
    ctx.strokeStyle = "#888";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(box.left, box.top);
    ctx.lineTo(box.left, box.bottom);
    ctx.lineTo(box.right, box.bottom);
    ctx.stroke();
    ctx.fillStyle = "#333";
    ctx.font = "11px system-ui,sans-serif";
    ctx.textAlign = "center";
    for (const k of ks) {
      const [x] = toCanvas(k, yRange[0], ks, yRange, box);
      ctx.fillText(String(k), x, box.bottom + 14);
    }
    ctx.fillText("importance samples k (log scale)", (box.left + box.right) / 2, H - 8);
    ctx.textAlign = "right";
    for (let t = 0; t <= 4; t++) {
      const v = yRange[0] + (t / 4) * (yRange[1] - yRange[0]);
      const [, y] = toCanvas(ks[0], v, ks, yRange, box);
      ctx.fillText(v.toFixed(2), box.left - 4, y + 4);
    }
    ctx.save();
    ctx.translate(12, (box.top + box.bottom) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center";
    ctx.fillText("nats", 0, 0);
    ctx.restore();
    // log p(x)
    const [, yp] = toCanvas(ks[0], logPx, ks, yRange, box);
    ctx.strokeStyle = "#2e7d32";
    ctx.setLineDash([6, 4]);
    ctx.beginPath();
    ctx.moveTo(box.left, yp);
    ctx.lineTo(box.right, yp);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = "#2e7d32";
    ctx.textAlign = "right";
    ctx.fillText(label, box.right, yp - 5);
    // spread band, curve, points
    if (spread.length) {
      ctx.fillStyle = "rgba(31,119,180,0.15)";
      ctx.beginPath();
      ks.forEach((k, i) => { const [x, y] = toCanvas(k, bounds[i] + spread[i], ks, yRange, box); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
      for (let i = ks.length - 1; i >= 0; i--) { const [x, y] = toCanvas(ks[i], bounds[i] - spread[i], ks, yRange, box); ctx.lineTo(x, y); }
      ctx.closePath();
      ctx.fill();
    }
    ctx.strokeStyle = "#1f77b4";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ks.forEach((k, i) => { const [x, y] = toCanvas(k, bounds[i], ks, yRange, box); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
    ctx.stroke();
    ks.forEach((k, i) => {
      const [x, y] = toCanvas(k, bounds[i], ks, yRange, box);
      ctx.fillStyle = i === index ? "#d62728" : "#1f77b4";
      ctx.beginPath();
      ctx.arc(x, y, i === index ? 6 : 3, 0, 2 * Math.PI);
      ctx.fill();
    });
    // the gap still open at this k
    const [xc, yc] = toCanvas(ks[index], bounds[index], ks, yRange, box);
    ctx.strokeStyle = "#d62728";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(xc, yc);
    ctx.lineTo(xc, yp);
    ctx.stroke();

    const s = summarize(ks, bounds, logPx, index);
    kOut.textContent = `k = ${s.k}`;
    readout.textContent =
      `L_k at k = ${s.k}: ${s.bound.toFixed(3)} nats` + (spread.length ? ` (single draws spread ${spread[index].toFixed(3)})` : "") + "\n" +
      `${label}: ${logPx.toFixed(3)} nats; gap still open: ${s.gap.toFixed(3)} nats\n` +
      `gain over k = ${ks[0]}: ${s.gain.toFixed(3)} nats = ${(100 * s.closed).toFixed(1)} % of the gap` +
      (ess.length ? `\neffective sample size of the weights: ${ess[index].toFixed(2)} of ${s.k}` : "");
    root.dataset.draws = String(Number(root.dataset.draws || 0) + 1);
  }

  input.addEventListener("input", () => { index = parseInt(input.value, 10); draw(); });
  input.addEventListener("change", () => { model.set("index", index); saveChanges(model); });
  const onChange = () => { index = model.get("index"); input.value = String(index); draw(); };
  model.on("change:index", onChange);
  firstDraw(root, draw);
  return () => model.off("change:index", onChange);
}

export default { render };
