// Categorical code explorer: the front end of vae_core.widgets.CategoricalExplorer (chapter 12).
//
// The code is N categorical variables with K classes each. The reader picks a class for every
// variable; the decoder (exported weights in the widget state) runs here, in the browser.
// A one-hot input makes the first layer a table look-up: W·onehot(c) + b = b + sum_n W[:, n*K + c_n],
// so the first layer costs N column sums instead of a full matrix product.
//
// Exports: `decodeCode(spec, codes, K)` (pure, used by the tests under node), `toIntensities`,
// and the anywidget module `default { render }`.
import { styledEl, saveChanges } from "./widget_common.js";

const SPEC_FORMAT = "vae-core-mlp/1";

function sigmoid(x) {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

const ACTIVATIONS = {
  identity: () => (x) => x,
  tanh: () => Math.tanh,
  relu: () => (x) => (x > 0 ? x : 0),
  sigmoid: () => sigmoid,
  leaky_relu: (l) => (x) => (x >= 0 ? x : l.negative_slope * x),
  softplus: (l) => (x) => {
    const bx = l.beta * x;
    if (bx > l.threshold) return x;
    return (bx > 0 ? bx + Math.log1p(Math.exp(-bx)) : Math.log1p(Math.exp(bx))) / l.beta;
  },
  elu: (l) => (x) => (x > 0 ? x : l.alpha * Math.expm1(x)),
};

function decodeFloat32(b64, count) {
  const binary = atob(b64);
  if (binary.length !== 4 * count) throw new Error(`weight blob has ${binary.length} bytes, expected ${4 * count}`);
  const view = new DataView(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i++) view.setUint8(i, binary.charCodeAt(i));
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

const PREPARED = new WeakMap();

function prepare(spec) {
  let layers = PREPARED.get(spec);
  if (layers) return layers;
  if (!spec || spec.format !== SPEC_FORMAT) throw new Error(`expected a decoder spec of format ${SPEC_FORMAT}`);
  layers = spec.layers.map((layer) => {
    if (layer.type === "linear") {
      return {
        type: "linear", nIn: layer.in, nOut: layer.out,
        weight: decodeFloat32(layer.weight, layer.in * layer.out),
        bias: layer.bias == null ? null : decodeFloat32(layer.bias, layer.out),
      };
    }
    const make = ACTIVATIONS[layer.name];
    if (!make) throw new Error(`unknown activation ${layer.name}`);
    return { type: "activation", fn: make(layer) };
  });
  if (layers[0].type !== "linear") throw new Error("the decoder must start with a Linear layer");
  PREPARED.set(spec, layers);
  return layers;
}

// The decoder's last-layer output (logits) for the code `codes` (N class indices in 0..K-1).
export function decodeCode(spec, codes, K) {
  const layers = prepare(spec);
  const first = layers[0];
  if (codes.length * K !== first.nIn) {
    throw new Error(`${codes.length} variables x ${K} classes = ${codes.length * K} inputs, the decoder takes ${first.nIn}`);
  }
  // first layer: bias plus one weight column per variable (the column of its class)
  let h = new Float64Array(first.nOut);
  for (let o = 0; o < first.nOut; o++) {
    let acc = first.bias ? first.bias[o] : 0;
    const row = o * first.nIn;
    for (let n = 0; n < codes.length; n++) {
      const c = codes[n];
      if (!(Number.isInteger(c) && c >= 0 && c < K)) throw new Error(`class ${c} of variable ${n} is not in 0..${K - 1}`);
      acc += first.weight[row + n * K + c];
    }
    h[o] = acc;
  }
  for (const layer of layers.slice(1)) {
    if (layer.type === "linear") {
      const { nIn, nOut, weight, bias } = layer;
      const out = new Float64Array(nOut);
      for (let o = 0; o < nOut; o++) {
        let acc = bias ? bias[o] : 0;
        const row = o * nIn;
        for (let i = 0; i < nIn; i++) acc += weight[row + i] * h[i];
        out[o] = acc;
      }
      h = out;
    } else {
      for (let i = 0; i < h.length; i++) h[i] = layer.fn(h[i]);
    }
  }
  return h;
}

// logits -> pixel probabilities in [0, 1]
export function toIntensities(raw) {
  return Float64Array.from(raw, sigmoid);
}

// ---------------------------------------------------------------- the widget

function paint(canvas, small, pixels, ink) {
  const ctx = small.getContext("2d");
  const image = ctx.createImageData(small.width, small.height);
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

function render({ model, el: host }) {
  const spec = model.get("spec");
  const N = model.get("n_latents");
  const K = model.get("n_categories");
  const [height, width] = model.get("image_shape");
  const scale = model.get("scale");
  const ink = model.get("colors") !== "grey";
  const initial = model.get("initial");
  let codes = Array.from(model.get("codes").length === N ? model.get("codes") : initial);
  let focus = 0;   // the variable whose classes the strip of thumbnails shows

  const root = styledEl("div", "font-family:sans-serif;font-size:13px;margin:0.5em 0;");
  root.className = "vae-ce";
  const title = model.get("title");
  if (title) root.appendChild(styledEl("div", "font-weight:bold;margin-bottom:0.4em;", title));
  const body = styledEl("div", "display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start;");
  root.appendChild(body);

  const left = styledEl("div", "display:flex;flex-direction:column;gap:6px;");
  const canvas = styledEl("canvas", "border:1px solid #ccc;image-rendering:pixelated;");
  canvas.className = "vae-ce-canvas";
  canvas.width = width * scale;
  canvas.height = height * scale;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", "decoded image");
  const small = document.createElement("canvas");
  small.width = width;
  small.height = height;
  const label = styledEl("div", "font-family:monospace;max-width:" + (width * scale) + "px;word-break:break-all;");
  label.className = "vae-ce-code";
  const buttons = styledEl("div", "display:flex;gap:6px;");
  const sample = styledEl("button", "padding:2px 8px;", "random code from the prior");
  sample.className = "vae-ce-sample";
  const reset = styledEl("button", "padding:2px 8px;", "reset");
  reset.className = "vae-ce-reset";
  sample.type = reset.type = "button";
  buttons.append(sample, reset);
  left.append(canvas, label, buttons);
  body.appendChild(left);

  // the grid: one row per variable, one cell per class
  const right = styledEl("div", "display:flex;flex-direction:column;gap:6px;");
  const grid = styledEl("div", `display:grid;width:max-content;grid-template-columns:max-content repeat(${K}, 22px);gap:2px;align-items:center;`);
  grid.className = "vae-ce-grid";
  grid.appendChild(styledEl("span", "", ""));
  for (let k = 0; k < K; k++) grid.appendChild(styledEl("span", "text-align:center;color:#666;", String(k)));
  const cells = [];
  const rowNames = [];
  for (let n = 0; n < N; n++) {
    const name = styledEl("span", "padding-right:6px;cursor:pointer;", `c${n + 1}`);
    name.className = "vae-ce-name";
    name.addEventListener("click", () => { focus = n; draw(); });
    rowNames.push(name);
    grid.appendChild(name);
    const row = [];
    for (let k = 0; k < K; k++) {
      const cell = styledEl("button", "width:22px;height:18px;padding:0;border:1px solid #bbb;cursor:pointer;");
      cell.type = "button";
      cell.className = "vae-ce-cell";
      cell.dataset.variable = String(n);
      cell.dataset.category = String(k);
      cell.title = `variable ${n + 1}, class ${k}`;
      cell.addEventListener("click", () => { codes[n] = k; focus = n; draw(); push(); });
      grid.appendChild(cell);
      row.push(cell);
    }
    cells.push(row);
  }
  right.appendChild(grid);
  // the strip: what the image becomes for every class of the focused variable
  const stripTitle = styledEl("div", "color:#444;");
  const strip = styledEl("div", "display:flex;flex-wrap:wrap;gap:3px;");
  const thumbs = [];
  const tScale = Math.max(1, Math.round(48 / Math.max(width, height)));
  for (let k = 0; k < K; k++) {
    const t = styledEl("canvas", "border:1px solid #ddd;cursor:pointer;image-rendering:pixelated;");
    t.className = "vae-ce-thumb";
    t.width = width * tScale;
    t.height = height * tScale;
    t.title = `class ${k}`;
    t.addEventListener("click", () => { codes[focus] = k; draw(); push(); });
    strip.appendChild(t);
    thumbs.push(t);
  }
  body.appendChild(right);
  const bottom = styledEl("div", "display:flex;flex-direction:column;gap:4px;margin-top:8px;");
  bottom.append(stripTitle, strip);
  root.appendChild(bottom);
  host.appendChild(root);

  function draw() {
    paint(canvas, small, toIntensities(decodeCode(spec, codes, K)), ink);
    for (let n = 0; n < N; n++) {
      rowNames[n].style.fontWeight = n === focus ? "bold" : "normal";
      for (let k = 0; k < K; k++) {
        cells[n][k].style.background = codes[n] === k ? "#1f77b4" : n === focus ? "#eef3fa" : "#fff";
      }
    }
    stripTitle.textContent = `variable c${focus + 1} through its ${K} classes (click to choose):`;
    for (let k = 0; k < K; k++) {
      const alt = codes.slice();
      alt[focus] = k;
      paint(thumbs[k], small, toIntensities(decodeCode(spec, alt, K)), ink);
      thumbs[k].style.borderColor = k === codes[focus] ? "#1f77b4" : "#ddd";
    }
    label.textContent = `c = (${codes.join(", ")})`;
    root.dataset.draws = String(Number(root.dataset.draws || 0) + 1);
  }

  function push() {
    model.set("codes", Array.from(codes));
    saveChanges(model);
  }

  sample.addEventListener("click", () => {
    codes = codes.map(() => Math.floor(Math.random() * K));
    draw();
    push();
  });
  reset.addEventListener("click", () => {
    codes = Array.from(initial);
    draw();
    push();
  });

  const onCodes = () => {
    const next = model.get("codes");
    if (next.length === N && next.some((v, i) => v !== codes[i])) {
      codes = Array.from(next);
      draw();
    }
  };
  model.on("change:codes", onCodes);

  try {
    draw();
    root.dataset.ready = "1";
  } catch (err) {
    root.appendChild(styledEl("div", "color:#b00;", `Could not run the decoder: ${err.message}`));
    throw err;
  }
  return () => model.off("change:codes", onCodes);
}

export default { render };
