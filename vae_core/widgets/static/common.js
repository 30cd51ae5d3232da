// Helpers shared by every explorer's front end.
//
// anywidget loads a front end as one ES module string, which cannot import a sibling file. So a
// widget file names what it uses here in an `import { ... } from "./common.js";` line, and
// vae_core.widgets.esm_source builds the widget's `_esm` by putting this file, in its own scope,
// in place of that line (see there). Keep this file to declarations without side effects, exported
// as `export function|const|let|class NAME`; it may not import anything.

// ---------------------------------------------------------------- numbers

export const LOG_2PI = Math.log(2 * Math.PI);

// A small seeded generator of uniforms in [0, 1): mulberry32 (32-bit state, period 2^32).
export function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// One N(0, 1) draw (Box-Muller on Math.random): the explorers' "random" buttons.
export function gaussian() {
  let u = 0;
  while (u === 0) u = Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

// base64 of unsigned bytes -> Uint8Array (vae_core.widgets.frontend.pack_u8 is the other direction).
export function unpackU8(b64) {
  const binary = atob(b64);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

// ---------------------------------------------------------------- the page and the kernel

// An element with a class (styled by explorers.css) ...
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ... or with inline style (the explorers that carry no stylesheet).
export function styledEl(tag, style, text) {
  const node = document.createElement(tag);
  if (style) node.style.cssText = style;
  if (text !== undefined) node.textContent = text;
  return node;
}

// A width x height canvas with inline style, described by label for screen readers.
export function styledCanvas(style, width, height, label) {
  const canvas = styledEl("canvas", style);
  canvas.width = width;
  canvas.height = height;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", label);
  return canvas;
}

// Send the traits set on the model to the kernel. A static page has none (save_changes throws):
// there only the state in the page matters.
export function saveChanges(model) {
  try {
    model.save_changes();
  } catch (err) {
    /* no kernel behind a static page */
  }
}

// A labelled range input with a readout of format(value): {row, input, out, format}. Its classes
// are prefix-row, prefix-name, prefix-slider and prefix-value.
export function slider(label, min, max, step, value, format, prefix = "vae-iw") {
  const row = el("label", `${prefix}-row`);
  const name = el("span", `${prefix}-name`, label);
  const input = el("input", `${prefix}-slider`);
  Object.assign(input, { type: "range", min: String(min), max: String(max), step: String(step) });
  input.value = String(value);
  const out = el("span", `${prefix}-value`, format(value));
  row.append(name, input, out);
  return { row, input, out, format };
}

// Two-way binding of sliders {key: slider(...)} to state[key] and to the model's traits
// {key: trait name}; the slider of a key in logKeys moves log(state[key]).
//   onInput(key): a slider has moved state[key] (recompute what depends on it and redraw);
//   onModelChange(read): traits were set from outside (Python); read() copies them into state and
//     the sliders (recompute and redraw after it).
// Returns push() (state -> model), sync() (state -> sliders) and dispose() (drops the listeners).
export function bindSliders(model, { state, sliders, traits, logKeys = [], onInput, onModelChange }) {
  const isLog = (k) => logKeys.includes(k);
  // Our own model.set calls fire change events one trait at a time; ignore them (otherwise the
  // first event would read the traits not yet written and undo part of the move).
  let pushing = false;
  function push() {
    pushing = true;
    try {
      for (const [k, trait] of Object.entries(traits)) model.set(trait, state[k]);
      model.save_changes();
    } catch (err) {
      /* no kernel behind a static page */
    } finally {
      pushing = false;
    }
  }
  function sync() {
    for (const [k, sl] of Object.entries(sliders)) {
      const v = isLog(k) ? Math.log(state[k]) : state[k];
      sl.input.value = String(v);
      sl.out.textContent = sl.format(v);
    }
  }
  for (const [k, sl] of Object.entries(sliders)) {
    sl.input.addEventListener("input", () => {
      const v = parseFloat(sl.input.value);
      state[k] = isLog(k) ? Math.exp(v) : v;
      sl.out.textContent = sl.format(v);
      onInput(k);
    });
    sl.input.addEventListener("change", push);
  }
  const read = () => {
    for (const [k, trait] of Object.entries(traits)) state[k] = model.get(trait);
    sync();
  };
  const onChange = () => {
    if (!pushing) onModelChange(read);
  };
  const events = Object.values(traits).map((t) => `change:${t}`);
  for (const ev of events) model.on(ev, onChange);
  return {
    push,
    sync,
    dispose: () => {
      for (const ev of events) model.off(ev, onChange);
    },
  };
}

// Draw for the first time and mark the root ready; on failure say so in the root (and rethrow).
export function firstDraw(root, drawAll) {
  try {
    drawAll();
    root.dataset.ready = "1";
  } catch (err) {
    const note = styledEl("div", "color:#b00020;font-weight:600;margin-top:6px", `Could not draw the explorer: ${err.message}`);
    note.className = "vae-error";
    root.appendChild(note);
    throw err;
  }
}

// ---------------------------------------------------------------- canvases

// A canvas of (width x height) image pixels shown at `scale` screen pixels each.
export function imageCanvas(className, width, height, scale, label) {
  const canvas = el("canvas", className);
  canvas.width = width * scale;
  canvas.height = height * scale;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", label);
  return canvas;
}

// Draw intensities in [0, 1] (row-major, width x height) on `canvas`, scaled up without smoothing;
// ink: dark strokes on white (as the book's figures of digits), else intensity as brightness.
export function paint(canvas, pixels, width, height, ink) {
  const small = document.createElement("canvas");
  small.width = width;
  small.height = height;
  const ctx = small.getContext("2d");
  const image = ctx.createImageData(width, height);
  for (let p = 0; p < pixels.length; p++) {
    const g = Math.round(255 * (ink ? 1 - pixels[p] : pixels[p]));
    image.data[4 * p] = image.data[4 * p + 1] = image.data[4 * p + 2] = g;
    image.data[4 * p + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
  const big = canvas.getContext("2d");
  big.imageSmoothingEnabled = false;
  big.drawImage(small, 0, 0, canvas.width, canvas.height);
}

// A canvas of width x height CSS pixels, sharp on high-density screens: {canvas, ctx, width, height}.
export function makeCanvas(width, height, label) {
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

// Clear a makeCanvas canvas to white.
export function clearCanvas({ ctx, width, height }) {
  ctx.clearRect(0, 0, width, height);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
}

// Text turned a quarter left (an axis title), centred on (x, y).
export function verticalText(ctx, text, x, y) {
  ctx.save();
  ctx.translate(x, y);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(text, 0, 0);
  ctx.restore();
}

const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

export function viridis(t) {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  return VIRIDIS[i].map((c, k) => Math.round(c + f * (VIRIDIS[i + 1][k] - c)));
}

// An nx x ny image of a grid (values[j * nx + i], row j = 0 at the bottom), each cell coloured
// viridis(shade(value, lo, hi)) with lo and hi the grid's extremes.
export function gridImage(values, nx, ny, shade) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const img = document.createElement("canvas");
  img.width = nx;
  img.height = ny;
  const ictx = img.getContext("2d");
  const data = ictx.createImageData(nx, ny);
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      const [r, g, b] = viridis(shade(values[j * nx + i], lo, hi));
      const p = 4 * ((ny - 1 - j) * nx + i);
      data.data[p] = r; data.data[p + 1] = g; data.data[p + 2] = b; data.data[p + 3] = 255;
    }
  }
  ictx.putImageData(data, 0, 0);
  return img;
}

// The plane of q's (mean, std), std on a log scale, inside frame = {L, T, R, B} (margins in px) of
// a makeCanvas canvas c: the mean axis spans [mlo, mhi], the std axis [slo, shi].
export function meanStdPlane(c, frame, [mlo, mhi], [slo, shi]) {
  const w = c.width - frame.L - frame.R, h = c.height - frame.T - frame.B;
  const a = Math.log(slo), b = Math.log(shi);
  const x = (m) => frame.L + ((m - mlo) / (mhi - mlo)) * w;
  const y = (s) => frame.T + (1 - (Math.log(s) - a) / (b - a)) * h;
  return {
    c, frame, w, h, x, y,
    // The map `img` in the frame, boxed, with the low mean, the std range and yLabel written on
    // the axes; leaves the text style at 11px, centred, for the caller's own labels.
    drawMap(img, yLabel) {
      const { ctx, height } = c;
      clearCanvas(c);
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(img, frame.L, frame.T, w, h);
      ctx.strokeStyle = "#333";
      ctx.strokeRect(frame.L, frame.T, w, h);
      ctx.fillStyle = "#222";
      ctx.font = "11px sans-serif";
      ctx.textAlign = "center";
      ctx.fillText(String(mlo), frame.L, height - 17);
      verticalText(ctx, yLabel, 10, frame.T + h / 2);
      ctx.textAlign = "right";
      ctx.fillText(String(shi), frame.L - 2, frame.T + 8);
      ctx.fillText(String(slo), frame.L - 2, frame.T + h);
      ctx.textAlign = "center";
    },
    // The current q: a red ring at (m, s).
    ring(m, s) {
      const { ctx } = c;
      ctx.beginPath();
      ctx.arc(x(m), y(s), 5, 0, 2 * Math.PI);
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#d62728";
      ctx.stroke();
      ctx.lineWidth = 1;
    },
    // Call back with the (mean, std) of a click inside the frame.
    onClick(callback) {
      c.canvas.addEventListener("click", (ev) => {
        const rect = c.canvas.getBoundingClientRect();
        const px = ((ev.clientX - rect.left) / rect.width) * c.width;
        const py = ((ev.clientY - rect.top) / rect.height) * c.height;
        const fm = (px - frame.L) / w, fs = 1 - (py - frame.T) / h;
        if (fm < 0 || fm > 1 || fs < 0 || fs > 1) return;
        callback(mlo + fm * (mhi - mlo), Math.exp(a + fs * (b - a)));
      });
    },
  };
}

// Axes of a density plot in frame = {L, R, T, B} of c: x ticks at the integers of [lo, hi]
// (placed by X), xTitle below, "density" on the left.
export function densityAxes(c, frame, [lo, hi], X, xTitle) {
  const { ctx, width, height } = c;
  const { L, R, T, B } = frame;
  ctx.strokeStyle = "#444";
  ctx.beginPath();
  ctx.moveTo(L, T - 4); ctx.lineTo(L, height - B); ctx.lineTo(width - R, height - B);
  ctx.stroke();
  ctx.fillStyle = "#222";
  ctx.font = "11px sans-serif";
  ctx.textAlign = "center";
  for (let z = Math.ceil(lo); z <= hi; z++) ctx.fillText(String(z), X(z), height - B + 13);
  ctx.fillText(xTitle, L + (width - L - R) / 2, height - 3);
  verticalText(ctx, "density", 11, T + (height - B - T) / 2);
}

// The area under the curve (xs, ys), in pixels (X, Y), filled with `color`.
export function fillCurve(ctx, xs, ys, X, Y, color) {
  ctx.fillStyle = color;
  ctx.beginPath();
  ctx.moveTo(X(xs[0]), Y(0));
  xs.forEach((x, i) => ctx.lineTo(X(x), Y(ys[i])));
  ctx.lineTo(X(xs[xs.length - 1]), Y(0));
  ctx.fill();
}

// The curve (xs, ys), in pixels (X, Y), stroked with `color`, line `dash` and `width`.
export function strokeCurve(ctx, xs, ys, X, Y, color, dash, width) {
  ctx.strokeStyle = color;
  ctx.setLineDash(dash);
  ctx.lineWidth = width;
  ctx.beginPath();
  xs.forEach((x, i) => (i ? ctx.lineTo(X(x), Y(ys[i])) : ctx.moveTo(X(x), Y(ys[i]))));
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.lineWidth = 1;
}

// A one-row legend along the top: items [{name, color, dash}], the k-th line sample starting at
// x0 + k * step, lineLength long, its name textGap after the sample's start.
export function drawLegend(ctx, items, x0, step, lineLength, textGap) {
  ctx.textAlign = "left";
  items.forEach(({ name, color, dash }, k) => {
    const x = x0 + k * step;
    ctx.strokeStyle = color; ctx.setLineDash(dash); ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(x, 10); ctx.lineTo(x + lineLength, 10); ctx.stroke();
    ctx.setLineDash([]); ctx.lineWidth = 1;
    ctx.fillStyle = "#222";
    ctx.fillText(name, x + textGap, 14);
  });
}
