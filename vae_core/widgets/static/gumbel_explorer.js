// Gumbel-softmax explorer: the front end of vae_core.estimator_widgets.GumbelSoftmaxExplorer.
//
// Everything is computed here, in the browser: seeded uniforms (mulberry32), Gumbel noise
// G = -log(-log U), and the relaxed samples y = softmax((logits + G) / tau) on the 3-category
// simplex. The noise depends only on the seed, so moving the temperature or a logit moves every
// point continuously. No Python runs when a slider moves: the widget works on a static page.
//
// Exports (pure, tested under node against Python): mulberry32, uniforms, gumbelFromUniform,
// softmax, gumbelSoftmax, relaxedSamples, summarize, simplexXY; and the anywidget `default { render }`.
// The helpers come from common.js (see there).

import { mulberry32, styledEl as el, styledCanvas, saveChanges, firstDraw } from "./common.js";

export { mulberry32 };

// ---------------------------------------------------------------- the maths, in plain JS

// n uniforms from the seed, in order.
export function uniforms(seed, n) {
  const next = mulberry32(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = next();
  return out;
}

// Standard Gumbel noise from a uniform: U is kept away from 0 and 1 so both logs are finite.
export const U_MIN = 1e-12;
export const U_MAX = 1 - 1e-12;
export function gumbelFromUniform(u) {
  const v = u < U_MIN ? U_MIN : u > U_MAX ? U_MAX : u;
  return -Math.log(-Math.log(v));
}

// softmax(x / tau) computed in log space (subtract the max first): stable for any logits.
export function softmax(x, tau = 1) {
  const z = x.map((v) => v / tau);
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

// One Gumbel-softmax sample: softmax((logits + gumbel) / tau).
export function gumbelSoftmax(logits, gumbel, tau) {
  if (!(tau > 0)) throw new Error(`tau must be > 0, got ${tau}`);
  return softmax(logits.map((l, k) => l + gumbel[k]), tau);
}

// n relaxed samples for K = logits.length categories, noise from uniforms(seed, n*K) row by row.
// Returns {y: Array of n arrays, hard: Int32Array of argmax categories}.
export function relaxedSamples(logits, tau, seed, n) {
  const K = logits.length;
  const u = uniforms(seed, n * K);
  const y = new Array(n);
  const hard = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const g = new Array(K);
    for (let k = 0; k < K; k++) g[k] = gumbelFromUniform(u[i * K + k]);
    y[i] = gumbelSoftmax(logits, g, tau);
    let best = 0;
    for (let k = 1; k < K; k++) if (logits[k] + g[k] > logits[best] + g[best]) best = k;
    hard[i] = best;
  }
  return { y, hard };
}

// Summary numbers the widget shows: category probabilities, argmax frequencies, mean of y,
// and the mean of max_k y_k (1 for one-hot samples, 1/K for the uniform point).
export function summarize(logits, samples) {
  const K = logits.length;
  const n = samples.y.length;
  const freq = new Array(K).fill(0);
  const mean = new Array(K).fill(0);
  let maxMean = 0;
  for (let i = 0; i < n; i++) {
    freq[samples.hard[i]] += 1 / n;
    let mx = 0;
    for (let k = 0; k < K; k++) {
      mean[k] += samples.y[i][k] / n;
      if (samples.y[i][k] > mx) mx = samples.y[i][k];
    }
    maxMean += mx / n;
  }
  return { probs: softmax(logits), freq, mean, maxMean };
}

// Barycentric coordinates on the 2-simplex -> plane: vertices = [[x, y], [x, y], [x, y]].
export function simplexXY(y, vertices) {
  let px = 0, py = 0;
  for (let k = 0; k < 3; k++) {
    px += y[k] * vertices[k][0];
    py += y[k] * vertices[k][1];
  }
  return [px, py];
}

// ---------------------------------------------------------------- the widget

const COLORS = ["#1f77b4", "#d95f02", "#2ca02c"];
const CATEGORY = ["category 1", "category 2", "category 3"];

function fmt(v) {
  return v.map((x) => x.toFixed(3)).join(", ");
}

function render({ model, el: host }) {
  const size = 340;
  const nPoints = model.get("n_points");
  const [lmin, lmax] = model.get("logit_range");
  const [tmin, tmax] = model.get("tau_range");
  let logits = Array.from(model.get("logits"));
  let tau = model.get("tau");
  let seed = model.get("seed");

  const root = el("div", "font-family:system-ui,sans-serif;font-size:14px;display:flex;flex-wrap:wrap;" +
    "gap:16px;align-items:flex-start;padding:8px;border:1px solid #ddd;border-radius:6px;max-width:760px");
  root.className = "vae-gumbel";
  const title = model.get("title");
  const left = el("div");
  if (title) left.appendChild(el("div", "font-weight:600;margin-bottom:4px", title));
  const canvas = styledCanvas(`width:${size}px;height:${size}px;border:1px solid #eee`, size, size,
    "Gumbel-softmax samples on the 3-category simplex");
  left.appendChild(canvas);
  const legend = el("div", "font-size:12px;color:#444;max-width:340px");
  legend.textContent = "dots: relaxed samples y, coloured by argmax (the Gumbel-max sample); " +
    "\u2605 softmax(\u03b8) = \u03c0; \u2715 mean of y.";
  left.appendChild(legend);

  const right = el("div", "display:flex;flex-direction:column;gap:6px;min-width:300px");
  function slider(label, min, max, step, value, onInput) {
    const row = el("label", "display:flex;align-items:center;gap:8px");
    const name = el("span", "width:110px", label);
    const input = el("input");
    Object.assign(input, { type: "range", min: String(min), max: String(max), step: String(step) });
    input.value = String(value);
    input.style.width = "140px";
    const out = el("span", "width:60px;font-variant-numeric:tabular-nums");
    input.addEventListener("input", () => onInput(parseFloat(input.value), out));
    input.addEventListener("change", () => push());
    row.append(name, input, out);
    right.appendChild(row);
    return { input, out };
  }
  // the temperature slider moves log10(tau)
  const tauSlider = slider("temperature \u03c4", Math.log10(tmin), Math.log10(tmax), 0.01, Math.log10(tau),
    (v, out) => { tau = Math.pow(10, v); out.textContent = tau.toPrecision(3); draw(); });
  tauSlider.input.className = "vae-gumbel-tau";
  const logitSliders = logits.map((l, k) => {
    const s = slider(`logit \u03b8${k + 1}`, lmin, lmax, 0.01, l,
      (v, out) => { logits[k] = v; out.textContent = v.toFixed(2); draw(); });
    s.input.className = `vae-gumbel-logit${k + 1}`;
    return s;
  });
  const buttons = el("div", "display:flex;gap:8px;margin-top:4px");
  const noise = el("button", null, "new noise");
  const hot = el("button", null, "\u03c4 \u2192 0.05");
  const flat = el("button", null, "\u03c4 \u2192 5");
  for (const b of [noise, hot, flat]) b.type = "button";
  noise.addEventListener("click", () => { seed = (seed + 1) >>> 0; draw(); push(); });
  hot.addEventListener("click", () => { tau = Math.max(tmin, 0.05); sync(); draw(); push(); });
  flat.addEventListener("click", () => { tau = Math.min(tmax, 5); sync(); draw(); push(); });
  buttons.append(noise, hot, flat);
  right.appendChild(buttons);
  const readout = el("pre", "font-size:12.5px;background:#f7f7f7;padding:6px;margin:4px 0;white-space:pre-wrap");
  readout.className = "vae-gumbel-readout";
  right.appendChild(readout);

  root.append(left, right);
  host.appendChild(root);

  function sync() {
    tauSlider.input.value = String(Math.log10(tau));
    tauSlider.out.textContent = tau.toPrecision(3);
    logitSliders.forEach((s, k) => {
      s.input.value = String(logits[k]);
      s.out.textContent = logits[k].toFixed(2);
    });
  }

  const pad = 34;
  const h = (size - 2 * pad) * Math.sqrt(3) / 2;
  const top = (size - h) / 2 + 6;
  const vertices = [[size / 2, top], [pad, top + h], [size - pad, top + h]];

  function draw() {
    const samples = relaxedSamples(logits, tau, seed, nPoints);
    const stats = summarize(logits, samples);
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, size, size);
    ctx.strokeStyle = "#888";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(...vertices[0]);
    ctx.lineTo(...vertices[1]);
    ctx.lineTo(...vertices[2]);
    ctx.closePath();
    ctx.stroke();
    ctx.font = "12px system-ui,sans-serif";
    ctx.fillStyle = "#222";
    ctx.textAlign = "center";
    ctx.fillText(`${CATEGORY[0]} (1,0,0)`, vertices[0][0], vertices[0][1] - 8);
    ctx.fillText(`${CATEGORY[1]}`, vertices[1][0] + 10, vertices[1][1] + 18);
    ctx.fillText(`${CATEGORY[2]}`, vertices[2][0] - 10, vertices[2][1] + 18);
    ctx.globalAlpha = 0.55;
    for (let i = 0; i < samples.y.length; i++) {
      const [x, y] = simplexXY(samples.y[i], vertices);
      ctx.fillStyle = COLORS[samples.hard[i]];
      ctx.beginPath();
      ctx.arc(x, y, 2.6, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.globalAlpha = 1;
    const [px, py] = simplexXY(stats.probs, vertices);
    ctx.fillStyle = "#000";
    ctx.font = "20px system-ui,sans-serif";
    ctx.textBaseline = "middle";
    ctx.fillText("\u2605", px, py);
    const [mx, my] = simplexXY(stats.mean, vertices);
    ctx.fillStyle = "#b00020";
    ctx.font = "16px system-ui,sans-serif";
    ctx.fillText("\u2715", mx, my);
    ctx.textBaseline = "alphabetic";

    readout.textContent =
      `\u03c4 = ${tau.toPrecision(3)}, seed = ${seed}, ${nPoints} samples\n` +
      `\u03c0 = softmax(\u03b8)        = (${fmt(stats.probs)})\n` +
      `argmax frequencies     = (${fmt(stats.freq)})\n` +
      `mean of y              = (${fmt(stats.mean)})\n` +
      `mean of max_k y_k      = ${stats.maxMean.toFixed(3)}  (1 = one-hot, ${(1 / 3).toFixed(3)} = uniform)`;
    root.dataset.draws = String(Number(root.dataset.draws || 0) + 1);
  }

  // Tell the kernel (when there is one); a static page has none and only the local state matters.
  function push() {
    model.set("tau", tau);
    model.set("logits", Array.from(logits));
    model.set("seed", seed);
    saveChanges(model);
  }

  const onChange = () => {
    logits = Array.from(model.get("logits"));
    tau = model.get("tau");
    seed = model.get("seed");
    sync();
    draw();
  };
  model.on("change:logits", onChange);
  model.on("change:tau", onChange);
  model.on("change:seed", onChange);

  sync();
  firstDraw(root, draw);
  return () => {
    model.off("change:logits", onChange);
    model.off("change:tau", onChange);
    model.off("change:seed", onChange);
  };
}

export default { render };
