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
// Exports the pure functions (tested under node against vae_core.toy.LinearGaussian) and the
// anywidget module `default { render }`.

const LOG_2PI = Math.log(2 * Math.PI);

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

// ---------------------------------------------------------------- drawing helpers

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function makeCanvas(width, height, label) {
  const canvas = el("canvas", "vae-iw-canvas");
  const ratio = (typeof window !== "undefined" && window.devicePixelRatio) || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", label);
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  return { canvas, ctx, width, height };
}

const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

function viridis(t) {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  return VIRIDIS[i].map((c, k) => Math.round(c + f * (VIRIDIS[i + 1][k] - c)));
}

function slider(label, min, max, step, value, format) {
  const row = el("label", "vae-iw-row");
  const name = el("span", "vae-iw-name", label);
  const input = el("input", "vae-iw-slider");
  Object.assign(input, { type: "range", min: String(min), max: String(max), step: String(step) });
  input.value = String(value);
  const out = el("span", "vae-iw-value", format(value));
  row.append(name, input, out);
  return { row, input, out, format };
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
    let lo = Infinity, hi = -Infinity;
    for (let j = 0; j < NS; j++) {
      const s = Math.exp(Math.log(slo) + ((j + 0.5) / NS) * (Math.log(shi) - Math.log(slo)));
      for (let i = 0; i < NM; i++) {
        const m = zlo + ((i + 0.5) / NM) * (zhi - zlo);
        const v = expectedLogLik(state.x, state.w, state.b, state.sigma, m, s) - klPrior(m, s);
        vals[j * NM + i] = v;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    // colour by the gap below the best value, on a log scale: detail near the optimum
    const img = document.createElement("canvas");
    img.width = NM;
    img.height = NS;
    const ictx = img.getContext("2d");
    const data = ictx.createImageData(NM, NS);
    const top = Math.log1p(hi - lo);
    for (let j = 0; j < NS; j++) {
      for (let i = 0; i < NM; i++) {
        const t = 1 - Math.log1p(hi - vals[j * NM + i]) / top;
        const [r, g, bl] = viridis(t);
        const p = 4 * ((NS - 1 - j) * NM + i); // large s at the top
        data.data[p] = r; data.data[p + 1] = g; data.data[p + 2] = bl; data.data[p + 3] = 255;
      }
    }
    ictx.putImageData(data, 0, 0);
    landscape = img;
  }

  const toPx = {
    m: (m) => 34 + ((m - zlo) / (zhi - zlo)) * (land.width - 44),
    s: (s) => 8 + (1 - (Math.log(s) - Math.log(slo)) / (Math.log(shi) - Math.log(slo))) * (land.height - 38),
  };

  function drawLandscape(t) {
    const { ctx, width, height } = land;
    ctx.clearRect(0, 0, width, height);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, height);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(landscape, 34, 8, width - 44, height - 38);
    ctx.strokeStyle = "#333";
    ctx.strokeRect(34, 8, width - 44, height - 38);
    ctx.fillStyle = "#222";
    ctx.font = "11px sans-serif";
    ctx.textAlign = "center";
    ctx.fillText("q mean m", 34 + (width - 44) / 2, height - 4);
    ctx.fillText(String(zlo), 34, height - 17);
    ctx.fillText(String(zhi), width - 10, height - 17);
    ctx.save();
    ctx.translate(10, 8 + (height - 38) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText("q std s (log scale)", 0, 0);
    ctx.restore();
    ctx.textAlign = "right";
    ctx.fillText(String(shi), 32, 16);
    ctx.fillText(String(slo), 32, height - 30);
    // exact posterior (star) and current q (circle)
    const px = toPx.m(t.postMean), py = toPx.s(t.postStd);
    ctx.fillStyle = "#fff";
    ctx.font = "16px sans-serif";
    ctx.textAlign = "center";
    ctx.fillText("\u2605", px, py + 6);
    ctx.beginPath();
    ctx.arc(toPx.m(state.m), toPx.s(state.s), 5, 0, 2 * Math.PI);
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#d62728";
    ctx.stroke();
    ctx.lineWidth = 1;
  }

  function drawDensities(t) {
    const { ctx, width, height } = dens;
    const L = 40, R = 10, T = 22, B = 30;
    ctx.clearRect(0, 0, width, height);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, height);
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
    // axes
    ctx.strokeStyle = "#444";
    ctx.beginPath();
    ctx.moveTo(L, T - 4); ctx.lineTo(L, height - B); ctx.lineTo(width - R, height - B);
    ctx.stroke();
    ctx.fillStyle = "#222";
    ctx.font = "11px sans-serif";
    ctx.textAlign = "center";
    for (let z = Math.ceil(zlo); z <= zhi; z++) {
      ctx.fillText(String(z), X(z), height - B + 13);
    }
    ctx.fillText("latent z", L + (width - L - R) / 2, height - 3);
    ctx.save();
    ctx.translate(11, T + (height - B - T) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText("density", 0, 0);
    ctx.restore();
    // q filled
    ctx.fillStyle = "rgba(31,119,180,0.25)";
    ctx.beginPath();
    ctx.moveTo(X(zs[0]), Y(0));
    zs.forEach((z, i) => ctx.lineTo(X(z), Y(curves.q[i])));
    ctx.lineTo(X(zs[N - 1]), Y(0));
    ctx.fill();
    const line = (ys, color, dash, width_) => {
      ctx.strokeStyle = color;
      ctx.setLineDash(dash);
      ctx.lineWidth = width_;
      ctx.beginPath();
      zs.forEach((z, i) => (i ? ctx.lineTo(X(z), Y(ys[i])) : ctx.moveTo(X(z), Y(ys[i]))));
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.lineWidth = 1;
    };
    line(curves.prior, COLORS.prior, [5, 4], 1.5);
    line(curves.post, COLORS.post, [], 2);
    line(curves.q, COLORS.q, [], 2);
    // legend
    const items = [["prior p(z)", COLORS.prior, [5, 4]], ["posterior p(z|x)", COLORS.post, []], ["q(z)", COLORS.q, []]];
    ctx.textAlign = "left";
    items.forEach(([name, color, dash], k) => {
      const x0 = L + 10 + k * 130;
      ctx.strokeStyle = color; ctx.setLineDash(dash); ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(x0, 10); ctx.lineTo(x0 + 22, 10); ctx.stroke();
      ctx.setLineDash([]); ctx.lineWidth = 1;
      ctx.fillStyle = "#222";
      ctx.fillText(name, x0 + 27, 14);
    });
  }

  function drawBars(t) {
    // a number line (nats): ELBO bar from the left edge, gap bar on top of it up to log p(x)
    const { ctx, width, height } = bars;
    ctx.clearRect(0, 0, width, height);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, height);
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

  const TRAIT = { m: "q_mean", s: "q_std", x: "x", w: "w", sigma: "sigma" };
  // Our own model.set calls fire change events one trait at a time; ignore them (otherwise the
  // first event would read the traits not yet written and undo part of the move).
  let pushing = false;
  function push() {
    pushing = true;
    try {
      for (const [k, trait] of Object.entries(TRAIT)) model.set(trait, state[k]);
      model.save_changes();
    } catch (err) {
      /* no kernel behind a static page */
    } finally {
      pushing = false;
    }
  }
  function syncSliders() {
    for (const [k, sl] of Object.entries(sliders)) {
      const v = k === "s" ? Math.log(state.s) : state[k];
      sl.input.value = String(v);
      sl.out.textContent = sl.format(v);
    }
  }

  for (const [k, sl] of Object.entries(sliders)) {
    sl.input.addEventListener("input", () => {
      const v = parseFloat(sl.input.value);
      state[k] = k === "s" ? Math.exp(v) : v;
      sl.out.textContent = sl.format(v);
      if (k === "x" || k === "w" || k === "sigma") computeLandscape();
      draw();
    });
    sl.input.addEventListener("change", push);
  }
  snap.addEventListener("click", () => {
    const post = posterior(state.x, state.w, state.b, state.sigma);
    state.m = Math.min(zhi, Math.max(zlo, post.mean));
    state.s = Math.min(shi, Math.max(slo, post.std));
    syncSliders();
    draw();
    push();
  });
  land.canvas.addEventListener("click", (ev) => {
    const rect = land.canvas.getBoundingClientRect();
    const px = ((ev.clientX - rect.left) / rect.width) * land.width;
    const py = ((ev.clientY - rect.top) / rect.height) * land.height;
    const fm = (px - 34) / (land.width - 44), fs = 1 - (py - 8) / (land.height - 38);
    if (fm < 0 || fm > 1 || fs < 0 || fs > 1) return;
    state.m = zlo + fm * (zhi - zlo);
    state.s = Math.exp(Math.log(slo) + fs * (Math.log(shi) - Math.log(slo)));
    syncSliders();
    draw();
    push();
  });

  const onChange = () => {
    if (pushing) return;
    for (const [k, trait] of Object.entries(TRAIT)) state[k] = model.get(trait);
    syncSliders();
    computeLandscape();
    draw();
  };
  const events = Object.values(TRAIT).map((t) => `change:${t}`);
  for (const ev of events) model.on(ev, onChange);

  try {
    computeLandscape();
    draw();
    root.dataset.ready = "1";
  } catch (err) {
    root.appendChild(el("div", "vae-iw-error", `Could not draw the explorer: ${err.message}`));
    throw err;
  }
  return () => {
    for (const ev of events) model.off(ev, onChange);
  };
}

export default { render };
