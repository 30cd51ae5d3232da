// ELBO explorer: the front end of vae_core.inference_widgets.ELBOExplorer.
//
// Model (1-D linear-Gaussian): z ~ N(0, 1), x | z ~ N(w z + b, sigma^2), and a Gaussian
// q(z) = N(m, s^2). Everything is in closed form, computed here in the browser:
//   log p(x)          = log N(x; b, w^2 + sigma^2)
//   p(z | x)          = N(mean, 1/lambda),  lambda = 1 + w^2 / sigma^2,  mean = w (x - b) / (sigma^2 lambda)
//   E_q[log p(x|z)]   = -1/2 log(2 pi sigma^2) - ((x - w m - b)^2 + w^2 s^2) / (2 sigma^2)
//   KL(q || p(z))     = 1/2 (m^2 + s^2 - log s^2 - 1)
//   ELBO              = E_q[log p(x|z)] - KL(q || p(z))
//   gap               = KL(q || p(z|x)),   and ELBO + gap = log p(x) exactly.
//
// Exports the pure functions (tested under node against vae_core.exact.LinearGaussian) and the
// anywidget module `default { render }`. The helpers come from common.js (see there).

import {
  LOG_2PI, el, slider, bindSliders, firstDraw, makeCanvas, clearCanvas, gridImage, meanStdPlane,
  densityAxes, fillCurve, strokeCurve, drawLegend,
} from "./common.js";

// KL(N(m1, s1^2) || N(m2, s2^2))
export function klNormal(m1, s1, m2, s2) {
  return Math.log(s2 / s1) + (s1 * s1 + (m1 - m2) ** 2) / (2 * s2 * s2) - 0.5;
}

export function normalPdf(z, m, s) {
  const u = (z - m) / s;
  return Math.exp(-0.5 * u * u - 0.5 * LOG_2PI) / s;
}

export function posterior(x, w, b, sigma) {
  const lambda = 1 + (w * w) / (sigma * sigma);
  return { mean: (w * (x - b)) / (sigma * sigma * lambda), std: Math.sqrt(1 / lambda) };
}

export function logEvidence(x, w, b, sigma) {
  const v = w * w + sigma * sigma;
  return -0.5 * (LOG_2PI + Math.log(v) + ((x - b) ** 2) / v);
}

export function expectedLogLik(x, w, b, sigma, m, s) {
  const r = x - w * m - b;
  return -0.5 * (LOG_2PI + Math.log(sigma * sigma)) - (r * r + w * w * s * s) / (2 * sigma * sigma);
}

export function klPrior(m, s) {
  return 0.5 * (m * m + s * s - Math.log(s * s) - 1);
}

// All the numbers the explorer shows, for the parameters p = {x, w, b, sigma, m, s}.
export function elboTerms({ x, w, b, sigma, m, s }) {
  const post = posterior(x, w, b, sigma);
  const recon = expectedLogLik(x, w, b, sigma, m, s);
  const kl = klPrior(m, s);
  return {
    logEvidence: logEvidence(x, w, b, sigma),
    elbo: recon - kl,
    recon,
    klPrior: kl,
    gap: klNormal(m, s, post.mean, post.std),
    postMean: post.mean,
    postStd: post.std,
  };
}

const COLORS = { prior: "#888888", post: "#111111", q: "#1f77b4", elbo: "#1f77b4", gap: "#d62728", recon: "#2ca02c" };

// ---------------------------------------------------------------- the widget

function render({ model, el: host }) {
  const get = (k) => model.get(k);
  const state = { x: get("x"), w: get("w"), b: get("b"), sigma: get("sigma"), m: get("q_mean"), s: get("q_std") };
  const [zlo, zhi] = get("z_range");
  const [slo, shi] = get("std_range");

  // Layout (fits a ~690 px book column): [densities | ELBO map], [bars | readout], [controls].
  const root = el("div", "vae-iw vae-iw-elbo");
  if (get("title")) root.appendChild(el("div", "vae-iw-title", get("title")));
  const rowA = el("div", "vae-iw-rowflex");
  const rowB = el("div", "vae-iw-rowflex");
  const dens = makeCanvas(428, 200, "densities over z: prior, exact posterior and q");
  const land = makeCanvas(228, 200, "ELBO as a function of q's mean and standard deviation");
  const landBox = el("div", "vae-iw-col");
  const landCap = el("div", "vae-iw-caption", "ELBO over q's (m, s), brighter = higher; click to move q. \u2605 = exact posterior.");
  landBox.append(land.canvas, landCap);
  rowA.append(dens.canvas, landBox);
  const bars = makeCanvas(428, 132, "ELBO plus KL gap equals log p(x)");
  const readout = el("pre", "vae-iw-readout");
  rowB.append(bars.canvas, readout);

  const f2 = (v) => v.toFixed(2);
  const sliders = {
    m: slider("q mean m", zlo, zhi, 0.01, state.m, f2),
    s: slider("q std s", Math.log(slo), Math.log(shi), 0.005, Math.log(state.s), (v) => Math.exp(v).toFixed(3)),
    x: slider("observed x", -6, 6, 0.01, state.x, f2),
    w: slider("weight w", -3, 3, 0.01, state.w, f2),
    sigma: slider("noise \u03c3", 0.1, 3, 0.01, state.sigma, f2),
  };
  sliders.s.out.textContent = state.s.toFixed(3);
  const controls = el("div", "vae-iw-controls vae-iw-rowflex");
  const qGroup = el("div", "vae-iw-col vae-iw-group-box");
  qGroup.appendChild(el("div", "vae-iw-group", "variational q(z) = N(m, s\u00b2)"));
  qGroup.append(sliders.m.row, sliders.s.row);
  const snap = el("button", "vae-iw-button", "set q = exact posterior");
  snap.type = "button";
  qGroup.appendChild(snap);
  const mGroup = el("div", "vae-iw-col vae-iw-group-box");
  mGroup.appendChild(el("div", "vae-iw-group", "model: z ~ N(0,1), x|z ~ N(wz + b, \u03c3\u00b2)"));
  mGroup.append(sliders.x.row, sliders.w.row, sliders.sigma.row);
  controls.append(qGroup, mGroup);
  root.append(rowA, rowB, controls);
  host.appendChild(root);

  // ELBO landscape over (m, log s): recomputed when the model or x changes
  const NM = 92, NS = 84;
  let landscape = null;
  function computeLandscape() {
    const vals = new Float64Array(NM * NS);
    for (let j = 0; j < NS; j++) {
      const s = Math.exp(Math.log(slo) + ((j + 0.5) / NS) * (Math.log(shi) - Math.log(slo)));
      for (let i = 0; i < NM; i++) {
        const m = zlo + ((i + 0.5) / NM) * (zhi - zlo);
        vals[j * NM + i] = expectedLogLik(state.x, state.w, state.b, state.sigma, m, s) - klPrior(m, s);
      }
    }
    // colour by the gap below the best value, on a log scale: detail near the optimum (large s at the top)
    landscape = gridImage(vals, NM, NS, (v, lo, hi) => 1 - Math.log1p(hi - v) / Math.log1p(hi - lo));
  }

  const plane = meanStdPlane(land, { L: 34, T: 8, R: 10, B: 30 }, [zlo, zhi], [slo, shi]);

  function drawLandscape(t) {
    const { ctx, width, height } = land;
    plane.drawMap(landscape, "q std s (log scale)");
    ctx.fillText("q mean m", plane.frame.L + plane.w / 2, height - 4);
    ctx.fillText(String(zhi), width - 10, height - 17);
    // exact posterior (star) and current q (circle)
    ctx.fillStyle = "#fff";
    ctx.font = "16px sans-serif";
    ctx.fillText("\u2605", plane.x(t.postMean), plane.y(t.postStd) + 6);
    plane.ring(state.m, state.s);
  }

  function drawDensities(t) {
    const { ctx, width, height } = dens;
    const L = 40, R = 10, T = 22, B = 30;
    clearCanvas(dens);
    const N = 400;
    const zs = Array.from({ length: N }, (_, i) => zlo + (i / (N - 1)) * (zhi - zlo));
    const curves = {
      prior: zs.map((z) => normalPdf(z, 0, 1)),
      post: zs.map((z) => normalPdf(z, t.postMean, t.postStd)),
      q: zs.map((z) => normalPdf(z, state.m, state.s)),
    };
    const ymax = 1.08 * Math.max(...curves.prior, ...curves.post, ...curves.q);
    const X = (z) => L + ((z - zlo) / (zhi - zlo)) * (width - L - R);
    const Y = (p) => height - B - (p / ymax) * (height - B - T);
    densityAxes(dens, { L, R, T, B }, [zlo, zhi], X, "latent z");
    fillCurve(ctx, zs, curves.q, X, Y, "rgba(31,119,180,0.25)");
    strokeCurve(ctx, zs, curves.prior, X, Y, COLORS.prior, [5, 4], 1.5);
    strokeCurve(ctx, zs, curves.post, X, Y, COLORS.post, [], 2);
    strokeCurve(ctx, zs, curves.q, X, Y, COLORS.q, [], 2);
    drawLegend(ctx, [
      { name: "prior p(z)", color: COLORS.prior, dash: [5, 4] },
      { name: "posterior p(z|x)", color: COLORS.post, dash: [] },
      { name: "q(z)", color: COLORS.q, dash: [] },
    ], L + 10, 130, 22, 27);
  }

  function drawBars(t) {
    // a number line (nats): ELBO bar from the left edge, gap bar on top of it up to log p(x)
    const { ctx, width, height } = bars;
    clearCanvas(bars);
    const L = 40, R = 20;
    const hiV = t.logEvidence + 0.5;
    const loV = Math.min(t.elbo, t.logEvidence) - Math.max(1, 0.15 * Math.abs(t.logEvidence - t.elbo));
    const lo = Math.floor(Math.min(loV, t.logEvidence - 4));
    const X = (v) => L + ((v - lo) / (hiV - lo)) * (width - L - R);
    ctx.fillStyle = COLORS.elbo;
    ctx.fillRect(X(lo), 34, X(t.elbo) - X(lo), 26);
    ctx.fillStyle = COLORS.gap;
    ctx.fillRect(X(t.elbo), 34, Math.max(1, X(t.logEvidence) - X(t.elbo)), 26);
    ctx.strokeStyle = "#111";
    ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(X(t.logEvidence), 24); ctx.lineTo(X(t.logEvidence), 70); ctx.stroke();
    ctx.lineWidth = 1;
    ctx.fillStyle = "#222";
    ctx.font = "11px sans-serif";
    ctx.textAlign = "center";
    ctx.fillText(`log p(x) = ${t.logEvidence.toFixed(3)}`, Math.min(width - 70, X(t.logEvidence)), 18);
    // axis
    ctx.strokeStyle = "#444";
    ctx.beginPath(); ctx.moveTo(L, 80); ctx.lineTo(width - R, 80); ctx.stroke();
    const step = Math.max(1, Math.ceil((hiV - lo) / 8));
    for (let v = Math.ceil(lo / step) * step; v <= hiV; v += step) {
      ctx.beginPath(); ctx.moveTo(X(v), 80); ctx.lineTo(X(v), 84); ctx.stroke();
      ctx.fillText(String(v), X(v), 96);
    }
    ctx.fillText("nats", L + (width - L - R) / 2, 110);
    ctx.textAlign = "left";
    ctx.fillStyle = COLORS.elbo; ctx.fillRect(L, 116, 10, 10);
    ctx.fillStyle = "#222"; ctx.fillText(`ELBO = ${t.elbo.toFixed(3)}`, L + 14, 125);
    ctx.fillStyle = COLORS.gap; ctx.fillRect(L + 170, 116, 10, 10);
    ctx.fillStyle = "#222"; ctx.fillText(`gap KL(q\u2016p(z|x)) = ${t.gap.toFixed(3)}`, L + 184, 125);
  }

  function draw() {
    const t = elboTerms(state);
    drawDensities(t);
    drawBars(t);
    drawLandscape(t);
    const num = (v) => (v >= 0 ? " " : "") + v.toFixed(4);
    readout.textContent = [
      `log p(x)        ${num(t.logEvidence)}`,
      `E_q log p(x|z)  ${num(t.recon)}`,
      `KL(q||p(z))     ${num(t.klPrior)}`,
      `ELBO            ${num(t.elbo)}`,
      `gap KL(q||post) ${num(t.gap)}`,
      `ELBO+gap-log p(x) ${(t.elbo + t.gap - t.logEvidence).toExponential(0)}`,
      ``,
      `posterior p(z|x):`,
      `  mean ${t.postMean.toFixed(3)}, std ${t.postStd.toFixed(3)}`,
    ].join("\n");
    root.dataset.elbo = String(t.elbo);
    root.dataset.gap = String(t.gap);
    root.dataset.draws = String(Number(root.dataset.draws || 0) + 1);
  }

  const binding = bindSliders(model, {
    state, sliders, traits: { m: "q_mean", s: "q_std", x: "x", w: "w", sigma: "sigma" }, logKeys: ["s"],
    onInput: (k) => {
      if (k === "x" || k === "w" || k === "sigma") computeLandscape();
      draw();
    },
    onModelChange: (read) => {
      read();
      computeLandscape();
      draw();
    },
  });
  const moveQ = (m, s) => {
    state.m = m;
    state.s = s;
    binding.sync();
    draw();
    binding.push();
  };
  snap.addEventListener("click", () => {
    const post = posterior(state.x, state.w, state.b, state.sigma);
    moveQ(Math.min(zhi, Math.max(zlo, post.mean)), Math.min(shi, Math.max(slo, post.std)));
  });
  plane.onClick(moveQ);

  firstDraw(root, () => {
    computeLandscape();
    draw();
  });
  return binding.dispose;
}

export default { render };
