// Estimator explorer: the front end of vae_core.estimator_widgets.EstimatorExplorer.
//
// Single-sample gradient estimates of d/dmu E_{N(mu, sigma^2)}[f(z)], computed here in the browser
// from seeded noise: the score-function estimate (f(z) - b) (z - mu) / sigma^2 and the
// reparameterization estimate f'(z), z = mu + sigma * eps. Both histograms are drawn against the
// exact gradient. Nothing calls Python, so the widget works on a static page.
//
// Exports (pure, tested under node against Python): mulberry32, normals, FUNCTIONS, exactGradient,
// estimates, summary, optimalBaseline, niceTicks; and the anywidget `default { render }`.
// The helpers come from common.js (see there).

import { mulberry32, styledEl as el, styledCanvas, saveChanges, firstDraw } from "./common.js";

export { mulberry32 };

// n standard normals by Box-Muller, two uniforms per normal (u1 kept away from 0).
export function normals(seed, n) {
  const next = mulberry32(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u1 = Math.max(next(), 1e-12);
    const u2 = next();
    out[i] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
  return out;
}

const SQRT_2PI = Math.sqrt(2 * Math.PI);

// f(z; k), its derivative, and the exact d/dmu E[f(z)] for z ~ N(mu, sigma^2); k shapes f.
export const FUNCTIONS = {
  quadratic: {
    label: "(z \u2212 k)\u00b2",
    f: (z, k) => (z - k) * (z - k),
    df: (z, k) => 2 * (z - k),
    exact: (mu, sigma, k) => 2 * (mu - k),
  },
  exp: {
    label: "exp(k z)",
    f: (z, k) => Math.exp(k * z),
    df: (z, k) => k * Math.exp(k * z),
    exact: (mu, sigma, k) => k * Math.exp(k * mu + 0.5 * k * k * sigma * sigma),
  },
  cos: {
    label: "cos(k z)",
    f: (z, k) => Math.cos(k * z),
    df: (z, k) => -k * Math.sin(k * z),
    exact: (mu, sigma, k) => -k * Math.sin(k * mu) * Math.exp(-0.5 * k * k * sigma * sigma),
  },
  step: {
    label: "1[z > k]",
    f: (z, k) => (z > k ? 1 : 0),
    df: () => 0, // zero almost everywhere: what autograd returns
    exact: (mu, sigma, k) => Math.exp(-0.5 * ((mu - k) / sigma) ** 2) / (SQRT_2PI * sigma),
  },
};

export function exactGradient(name, mu, sigma, k) {
  return FUNCTIONS[name].exact(mu, sigma, k);
}

// Per-sample estimates of d/dmu E[f]: {sf, rp} (Float64Arrays), from the noise eps.
export function estimates(name, mu, sigma, k, baseline, eps) {
  const fn = FUNCTIONS[name];
  if (!fn) throw new Error(`unknown function ${name}`);
  if (!(sigma > 0)) throw new Error(`sigma must be > 0, got ${sigma}`);
  const n = eps.length;
  const sf = new Float64Array(n);
  const rp = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const z = mu + sigma * eps[i];
    sf[i] = (fn.f(z, k) - baseline) * (z - mu) / (sigma * sigma);
    rp[i] = fn.df(z, k);
  }
  return { sf, rp };
}

// mean, standard error of the mean, variance (unbiased, n - 1).
export function summary(values) {
  const n = values.length;
  let mean = 0;
  for (const v of values) mean += v / n;
  let ss = 0;
  for (const v of values) ss += (v - mean) * (v - mean);
  const variance = ss / (n - 1);
  return { mean, se: Math.sqrt(variance / n), variance };
}

// The constant baseline with the smallest variance: b* = E[f s^2] / E[s^2], s = (z - mu) / sigma^2.
export function optimalBaseline(name, mu, sigma, k, eps) {
  const fn = FUNCTIONS[name];
  let num = 0, den = 0;
  for (const e of eps) {
    const z = mu + sigma * e;
    const s = e / sigma;
    num += fn.f(z, k) * s * s;
    den += s * s;
  }
  return num / den;
}

// ---------------------------------------------------------------- the widget

// Round tick positions (1, 2 or 5 times a power of ten) inside [lo, hi].
export function niceTicks(lo, hi, count = 5) {
  const raw = (hi - lo) / count;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || 10 * power;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-12 * step; t += step) {
    ticks.push(Math.abs(t) < 1e-12 * step ? 0 : Number(t.toPrecision(12)));
  }
  return ticks;
}

function quantile(sorted, q) {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.floor(q * (sorted.length - 1))));
  return sorted[i];
}

function render({ model, el: host }) {
  const W = 520, H = 260;
  let state = {
    f: model.get("function"), k: model.get("k"), mu: model.get("mu"), sigma: model.get("sigma"),
    b: model.get("baseline"), seed: model.get("seed"),
  };
  const n = model.get("n_samples");

  const root = el("div", "font-family:system-ui,sans-serif;font-size:14px;padding:8px;border:1px solid #ddd;" +
    "border-radius:6px;max-width:760px");
  root.className = "vae-estimators";
  const title = model.get("title");
  if (title) root.appendChild(el("div", "font-weight:600;margin-bottom:4px", title));
  const canvas = styledCanvas(`width:${W}px;max-width:100%;border:1px solid #eee`, W, H,
    "histograms of the two gradient estimators");
  root.appendChild(canvas);

  const controls = el("div", "display:flex;flex-direction:column;gap:4px;margin-top:6px");
  const select = el("select");
  select.className = "vae-est-function";
  for (const [key, fn] of Object.entries(FUNCTIONS)) {
    const opt = el("option", null, `f(z) = ${fn.label}`);
    opt.value = key;
    select.appendChild(opt);
  }
  select.value = state.f;
  select.addEventListener("change", () => { state.f = select.value; draw(); push(); });
  const fRow = el("label", "display:flex;gap:8px;align-items:center");
  fRow.append(el("span", "width:120px", "function"), select);
  controls.appendChild(fRow);

  const sliders = {};
  function slider(key, label, min, max, step) {
    const row = el("label", "display:flex;align-items:center;gap:8px");
    const input = el("input");
    Object.assign(input, { type: "range", min: String(min), max: String(max), step: String(step) });
    input.className = `vae-est-${key}`;
    input.style.width = "220px";
    input.value = String(state[key]);
    const out = el("span", "width:60px;font-variant-numeric:tabular-nums", state[key].toFixed(2));
    input.addEventListener("input", () => {
      state[key] = parseFloat(input.value);
      out.textContent = state[key].toFixed(2);
      draw();
    });
    input.addEventListener("change", () => push());
    row.append(el("span", "width:120px", label), input, out);
    controls.appendChild(row);
    sliders[key] = { input, out };
  }
  slider("k", "shape k of f", -3, 3, 0.01);
  slider("mu", "mean \u03bc", -3, 3, 0.01);
  slider("sigma", "std \u03c3", 0.1, 3, 0.01);
  slider("b", "baseline b", -10, 20, 0.05);
  const buttons = el("div", "display:flex;gap:8px");
  const best = el("button", null, "b \u2192 b* (optimal)");
  const zero = el("button", null, "b \u2192 0");
  const noise = el("button", null, "new noise");
  for (const bt of [best, zero, noise]) bt.type = "button";
  best.addEventListener("click", () => {
    state.b = optimalBaseline(state.f, state.mu, state.sigma, state.k, normals(state.seed, n));
    sync(); draw(); push();
  });
  zero.addEventListener("click", () => { state.b = 0; sync(); draw(); push(); });
  noise.addEventListener("click", () => { state.seed = (state.seed + 1) >>> 0; draw(); push(); });
  buttons.append(best, zero, noise);
  controls.appendChild(buttons);
  root.appendChild(controls);
  const readout = el("pre", "font-size:12.5px;background:#f7f7f7;padding:6px;margin:6px 0 0;white-space:pre-wrap");
  readout.className = "vae-est-readout";
  root.appendChild(readout);
  host.appendChild(root);

  function sync() {
    for (const [key, { input, out }] of Object.entries(sliders)) {
      input.value = String(state[key]);
      out.textContent = state[key].toFixed(2);
    }
    select.value = state.f;
  }

  function draw() {
    const eps = normals(state.seed, n);
    const { sf, rp } = estimates(state.f, state.mu, state.sigma, state.k, state.b, eps);
    const exact = exactGradient(state.f, state.mu, state.sigma, state.k);
    const sSF = summary(sf), sRP = summary(rp);
    // a common x-range holding the central 98% of both estimators and the exact value
    const all = Float64Array.from([...sf, ...rp]).sort();
    let lo = Math.min(quantile(all, 0.01), exact), hi = Math.max(quantile(all, 0.99), exact);
    if (!(hi > lo)) { lo -= 1; hi += 1; }
    const pad = 0.05 * (hi - lo);
    lo -= pad; hi += pad;
    const bins = 60;
    const count = (vals) => {
      const c = new Array(bins).fill(0);
      for (const v of vals) {
        const j = Math.floor((v - lo) / (hi - lo) * bins);
        if (j >= 0 && j < bins) c[j] += 1;
      }
      return c;
    };
    const cSF = count(sf), cRP = count(rp);
    const top = Math.max(...cSF, ...cRP, 1);
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, W, H);
    const L = 40, R = 10, T = 14, B = 34;
    const X = (v) => L + (v - lo) / (hi - lo) * (W - L - R);
    const Y = (c) => H - B - c / top * (H - T - B);
    const bw = (W - L - R) / bins;
    for (const [c, color] of [[cRP, "rgba(31,119,180,0.55)"], [cSF, "rgba(217,95,2,0.55)"]]) {
      ctx.fillStyle = color;
      for (let j = 0; j < bins; j++) ctx.fillRect(L + j * bw, Y(c[j]), bw - 0.5, H - B - Y(c[j]));
    }
    ctx.strokeStyle = "#000";
    ctx.setLineDash([5, 4]);
    ctx.beginPath(); ctx.moveTo(X(exact), T); ctx.lineTo(X(exact), H - B); ctx.stroke();
    ctx.setLineDash([]);
    ctx.strokeStyle = "#888";
    ctx.beginPath(); ctx.moveTo(L, H - B); ctx.lineTo(W - R, H - B); ctx.stroke();
    ctx.fillStyle = "#222";
    ctx.font = "12px system-ui,sans-serif";
    ctx.textAlign = "center";
    for (const v of niceTicks(lo, hi)) {
      ctx.beginPath(); ctx.moveTo(X(v), H - B); ctx.lineTo(X(v), H - B + 4); ctx.stroke();
      ctx.fillText(String(v), X(v), H - B + 16);
    }
    ctx.fillText("single-sample estimate of d/d\u03bc E[f(z)]", (L + W - R) / 2, H - 4);
    ctx.textAlign = "left";
    ctx.fillStyle = "rgba(217,95,2,1)"; ctx.fillText("\u25a0 score function", L + 4, T + 4);
    ctx.fillStyle = "rgba(31,119,180,1)"; ctx.fillText("\u25a0 reparameterization", L + 4, T + 20);
    ctx.fillStyle = "#000"; ctx.fillText("- - exact", L + 4, T + 36);

    const line = (name, s) =>
      `${name.padEnd(26)} mean ${s.mean.toFixed(4)} \u00b1 ${s.se.toFixed(4)}   variance ${s.variance.toPrecision(4)}`;
    const ratio = sRP.variance > 0 ? (sSF.variance / sRP.variance).toPrecision(3)
      : "\u221e (the reparameterization estimate is constant)";
    readout.textContent =
      `f(z) = ${FUNCTIONS[state.f].label.replace(/k/g, state.k.toFixed(2))},  z ~ N(${state.mu.toFixed(2)}, ` +
      `${state.sigma.toFixed(2)}\u00b2),  ${n} samples, seed ${state.seed}\n` +
      `${"exact gradient".padEnd(26)} ${exact.toFixed(4)}\n` +
      `${line("score function, b = " + state.b.toFixed(2), sSF)}\n` +
      `${line("reparameterization", sRP)}\n` +
      `variance ratio score/reparam = ${ratio}`;
    root.dataset.draws = String(Number(root.dataset.draws || 0) + 1);
  }

  function push() {
    model.set("function", state.f);
    model.set("k", state.k);
    model.set("mu", state.mu);
    model.set("sigma", state.sigma);
    model.set("baseline", state.b);
    model.set("seed", state.seed);
    saveChanges(model);
  }

  const keys = ["function", "k", "mu", "sigma", "baseline", "seed"];
  const onChange = () => {
    state = {
      f: model.get("function"), k: model.get("k"), mu: model.get("mu"), sigma: model.get("sigma"),
      b: model.get("baseline"), seed: model.get("seed"),
    };
    sync();
    draw();
  };
  for (const key of keys) model.on(`change:${key}`, onChange);
  firstDraw(root, draw);
  return () => { for (const key of keys) model.off(`change:${key}`, onChange); };
}

export default { render };
