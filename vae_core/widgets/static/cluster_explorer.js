// Cluster explorer: the front end of vae_core.widgets.ClusterExplorer (chapter 13, VaDE).
//
// The reader picks a cluster c (a row of buttons, each showing the decoded cluster mean) and moves
// sliders s_j measured in that cluster's standard deviations: z = mu_c + sigma_c * s. The decoder
// runs here from the weights in the widget state (vae_core.widgets.export_mlp's format), and the
// clusters' means and standard deviations are in the state too, so no Python kernel is needed.
//
// Exports: `decoderForward(spec, z)`, `toIntensities(raw, output)`, `clusterCode(means, stds, c, s)`
// (pure, also run by the tests under node) and the anywidget module `default { render }`.
import { styledEl, saveChanges } from "./widget_common.js";

const SPEC_FORMAT = "vae-core-mlp/1";

// ---------------------------------------------------------------- the arithmetic

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
  leaky_relu: (layer) => (x) => (x >= 0 ? x : layer.negative_slope * x),
  softplus: (layer) => (x) => {
    const bx = layer.beta * x;
    if (bx > layer.threshold) return x;
    return (bx > 0 ? bx + Math.log1p(Math.exp(-bx)) : Math.log1p(Math.exp(bx))) / layer.beta;
  },
  elu: (layer) => (x) => (x > 0 ? x : layer.alpha * Math.expm1(x)),
};

// base64 of little-endian float32 -> Float32Array
function float32s(b64, count) {
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
        linear: true, nIn: layer.in, nOut: layer.out,
        weight: float32s(layer.weight, layer.in * layer.out),
        bias: layer.bias == null ? null : float32s(layer.bias, layer.out),
      };
    }
    const make = ACTIVATIONS[layer.name];
    if (!make) throw new Error(`unknown activation ${layer.name}`);
    return { linear: false, fn: make(layer) };
  });
  PREPARED.set(spec, layers);
  return layers;
}

// The decoder's last-layer output (logits or means) for one code z.
export function decoderForward(spec, z) {
  if (z.length !== spec.in_features) throw new Error(`z has ${z.length} values, the decoder takes ${spec.in_features}`);
  let h = Float64Array.from(z);
  for (const layer of prepare(spec)) {
    if (layer.linear) {
      const out = new Float64Array(layer.nOut);
      for (let o = 0; o < layer.nOut; o++) {
        let acc = layer.bias ? layer.bias[o] : 0;
        const row = o * layer.nIn;
        for (let i = 0; i < layer.nIn; i++) acc += layer.weight[row + i] * h[i];
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

// z = mu_c + sigma_c * s
export function clusterCode(means, stds, c, s) {
  return means[c].map((m, j) => m + stds[c][j] * s[j]);
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
  const means = model.get("means");
  const stds = model.get("stds");
  const weights = model.get("weights");
  const K = model.get("n_clusters");
  const d = model.get("latent_dim");
  const [height, width] = model.get("image_shape");
  const output = model.get("output");
  const dims = model.get("dims");
  const [lo, hi] = model.get("value_range");
  const scale = model.get("scale");
  const ink = model.get("colors") !== "grey";
  let cluster = model.get("cluster");
  let s = model.get("s").length === d ? Array.from(model.get("s")) : new Array(d).fill(0);

  const image = (c, sv) => toIntensities(decoderForward(spec, clusterCode(means, stds, c, sv)), output);
  const small = document.createElement("canvas");
  small.width = width;
  small.height = height;

  const root = styledEl("div", "font-family:system-ui,sans-serif;font-size:14px;line-height:1.4;"
    + "border:1px solid rgba(127,127,127,0.35);border-radius:6px;padding:10px 14px;margin:6px 0;max-width:760px");
  root.className = "vae-ce";
  const title = model.get("title");
  if (title) root.appendChild(styledEl("div", "font-weight:600;margin-bottom:8px", title));

  // the cluster buttons, each a thumbnail of its decoded mean
  const bar = styledEl("div", "display:flex;flex-wrap:wrap;gap:6px;margin-bottom:10px");
  const buttons = [];
  const thumbScale = Math.max(1, Math.round(44 / Math.max(width, height)));
  for (let c = 0; c < K; c++) {
    const b = styledEl("button", "display:flex;flex-direction:column;align-items:center;padding:3px;"
      + "border:2px solid transparent;border-radius:4px;background:none;cursor:pointer;font:inherit;font-size:11px");
    b.type = "button";
    b.className = "vae-ce-cluster";
    b.dataset.cluster = String(c);
    b.title = `cluster ${c}: weight ${weights[c].toFixed(3)}`;
    const thumb = document.createElement("canvas");
    thumb.width = width * thumbScale;
    thumb.height = height * thumbScale;
    thumb.style.cssText = "image-rendering:pixelated;border:1px solid rgba(127,127,127,0.5)";
    paint(thumb, small, image(c, new Array(d).fill(0)), ink);
    b.append(thumb, styledEl("span", "", `${c} · ${(100 * weights[c]).toFixed(0)}%`));
    b.addEventListener("click", () => {
      cluster = c;
      draw();
      push();
    });
    bar.appendChild(b);
    buttons.push(b);
  }
  root.appendChild(bar);

  const body = styledEl("div", "display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start");
  const figure = styledEl("div", "display:flex;flex-direction:column;gap:6px");
  const canvas = document.createElement("canvas");
  canvas.className = "vae-ce-canvas";
  canvas.width = width * scale;
  canvas.height = height * scale;
  canvas.style.cssText = "image-rendering:pixelated;border:1px solid rgba(127,127,127,0.5)";
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", "decoded image");
  const label = styledEl("div", "font-family:ui-monospace,monospace;font-size:12px;max-width:300px");
  label.className = "vae-ce-label";
  figure.append(canvas, label);
  body.appendChild(figure);

  const controls = styledEl("div", "display:flex;flex-direction:column;gap:4px;min-width:260px");
  controls.appendChild(styledEl("div", "font-size:12px;opacity:0.8",
    "sliders in units of the cluster's standard deviation: z = μ_c + σ_c · s"));
  const sliders = new Map();
  for (const j of dims) {
    const row = styledEl("label", "display:flex;align-items:center;gap:8px");
    const name = styledEl("span", "font-family:ui-monospace,monospace;width:3.5em", `s[${j}]`);
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min: String(lo), max: String(hi), step: "0.01" });
    input.className = "vae-ce-slider";
    input.style.flex = "1";
    input.value = String(s[j]);
    const value = styledEl("span", "font-family:ui-monospace,monospace;width:3.5em", s[j].toFixed(2));
    input.addEventListener("input", () => {
      s[j] = parseFloat(input.value);
      value.textContent = s[j].toFixed(2);
      draw();
    });
    input.addEventListener("change", () => push());
    row.append(name, input, value);
    controls.appendChild(row);
    sliders.set(j, { input, value });
  }
  const centre = styledEl("button", "align-self:flex-start;margin-top:4px", "back to the cluster mean");
  centre.type = "button";
  centre.className = "vae-ce-centre";
  centre.addEventListener("click", () => {
    s = new Array(d).fill(0);
    syncSliders();
    draw();
    push();
  });
  controls.appendChild(centre);
  body.appendChild(controls);
  root.appendChild(body);
  host.appendChild(root);

  function syncSliders() {
    for (const [j, { input, value }] of sliders) {
      input.value = String(s[j]);
      value.textContent = s[j].toFixed(2);
    }
  }

  function draw() {
    paint(canvas, small, image(cluster, s), ink);
    buttons.forEach((b, c) => { b.style.borderColor = c === cluster ? "#1f78b4" : "transparent"; });
    const shown = dims.slice(0, 4).map((j) => `${j}: ${s[j].toFixed(2)}`).join(", ");
    label.textContent = `cluster ${cluster} (π = ${weights[cluster].toFixed(3)}); s = (${shown}${dims.length > 4 ? ", …" : ""})`;
    root.dataset.cluster = String(cluster);
    root.dataset.draws = String(Number(root.dataset.draws || 0) + 1);
  }

  function push() {
    model.set("cluster", cluster);
    model.set("s", Array.from(s));
    saveChanges(model);
  }

  const onChange = () => {
    const c = model.get("cluster");
    const next = model.get("s");
    if (c !== cluster || (next.length === d && next.some((v, k) => v !== s[k]))) {
      cluster = c;
      if (next.length === d) s = Array.from(next);
      syncSliders();
      draw();
    }
  };
  model.on("change:cluster", onChange);
  model.on("change:s", onChange);

  try {
    draw();
    root.dataset.ready = "1";
  } catch (err) {
    root.appendChild(styledEl("div", "color:#b00", `Could not run the decoder: ${err.message}`));
    throw err;
  }
  return () => {
    model.off("change:cluster", onChange);
    model.off("change:s", onChange);
  };
}

export default { render };
