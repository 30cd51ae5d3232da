// Latent explorer: the front end of vae_core.widgets.LatentExplorer.
//
// The decoder runs here, in the browser, from the weights in the widget state (the dict made by
// vae_core.widgets.export_mlp). Moving a slider never calls Python, so the explorer works in
// Jupyter, in Colab and on a static web page alike.
//
// Exports: `mlpForward(spec, z)` (pure, also used by the tests under node), `toIntensities`,
// and the anywidget module `default { render }`.

const SPEC_FORMAT = "vae-core-mlp/1";

// ---------------------------------------------------------------- the decoder, in plain JS

function sigmoid(x) {
  // 1 / (1 + exp(-x)) computed without overflow for large |x|
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

const ACTIVATIONS = {
  identity: () => (x) => x,
  tanh: () => Math.tanh,
  relu: () => (x) => (x > 0 ? x : 0),
  sigmoid: () => sigmoid,
  leaky_relu: (layer) => {
    const slope = layer.negative_slope;
    return (x) => (x >= 0 ? x : slope * x);
  },
  softplus: (layer) => {
    // torch.nn.Softplus: log(1 + exp(beta x)) / beta, and x itself once beta x > threshold
    const beta = layer.beta, threshold = layer.threshold;
    return (x) => {
      const bx = beta * x;
      if (bx > threshold) return x;
      return (bx > 0 ? bx + Math.log1p(Math.exp(-bx)) : Math.log1p(Math.exp(bx))) / beta;
    };
  },
  elu: (layer) => {
    const alpha = layer.alpha;
    return (x) => (x > 0 ? x : alpha * Math.expm1(x));
  },
};

// base64 of little-endian float32 values -> Float32Array (endianness made explicit)
function decodeFloat32(b64, count) {
  const binary = atob(b64);
  if (binary.length !== 4 * count) {
    throw new Error(`weight blob has ${binary.length} bytes, expected ${4 * count}`);
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  const view = new DataView(bytes.buffer);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

// Decoding the weights is the slow part; do it once per spec object.
const PREPARED = new WeakMap();

function prepare(spec) {
  let prepared = PREPARED.get(spec);
  if (prepared) return prepared;
  if (!spec || spec.format !== SPEC_FORMAT) {
    throw new Error(`expected a decoder spec of format ${SPEC_FORMAT}`);
  }
  prepared = spec.layers.map((layer) => {
    if (layer.type === "linear") {
      return {
        type: "linear",
        nIn: layer.in,
        nOut: layer.out,
        weight: decodeFloat32(layer.weight, layer.in * layer.out),
        bias: layer.bias === null || layer.bias === undefined ? null : decodeFloat32(layer.bias, layer.out),
      };
    }
    const make = ACTIVATIONS[layer.name];
    if (!make) throw new Error(`unknown activation ${layer.name}`);
    return { type: "activation", fn: make(layer) };
  });
  PREPARED.set(spec, prepared);
  return prepared;
}

// Run the decoder on one latent code z (array of length in_features). Returns the raw last-layer
// output (logits or means) as a Float64Array of length out_features.
export function mlpForward(spec, z) {
  if (z.length !== spec.in_features) {
    throw new Error(`z has ${z.length} values, the decoder takes ${spec.in_features}`);
  }
  let h = Float64Array.from(z);
  for (const layer of prepare(spec)) {
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

// Last-layer output -> pixel intensities in [0, 1].
export function toIntensities(raw, output) {
  const out = new Float64Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const v = output === "sigmoid" ? sigmoid(raw[i]) : raw[i];
    out[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return out;
}

// ---------------------------------------------------------------- the widget

function formatZ(z, dims, latentDim) {
  const shown = latentDim <= 8 ? [...Array(latentDim).keys()] : dims;
  const parts = shown.map((i) => z[i].toFixed(2));
  const rest = latentDim - shown.length;
  return `z = (${parts.join(", ")}${rest > 0 ? `; ${rest} more held fixed` : ""})`;
}

function gaussian() {
  // Box-Muller: one N(0, 1) draw
  let u = 0;
  while (u === 0) u = Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function render({ model, el: host }) {
  const spec = model.get("spec");
  const latentDim = model.get("latent_dim");
  const [height, width] = model.get("image_shape");
  const output = model.get("output");
  const dims = model.get("dims");
  const [lo, hi] = model.get("value_range");
  const initial = model.get("initial");
  const scale = model.get("scale");
  let z = Array.from(model.get("z").length === latentDim ? model.get("z") : initial);

  const root = el("div", "vae-le");
  const title = model.get("title");
  if (title) root.appendChild(el("div", "vae-le-title", title));
  const body = el("div", "vae-le-body");
  root.appendChild(body);

  // the image: drawn at native size off screen, then scaled up without smoothing
  const figure = el("div", "vae-le-figure");
  const canvas = el("canvas", "vae-le-canvas");
  canvas.width = width * scale;
  canvas.height = height * scale;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", "decoded image");
  const small = document.createElement("canvas");
  small.width = width;
  small.height = height;
  const label = el("div", "vae-le-z");
  figure.append(canvas, label);
  body.appendChild(figure);

  // the sliders
  const controls = el("div", "vae-le-controls");
  const sliders = new Map();
  for (const i of dims) {
    const row = el("label", "vae-le-row");
    const name = el("span", "vae-le-name", `z[${i}]`);
    const input = el("input", "vae-le-slider");
    Object.assign(input, { type: "range", min: String(lo), max: String(hi), step: "0.01" });
    input.dataset.dim = String(i);
    input.value = String(z[i]);
    const value = el("span", "vae-le-value", z[i].toFixed(2));
    input.addEventListener("input", () => {
      z[i] = parseFloat(input.value);
      value.textContent = z[i].toFixed(2);
      draw();
    });
    input.addEventListener("change", () => push());
    row.append(name, input, value);
    controls.appendChild(row);
    sliders.set(i, { input, value });
  }
  const buttons = el("div", "vae-le-buttons");
  const reset = el("button", "vae-le-button vae-le-reset", "reset");
  const sample = el("button", "vae-le-button vae-le-sample", "random sample from prior");
  reset.type = sample.type = "button";
  reset.addEventListener("click", () => {
    z = Array.from(initial);
    syncSliders();
    draw();
    push();
  });
  sample.addEventListener("click", () => {
    for (const i of dims) z[i] = Math.min(hi, Math.max(lo, gaussian()));
    syncSliders();
    draw();
    push();
  });
  buttons.append(reset, sample);
  controls.appendChild(buttons);
  body.appendChild(controls);
  host.appendChild(root);

  function syncSliders() {
    for (const [i, { input, value }] of sliders) {
      input.value = String(z[i]);
      value.textContent = z[i].toFixed(2);
    }
  }

  function draw() {
    const pixels = toIntensities(mlpForward(spec, z), output);
    const ink = model.get("colors") !== "grey";
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
    label.textContent = formatZ(z, dims, latentDim);
    root.dataset.draws = String(Number(root.dataset.draws || 0) + 1);
  }

  // Tell the kernel (when there is one) where the sliders are. A static page has no kernel,
  // and some managers refuse to sync without one: the local state is all that matters there.
  function push() {
    model.set("z", Array.from(z));
    try {
      model.save_changes();
    } catch (err) {
      /* no kernel behind this page */
    }
  }

  // z set from Python (or by another view of the same model)
  const onZ = () => {
    const next = model.get("z");
    if (next.length === latentDim && next.some((v, k) => v !== z[k])) {
      z = Array.from(next);
      syncSliders();
      draw();
    }
  };
  model.on("change:z", onZ);

  try {
    draw();
    root.dataset.ready = "1";
  } catch (err) {
    root.appendChild(el("div", "vae-le-error", `Could not run the decoder: ${err.message}`));
    throw err;
  }
  return () => model.off("change:z", onZ);
}

export default { render };
