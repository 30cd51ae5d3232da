// The decoder explorer: the front end of vae_core.widgets.LatentExplorer.
//
// The decoder runs here, in the browser, from the weights in the widget state (the spec made by
// vae_core.widgets.export_mlp, run by mlp.js). Nothing calls Python when a control moves, so the
// explorer works in Jupyter, in Colab and on a static page alike. One render serves four input
// maps, i.e. four ways the reader's controls become the decoder's input:
//   "z"        sliders move the code z                                   (LatentExplorer)
//   "z+label"  class buttons choose y, sliders move the style z: [z, onehot(y)]      (CVAE, M2)
//   "codes"    a grid chooses a class per categorical variable: N one-hot vectors  (CategoricalVAE)
//   "cluster"  buttons choose a cluster c, sliders move s: z = mu_c + sigma_c * s         (VaDE)
//
// Exports (pure, also run by the tests under node): withLabel, clusterCode, decodePixels, and
// mlp.js's mlpForward, oneHotForward, toIntensities; and the anywidget module `default { render }`.
import { mlpForward, oneHotForward, toIntensities } from "./mlp.js";
import { el, slider, saveChanges, firstDraw, imageCanvas, paint, gaussian } from "./common.js";

export { mlpForward, oneHotForward, toIntensities };

// ---------------------------------------------------------------- the input maps, as arithmetic

// [z, onehot(label)]: the decoder's input for style z and class `label` of nClasses.
export function withLabel(z, label, nClasses) {
  if (!Number.isInteger(label) || label < 0 || label >= nClasses) {
    throw new Error(`label must be an integer in 0..${nClasses - 1}, got ${label}`);
  }
  const v = new Float64Array(z.length + nClasses);
  v.set(z);
  v[z.length + label] = 1;
  return v;
}

// z = mu_c + sigma_c * s
export function clusterCode(means, stds, c, s) {
  if (!Number.isInteger(c) || c < 0 || c >= means.length) {
    throw new Error(`cluster must be an integer in 0..${means.length - 1}, got ${c}`);
  }
  return means[c].map((m, j) => m + stds[c][j] * s[j]);
}

// The pixel intensities in [0, 1] the explorer draws for `state` = {z, label, codes, cluster}
// under input map `map` with its fixed `data` (the widget's map_data).
export function decodePixels(spec, map, data, state, output) {
  let raw;
  if (map === "z") raw = mlpForward(spec, state.z);
  else if (map === "z+label") raw = mlpForward(spec, withLabel(state.z, state.label, data.class_names.length));
  else if (map === "codes") raw = oneHotForward(spec, state.codes, data.n_categories);
  else if (map === "cluster") raw = mlpForward(spec, clusterCode(data.means, data.stds, state.cluster, state.z));
  else throw new Error(`unknown input map ${map}`);
  return toIntensities(raw, output);
}

// ---------------------------------------------------------------- the input maps, as controls
//
// Each map adds its own controls to the common frame: build(ui) returns {update()}, called after
// every change to show the state. ui = {state, data, root, top, controls, bottom, thumbnail(state),
// change()}; change() redraws everything and tells the kernel.

const fixed = (v) => v.toFixed(2);

function codeText(z, dims, latentDim) {
  const shown = latentDim <= 8 ? [...Array(latentDim).keys()] : dims;
  const rest = latentDim - shown.length;
  return `(${shown.map((i) => fixed(z[i])).join(", ")}${rest > 0 ? `; ${rest} more held fixed` : ""})`;
}

// A row of toggle buttons, one per choice k (label(k) as content), pressed = chosen(k).
function choiceButtons(parent, labels, onPick) {
  return labels.map((content, k) => {
    const b = el("button", "vae-le-choice");
    b.type = "button";
    b.dataset.choice = String(k);
    b.append(...content);
    b.addEventListener("click", () => onPick(k));
    parent.appendChild(b);
    return b;
  });
}

// A strip of thumbnails, one per class k of `count`, drawn from stateFor(k); clicking one picks k.
function thumbStrip(ui, heading, count, onPick) {
  const title = el("div", "vae-le-heading", heading);
  const strip = el("div", "vae-le-strip");
  const thumbs = Array.from({ length: count }, (_, k) => {
    const t = ui.thumbnail(`class ${k}`);
    t.classList.add("vae-le-thumb");
    t.addEventListener("click", () => onPick(k));
    strip.appendChild(t);
    return t;
  });
  ui.bottom.append(title, strip);
  return { title, thumbs };
}

const INPUT_MAPS = {
  z: {
    sliderName: (i) => `z[${i}]`,
    randomText: "random sample from prior",
    caption: (st, ui) => `z = ${codeText(st.z, ui.dims, ui.latentDim)}`,
    build: () => ({ update() {} }),
  },

  "z+label": {
    sliderName: (i) => `z[${i}]`,
    randomText: "random style",
    sliderHeading: "style z",
    caption: (st, ui) => `y = ${ui.data.class_names[st.label]}, z = ${codeText(st.z, ui.dims, ui.latentDim)}`,
    build(ui) {
      const names = ui.data.class_names;
      const pick = (k) => { ui.state.label = k; ui.change(); };
      ui.controls.appendChild(el("div", "vae-le-heading", "class y"));
      const row = el("div", "vae-le-choices");
      const buttons = choiceButtons(row, names.map((n) => [n]), pick);
      ui.controls.appendChild(row);
      const { thumbs } = thumbStrip(ui, "the same style z decoded as every class (click one to choose it)", names.length, pick);
      return {
        update() {
          names.forEach((_, k) => {
            buttons[k].setAttribute("aria-pressed", String(k === ui.state.label));
            thumbs[k].classList.toggle("vae-le-chosen", k === ui.state.label);
            ui.draw(thumbs[k], { ...ui.state, label: k });
          });
          ui.root.dataset.choice = String(ui.state.label);
        },
      };
    },
  },

  codes: {
    randomText: "random code from the prior",
    caption: (st) => `c = (${st.codes.join(", ")})`,
    build(ui) {
      const K = ui.data.n_categories, N = ui.state.codes.length;
      let focus = 0;   // the variable whose classes the strip shows
      const grid = el("div", "vae-le-grid");
      grid.style.gridTemplateColumns = `max-content repeat(${K}, 22px)`;
      grid.appendChild(el("span"));
      for (let k = 0; k < K; k++) grid.appendChild(el("span", "vae-le-gridhead", String(k)));
      const names = [], cells = [];
      for (let n = 0; n < N; n++) {
        const name = el("span", "vae-le-name", `c${n + 1}`);
        name.addEventListener("click", () => { focus = n; ui.change(); });
        names.push(name);
        grid.appendChild(name);
        cells.push(Array.from({ length: K }, (_, k) => {
          const cell = el("button", "vae-le-cell");
          cell.type = "button";
          cell.dataset.variable = String(n);
          cell.dataset.category = String(k);
          cell.title = `variable ${n + 1}, class ${k}`;
          cell.addEventListener("click", () => { ui.state.codes[n] = k; focus = n; ui.change(); });
          grid.appendChild(cell);
          return cell;
        }));
      }
      ui.controls.appendChild(grid);
      const strip = thumbStrip(ui, "", K, (k) => { ui.state.codes[focus] = k; ui.change(); });
      return {
        update() {
          const codes = ui.state.codes;
          names.forEach((name, n) => name.classList.toggle("vae-le-focus", n === focus));
          cells.forEach((row, n) => row.forEach((cell, k) => {
            cell.setAttribute("aria-pressed", String(codes[n] === k));
            cell.classList.toggle("vae-le-focus", n === focus);
          }));
          strip.title.textContent = `variable c${focus + 1} through its ${K} classes (click to choose):`;
          strip.thumbs.forEach((t, k) => {
            const alt = codes.slice();
            alt[focus] = k;
            t.classList.toggle("vae-le-chosen", k === codes[focus]);
            ui.draw(t, { ...ui.state, codes: alt });
          });
        },
      };
    },
  },

  cluster: {
    sliderName: (j) => `s[${j}]`,
    randomText: "random draw from this cluster",
    resetText: "back to the cluster mean",
    sliderHeading: "sliders in units of the cluster's standard deviation: z = \u03bc_c + \u03c3_c \u00b7 s",
    caption(st, ui) {
      const shown = ui.dims.slice(0, 4).map((j) => `${j}: ${fixed(st.z[j])}`).join(", ");
      const pi = ui.data.weights[st.cluster].toFixed(3);
      return `cluster ${st.cluster} (\u03c0 = ${pi}); s = (${shown}${ui.dims.length > 4 ? ", \u2026" : ""})`;
    },
    build(ui) {
      const { weights } = ui.data;
      const bar = el("div", "vae-le-choices vae-le-clusters");
      const mean = new Array(ui.latentDim).fill(0);
      const buttons = choiceButtons(bar, weights.map((w, c) => {
        const t = ui.thumbnail(`decoded mean of cluster ${c}`);
        ui.draw(t, { ...ui.state, cluster: c, z: mean });
        return [t, el("span", null, `${c} \u00b7 ${(100 * w).toFixed(0)}%`)];
      }), (c) => { ui.state.cluster = c; ui.change(); });
      buttons.forEach((b, c) => { b.title = `cluster ${c}: weight ${weights[c].toFixed(3)}`; });
      ui.top.appendChild(bar);
      return {
        update() {
          buttons.forEach((b, c) => b.setAttribute("aria-pressed", String(c === ui.state.cluster)));
          ui.root.dataset.choice = String(ui.state.cluster);
        },
      };
    },
  },
};

// ---------------------------------------------------------------- the widget

function render({ model, el: host }) {
  const map = model.get("input_map");
  const pieces = INPUT_MAPS[map];
  const spec = model.get("spec");
  const data = model.get("map_data");
  const latentDim = model.get("latent_dim");
  const [height, width] = model.get("image_shape");
  const output = model.get("output");
  const dims = model.get("dims");
  const [lo, hi] = model.get("value_range");
  const initial = model.get("initial");
  const scale = model.get("scale");
  const ink = model.get("colors") !== "grey";
  const read = () => ({ z: Array.from(model.get("z")), label: model.get("label"),
                        codes: Array.from(model.get("codes")), cluster: model.get("cluster") });
  const state = read();

  const root = el("div", "vae-le");
  root.dataset.map = map;
  const title = model.get("title");
  if (title) root.appendChild(el("div", "vae-le-title", title));
  const top = el("div");
  const body = el("div", "vae-le-body");
  const bottom = el("div", "vae-le-bottom");
  root.append(top, body, bottom);
  const figure = el("div", "vae-le-figure");
  const canvas = imageCanvas("vae-le-canvas", width, height, scale, "decoded image");
  const caption = el("div", "vae-le-caption");
  figure.append(canvas, caption);
  const controls = el("div", "vae-le-controls");
  body.append(figure, controls);

  const thumbScale = Math.max(1, Math.round(48 / Math.max(width, height)));
  const ui = {
    state, data, root, top, controls, bottom, dims, latentDim,
    thumbnail: (label) => imageCanvas("vae-le-small", width, height, thumbScale, label),
    draw: (target, st) => paint(target, decodePixels(spec, map, data, st, output), width, height, ink),
    change: () => { drawAll(); push(); },
  };
  const extra = pieces.build(ui);

  const sliders = new Map();
  if (pieces.sliderName) {
    if (pieces.sliderHeading) controls.appendChild(el("div", "vae-le-heading", pieces.sliderHeading));
    for (const i of dims) {
      const s = slider(pieces.sliderName(i), lo, hi, 0.01, state.z[i], fixed, "vae-le");
      s.input.dataset.dim = String(i);
      s.input.addEventListener("input", () => {
        state.z[i] = parseFloat(s.input.value);
        s.out.textContent = fixed(state.z[i]);
        drawAll();
      });
      s.input.addEventListener("change", () => push());
      controls.appendChild(s.row);
      sliders.set(i, s);
    }
  }
  const buttons = el("div", "vae-le-buttons");
  const button = (cls, text, onClick) => {
    const b = el("button", `vae-le-button ${cls}`, text);
    b.type = "button";
    b.addEventListener("click", () => { onClick(); syncSliders(); ui.change(); });
    buttons.appendChild(b);
  };
  button("vae-le-reset", pieces.resetText || "reset", () => {
    for (const [k, v] of Object.entries(initial)) state[k] = Array.isArray(v) ? Array.from(v) : v;
  });
  button("vae-le-random", pieces.randomText, () => {
    if (map === "codes") state.codes = state.codes.map(() => Math.floor(Math.random() * data.n_categories));
    else for (const i of dims) state.z[i] = Math.min(hi, Math.max(lo, gaussian()));
  });
  for (const style of model.get("styles")) {
    button("vae-le-style", style.name, () => { state.z = Array.from(style.z); });
  }
  controls.appendChild(buttons);
  host.appendChild(root);

  function syncSliders() {
    for (const [i, s] of sliders) {
      s.input.value = String(state.z[i]);
      s.out.textContent = fixed(state.z[i]);
    }
  }

  function drawAll() {
    ui.draw(canvas, state);
    extra.update();
    caption.textContent = pieces.caption(state, ui);
    root.dataset.draws = String(Number(root.dataset.draws || 0) + 1);
  }

  // Tell the kernel (when there is one) where the controls are; a static page has none.
  let pushing = false;
  function push() {
    pushing = true;
    try {
      model.set("z", Array.from(state.z));
      model.set("label", state.label);
      model.set("codes", Array.from(state.codes));
      model.set("cluster", state.cluster);
      saveChanges(model);
    } finally {
      pushing = false;
    }
  }

  // traits set from Python (or by another view of the same model)
  const traits = ["z", "label", "codes", "cluster"];
  const onChange = () => {
    if (pushing) return;
    Object.assign(state, read());
    syncSliders();
    drawAll();
  };
  for (const t of traits) model.on(`change:${t}`, onChange);

  firstDraw(root, drawAll);
  return () => { for (const t of traits) model.off(`change:${t}`, onChange); };
}

export default { render };
