// Conditional explorer: the front end of vae_core.widgets.ConditionalExplorer.
//
// A class-conditional decoder p(x | z, y) runs here, in the browser, from the weights in the widget
// state (export_mlp of the decoder MLP whose input is [z, onehot(y)]). The class buttons choose y,
// the sliders move the style code z, and a strip draws the same z as every class. Nothing calls
// Python, so the explorer works in Jupyter, in Colab and on a static page alike.
//
// Exports: `conditionalInput`, `decodeClass` (pure, also run under node by the tests) and the
// anywidget module `default { render }`.
import { mlpForward, toIntensities, drawIntensities } from "./mlp_decoder.js";
import { el, saveChanges } from "./widget_common.js";

// [z, onehot(label)]: the decoder's input for style z and class `label` of nClasses.
export function conditionalInput(z, label, nClasses) {
  if (!Number.isInteger(label) || label < 0 || label >= nClasses) {
    throw new Error(`label must be an integer in 0..${nClasses - 1}, got ${label}`);
  }
  const v = new Float64Array(z.length + nClasses);
  v.set(z);
  v[z.length + label] = 1;
  return v;
}

// Pixel intensities in [0, 1] of the decoder's mean for style z and class label.
export function decodeClass(spec, z, label, nClasses, output) {
  return toIntensities(mlpForward(spec, conditionalInput(z, label, nClasses)), output);
}

function gaussian() {
  // Box-Muller: one N(0, 1) draw
  let u = 0;
  while (u === 0) u = Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

function canvasOf(className, width, height, scale, label) {
  const c = el("canvas", className);
  c.width = width * scale;
  c.height = height * scale;
  c.setAttribute("role", "img");
  c.setAttribute("aria-label", label);
  return c;
}

function render({ model, el: host }) {
  const spec = model.get("spec");
  const latentDim = model.get("latent_dim");
  const nClasses = model.get("n_classes");
  const names = model.get("class_names");
  const [height, width] = model.get("image_shape");
  const output = model.get("output");
  const dims = model.get("dims");
  const [lo, hi] = model.get("value_range");
  const initial = model.get("initial");
  const styles = model.get("styles");
  const scale = model.get("scale");
  const ink = model.get("colors") !== "grey";
  let z = Array.from(model.get("z").length === latentDim ? model.get("z") : initial);
  let label = model.get("label");

  const root = el("div", "vae-ce");
  const title = model.get("title");
  if (title) root.appendChild(el("div", "vae-ce-title", title));
  const body = el("div", "vae-ce-body");
  root.appendChild(body);

  // the chosen class, large
  const figure = el("div", "vae-ce-figure");
  const canvas = canvasOf("vae-ce-canvas", width, height, scale, "decoded image of the chosen class");
  const caption = el("div", "vae-ce-caption");
  figure.append(canvas, caption);
  body.appendChild(figure);

  // class buttons, style sliders, style buttons
  const controls = el("div", "vae-ce-controls");
  controls.appendChild(el("div", "vae-ce-heading", "class y"));
  const classRow = el("div", "vae-ce-classes");
  const classButtons = names.map((name, k) => {
    const b = el("button", "vae-ce-class", name);
    b.type = "button";
    b.dataset.label = String(k);
    b.addEventListener("click", () => {
      label = k;
      drawAll();
      push();
    });
    classRow.appendChild(b);
    return b;
  });
  controls.appendChild(classRow);
  controls.appendChild(el("div", "vae-ce-heading", "style z"));
  const sliders = new Map();
  for (const i of dims) {
    const row = el("label", "vae-ce-row");
    const name = el("span", "vae-ce-name", `z[${i}]`);
    const input = el("input", "vae-ce-slider");
    Object.assign(input, { type: "range", min: String(lo), max: String(hi), step: "0.01" });
    input.value = String(z[i]);
    const value = el("span", "vae-ce-value", z[i].toFixed(2));
    input.addEventListener("input", () => {
      z[i] = parseFloat(input.value);
      value.textContent = z[i].toFixed(2);
      drawAll();
    });
    input.addEventListener("change", () => push());
    row.append(name, input, value);
    controls.appendChild(row);
    sliders.set(i, { input, value });
  }
  const buttons = el("div", "vae-ce-buttons");
  const reset = el("button", "vae-ce-button vae-ce-reset", "reset");
  const random = el("button", "vae-ce-button vae-ce-random", "random style");
  reset.type = random.type = "button";
  reset.addEventListener("click", () => {
    z = Array.from(initial);
    label = model.get("initial_label");
    syncSliders();
    drawAll();
    push();
  });
  random.addEventListener("click", () => {
    for (const i of dims) z[i] = Math.min(hi, Math.max(lo, gaussian()));
    syncSliders();
    drawAll();
    push();
  });
  buttons.append(reset, random);
  styles.forEach((style, k) => {
    const b = el("button", "vae-ce-button vae-ce-style", style.name);
    b.type = "button";
    b.addEventListener("click", () => {
      z = Array.from(style.z);
      syncSliders();
      drawAll();
      push();
    });
    buttons.appendChild(b);
  });
  controls.appendChild(buttons);
  body.appendChild(controls);

  // the same style, every class
  root.appendChild(el("div", "vae-ce-heading", "the same style z decoded as every class (click one to choose it)"));
  const strip = el("div", "vae-ce-strip");
  const stripScale = Math.max(1, Math.round(56 / Math.max(width, height)));
  const thumbs = names.map((name, k) => {
    const c = canvasOf("vae-ce-thumb", width, height, stripScale, `class ${name}`);
    c.addEventListener("click", () => {
      label = k;
      drawAll();
      push();
    });
    strip.appendChild(c);
    return c;
  });
  root.appendChild(strip);
  host.appendChild(root);

  function syncSliders() {
    for (const [i, { input, value }] of sliders) {
      input.value = String(z[i]);
      value.textContent = z[i].toFixed(2);
    }
  }

  function drawAll() {
    for (let k = 0; k < nClasses; k++) {
      const pixels = decodeClass(spec, z, k, nClasses, output);
      drawIntensities(thumbs[k], pixels, width, height, ink);
      if (k === label) drawIntensities(canvas, pixels, width, height, ink);
      classButtons[k].setAttribute("aria-pressed", k === label ? "true" : "false");
      thumbs[k].classList.toggle("vae-ce-chosen", k === label);
    }
    const shown = dims.map((i) => z[i].toFixed(2)).join(", ");
    const rest = latentDim - dims.length;
    caption.textContent = `y = ${names[label]}, z = (${shown}${rest > 0 ? `; ${rest} more held fixed` : ""})`;
    root.dataset.draws = String(Number(root.dataset.draws || 0) + 1);
  }

  // Tell the kernel (when there is one) where the controls are; a static page has none.
  function push() {
    model.set("z", Array.from(z));
    model.set("label", label);
    saveChanges(model);
  }

  const onChange = () => {
    const next = model.get("z");
    const nextLabel = model.get("label");
    if (next.length === latentDim && (nextLabel !== label || next.some((v, k) => v !== z[k]))) {
      z = Array.from(next);
      label = nextLabel;
      syncSliders();
      drawAll();
    }
  };
  model.on("change:z", onChange);
  model.on("change:label", onChange);

  try {
    drawAll();
    root.dataset.ready = "1";
  } catch (err) {
    root.appendChild(el("div", "vae-ce-error", `Could not run the decoder: ${err.message}`));
    throw err;
  }
  return () => {
    model.off("change:z", onChange);
    model.off("change:label", onChange);
  };
}

export default { render };
