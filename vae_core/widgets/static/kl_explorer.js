// KL explorer: the front end of vae_core.inference_widgets.KLExplorer.
//
// Target p: a two-component 1-D Gaussian mixture, weights (pi, 1 - pi), means -+ separation/2,
// a common component std. Approximation q = N(m, s^2). Computed here, in the browser:
//   forward  KL(p || q) = int p log p + 1/2 log(2 pi s^2) + (Var_p + (E_p - m)^2) / (2 s^2)
//   reverse  KL(q || p) = -1/2 log(2 pi e s^2) - E_q[log p]
// where expectations under a Gaussian N(m, s^2) use the trapezoid rule on a standardised grid
// u in [-10, 10] (z = m + s u), exactly as vae_core.exact.gaussian_expectation does.
// The forward optimum is moment matching; the reverse optima are the local minima of a grid over
// (m, log s), each refined by one Newton step on the 3x3 neighbourhood.
//
// Exports the pure functions (tested under node against vae_core.exact) and `default { render }`.
// The helpers come from common.js (see there).

import {
  LOG_2PI, el, slider, bindSliders, firstDraw, makeCanvas, clearCanvas, gridImage, meanStdPlane,
  densityAxes, fillCurve, strokeCurve, drawLegend,
} from "./common.js";

export const QUAD_POINTS = 401;
export const QUAD_HALF_WIDTH = 10;

export function twoModeMixture(separation, weight, componentStd) {
  return { weights: [weight, 1 - weight], means: [-separation / 2, separation / 2], stds: [componentStd, componentStd] };
}

export function mixtureLogPdf(mix, z) {
  // log sum_k w_k N(z; mu_k, s_k^2), with the max taken out (no allocation: called millions of times)
  const K = mix.weights.length;
  let mx = -Infinity;
  for (let k = 0; k < K; k++) {
    const u = (z - mix.means[k]) / mix.stds[k];
    const t = Math.log(mix.weights[k] / mix.stds[k]) - 0.5 * (LOG_2PI + u * u);
    if (t > mx) mx = t;
  }
  if (mx === -Infinity) return -Infinity;
  let acc = 0;
  for (let k = 0; k < K; k++) {
    const u = (z - mix.means[k]) / mix.stds[k];
    acc += Math.exp(Math.log(mix.weights[k] / mix.stds[k]) - 0.5 * (LOG_2PI + u * u) - mx);
  }
  return mx + Math.log(acc);
}

export function mixtureMoments(mix) {
  let mean = 0, second = 0;
  mix.weights.forEach((w, k) => {
    mean += w * mix.means[k];
    second += w * (mix.stds[k] ** 2 + mix.means[k] ** 2);
  });
  return { mean, variance: second - mean * mean };
}

// E_{N(m, s^2)}[fn(z)] by the trapezoid rule on n points u in [-h, h]
export function gaussExpectation(fn, m, s, n = QUAD_POINTS, h = QUAD_HALF_WIDTH) {
  const du = (2 * h) / (n - 1);
  let acc = 0;
  for (let i = 0; i < n; i++) {
    const u = -h + i * du;
    acc += Math.exp(-0.5 * u * u - 0.5 * LOG_2PI) * fn(m + s * u);
  }
  return acc * du;
}

// int p log p (the negative entropy of the mixture; no closed form)
export function mixtureNegEntropy(mix, n = QUAD_POINTS, h = QUAD_HALF_WIDTH) {
  let acc = 0;
  mix.weights.forEach((w, k) => {
    acc += w * gaussExpectation((z) => mixtureLogPdf(mix, z), mix.means[k], mix.stds[k], n, h);
  });
  return acc;
}

export function klForward(mix, m, s, negEntropy = mixtureNegEntropy(mix)) {
  const { mean, variance } = mixtureMoments(mix);
  return negEntropy + 0.5 * Math.log(2 * Math.PI * s * s) + (variance + (mean - m) ** 2) / (2 * s * s);
}

export function klReverse(mix, m, s, n = QUAD_POINTS, h = QUAD_HALF_WIDTH) {
  return -0.5 * Math.log(2 * Math.PI * Math.E * s * s) - gaussExpectation((z) => mixtureLogPdf(mix, z), m, s, n, h);
}

// Both KLs on a grid: ms (length nm) x ss (length ns); value [j * nm + i] is for (ms[i], ss[j]).
export function klGrids(mix, ms, ss, n = 201, h = 8) {
  const negEnt = mixtureNegEntropy(mix);
  const forward = new Float64Array(ms.length * ss.length);
  const reverse = new Float64Array(ms.length * ss.length);
  ss.forEach((s, j) => {
    ms.forEach((m, i) => {
      forward[j * ms.length + i] = klForward(mix, m, s, negEnt);
      reverse[j * ms.length + i] = klReverse(mix, m, s, n, h);
    });
  });
  return { forward, reverse };
}

// Local minima of a grid (strictly below the 8 neighbours), each refined by a Newton step in
// (m, log s) from the 3x3 finite differences (kept inside its cell), best first.
export function reverseOptima(mix, ms, ss, values) {
  const nm = ms.length, ns = ss.length;
  const V = (i, j) => values[j * nm + i];
  const found = [];
  for (let j = 1; j < ns - 1; j++) {
    for (let i = 1; i < nm - 1; i++) {
      const v = V(i, j);
      let isMin = true;
      for (let dj = -1; dj <= 1 && isMin; dj++) {
        for (let di = -1; di <= 1; di++) {
          if ((di || dj) && V(i + di, j + dj) <= v) { isMin = false; break; }
        }
      }
      if (!isMin) continue;
      const hm = ms[i + 1] - ms[i], hl = Math.log(ss[j + 1]) - Math.log(ss[j]);
      const gx = (V(i + 1, j) - V(i - 1, j)) / (2 * hm);
      const gy = (V(i, j + 1) - V(i, j - 1)) / (2 * hl);
      const hxx = (V(i + 1, j) - 2 * v + V(i - 1, j)) / (hm * hm);
      const hyy = (V(i, j + 1) - 2 * v + V(i, j - 1)) / (hl * hl);
      const hxy = (V(i + 1, j + 1) - V(i + 1, j - 1) - V(i - 1, j + 1) + V(i - 1, j - 1)) / (4 * hm * hl);
      const det = hxx * hyy - hxy * hxy;
      let dx = 0, dy = 0;
      if (det > 0 && hxx > 0) {
        dx = -(hyy * gx - hxy * gy) / det;
        dy = -(hxx * gy - hxy * gx) / det;
        dx = Math.max(-hm, Math.min(hm, dx));
        dy = Math.max(-hl, Math.min(hl, dy));
      }
      const m = ms[i] + dx, s = Math.exp(Math.log(ss[j]) + dy);
      found.push({ mean: m, std: s, kl: klReverse(mix, m, s) });
    }
  }
  return found.sort((a, b) => a.kl - b.kl);
}

export function linspace(lo, hi, n) {
  return Array.from({ length: n }, (_, i) => lo + (i / (n - 1)) * (hi - lo));
}

export function logspace(lo, hi, n) {
  return linspace(Math.log(lo), Math.log(hi), n).map(Math.exp);
}

const COLORS = { p: "#111111", q: "#1f77b4", fwd: "#2ca02c", rev: "#ff7f0e" };

// ---------------------------------------------------------------- the widget

function render({ model, el: host }) {
  const state = {
    separation: model.get("separation"), weight: model.get("weight"), componentStd: model.get("component_std"),
    m: model.get("q_mean"), s: model.get("q_std"),
  };
  const [mlo, mhi] = model.get("mean_range");
  const [slo, shi] = model.get("std_range");
  const ms = linspace(mlo, mhi, 101);
  const ss = logspace(slo, shi, 61);

  // Layout (fits a ~690 px book column): [densities], [forward map | reverse map | readout], [controls].
  const root = el("div", "vae-iw vae-iw-kl");
  if (model.get("title")) root.appendChild(el("div", "vae-iw-title", model.get("title")));
  const dens = makeCanvas(680, 200, "target mixture p, approximation q and the two optimal Gaussians");
  const rowB = el("div", "vae-iw-rowflex");
  const mapF = makeCanvas(215, 195, "forward KL(p||q) over q's mean and std");
  const mapR = makeCanvas(215, 195, "reverse KL(q||p) over q's mean and std");
  const readout = el("pre", "vae-iw-readout");
  rowB.append(mapF.canvas, mapR.canvas, readout);
  const mapCap = el("div", "vae-iw-caption",
    "Maps: KL over q's mean and std, darker = smaller; click to move q (red circle). " +
    "\u2605 = global optimum, \u25c7 = other local optimum of the reverse KL.");

  const f2 = (v) => v.toFixed(2);
  const sliders = {
    m: slider("q mean m", mlo, mhi, 0.01, state.m, f2),
    s: slider("q std s", Math.log(slo), Math.log(shi), 0.005, Math.log(state.s), (v) => Math.exp(v).toFixed(3)),
    separation: slider("mode distance d", 0, 8, 0.05, state.separation, f2),
    weight: slider("left weight \u03c0", 0.05, 0.95, 0.01, state.weight, f2),
    componentStd: slider("mode std \u03c4", 0.2, 2, 0.01, state.componentStd, f2),
  };
  const controls = el("div", "vae-iw-controls vae-iw-rowflex");
  const qGroup = el("div", "vae-iw-col vae-iw-group-box");
  qGroup.appendChild(el("div", "vae-iw-group", "approximation q = N(m, s\u00b2)"));
  qGroup.append(sliders.m.row, sliders.s.row);
  const buttons = el("div", "vae-iw-buttons");
  const toFwd = el("button", "vae-iw-button", "q = forward optimum");
  const toRev = el("button", "vae-iw-button", "q = reverse optimum");
  toFwd.type = toRev.type = "button";
  buttons.append(toFwd, toRev);
  qGroup.appendChild(buttons);
  const pGroup = el("div", "vae-iw-col vae-iw-group-box");
  pGroup.appendChild(el("div", "vae-iw-group", "target p = \u03c0 N(\u2212d/2, \u03c4\u00b2) + (1\u2212\u03c0) N(d/2, \u03c4\u00b2)"));
  pGroup.append(sliders.separation.row, sliders.weight.row, sliders.componentStd.row);
  controls.append(qGroup, pGroup);
  root.append(dens.canvas, rowB, mapCap, controls);
  host.appendChild(root);

  let mix, grids, images, fwdOpt, revOpts;
  function recompute() {
    mix = twoModeMixture(state.separation, state.weight, state.componentStd);
    grids = klGrids(mix, ms, ss);
    const mom = mixtureMoments(mix);
    fwdOpt = { mean: mom.mean, std: Math.sqrt(mom.variance) };
    fwdOpt.kl = klForward(mix, fwdOpt.mean, fwdOpt.std);
    revOpts = reverseOptima(mix, ms, ss, grids.reverse);
    images = [grids.forward, grids.reverse].map(
      (vals) => gridImage(vals, ms.length, ss.length, (v, lo, hi) => Math.log1p(v - lo) / Math.log1p(hi - lo)));
  }

  const frame = { L: 34, T: 18, R: 8, B: 30 };
  const planeF = meanStdPlane(mapF, frame, [mlo, mhi], [slo, shi]);
  const planeR = meanStdPlane(mapR, frame, [mlo, mhi], [slo, shi]);

  function drawMap(plane, img, title, optima) {
    const { ctx, width, height } = plane.c;
    plane.drawMap(img, "q std s (log)");
    ctx.fillText(title, frame.L + plane.w / 2, 12);
    ctx.fillText("q mean m", frame.L + plane.w / 2, height - 3);
    ctx.fillText(String(mhi), width - frame.R - 4, height - 17);
    ctx.font = "15px sans-serif";
    optima.forEach((o, k) => {
      ctx.fillStyle = k === 0 ? "#fff" : "#ddd";
      ctx.fillText(k === 0 ? "\u2605" : "\u25c7", plane.x(o.mean), plane.y(o.std) + 5);
    });
    plane.ring(state.m, state.s);
  }

  function drawDensities() {
    const { ctx, width, height } = dens;
    const L = 40, R = 10, T = 24, B = 30;
    clearCanvas(dens);
    const N = 400;
    const zs = linspace(mlo, mhi, N);
    const pdf = (m, s) => zs.map((z) => Math.exp(-0.5 * ((z - m) / s) ** 2) / (s * Math.sqrt(2 * Math.PI)));
    const curves = [
      { ys: zs.map((z) => Math.exp(mixtureLogPdf(mix, z))), color: COLORS.p, dash: [], width: 2.5, name: "target p" },
      { ys: pdf(state.m, state.s), color: COLORS.q, dash: [], width: 2, name: "q", fill: true },
      { ys: pdf(fwdOpt.mean, fwdOpt.std), color: COLORS.fwd, dash: [6, 4], width: 1.5, name: "argmin KL(p\u2016q)" },
    ];
    if (revOpts.length) {
      curves.push({ ys: pdf(revOpts[0].mean, revOpts[0].std), color: COLORS.rev, dash: [6, 4], width: 1.5, name: "argmin KL(q\u2016p)" });
    }
    const ymax = 1.08 * Math.max(...curves.map((c) => Math.max(...c.ys)));
    const X = (z) => L + ((z - mlo) / (mhi - mlo)) * (width - L - R);
    const Y = (p) => height - B - (Math.min(p, ymax) / ymax) * (height - B - T);
    densityAxes(dens, { L, R, T, B }, [mlo, mhi], X, "z");
    for (const c of curves) {
      if (c.fill) fillCurve(ctx, zs, c.ys, X, Y, "rgba(31,119,180,0.22)");
      strokeCurve(ctx, zs, c.ys, X, Y, c.color, c.dash, c.width);
    }
    drawLegend(ctx, curves, L + 6, 108, 18, 22);
  }

  function draw() {
    drawDensities();
    drawMap(planeF, images[0], "forward KL(p \u2016 q)", [fwdOpt]);
    drawMap(planeR, images[1], "reverse KL(q \u2016 p)", revOpts);
    const kf = klForward(mix, state.m, state.s), kr = klReverse(mix, state.m, state.s);
    const row = (name, o) => `${name.padEnd(8)}${o.mean.toFixed(3).padStart(7)}${o.std.toFixed(3).padStart(7)}${o.kl.toFixed(3).padStart(7)}`;
    const lines = [
      `at your q:`,
      `  KL(p||q) = ${kf.toFixed(4)}`,
      `  KL(q||p) = ${kr.toFixed(4)}`,
      ``,
      `optima        m      s     KL`,
      row("forward", fwdOpt),
    ];
    revOpts.forEach((o, k) => lines.push(row(k === 0 ? "reverse" : "local", o)));
    lines.push("", "forward = moments of p");
    readout.textContent = lines.join("\n");
    root.dataset.klForward = String(kf);
    root.dataset.klReverse = String(kr);
    root.dataset.draws = String(Number(root.dataset.draws || 0) + 1);
  }

  const TARGET = ["separation", "weight", "componentStd"];
  const target = () => TARGET.map((k) => state[k]).join();
  const binding = bindSliders(model, {
    state, sliders, logKeys: ["s"],
    traits: { m: "q_mean", s: "q_std", separation: "separation", weight: "weight", componentStd: "component_std" },
    onInput: (k) => {
      if (TARGET.includes(k)) recompute();
      draw();
    },
    onModelChange: (read) => {
      const before = target();
      read();
      if (target() !== before) recompute();
      draw();
    },
  });
  const moveTo = (o) => {
    state.m = Math.min(mhi, Math.max(mlo, o.mean));
    state.s = Math.min(shi, Math.max(slo, o.std));
    binding.sync();
    draw();
    binding.push();
  };
  toFwd.addEventListener("click", () => moveTo(fwdOpt));
  toRev.addEventListener("click", () => revOpts.length && moveTo(revOpts[0]));
  for (const plane of [planeF, planeR]) plane.onClick((mean, std) => moveTo({ mean, std }));

  firstDraw(root, () => {
    recompute();
    draw();
  });
  return binding.dispose;
}

export default { render };
