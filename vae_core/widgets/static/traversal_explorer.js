// Traversal explorer: the front end of vae_core.widgets.TraversalExplorer.
//
// The pictures were computed in Python and travel in the widget state as 8-bit grey levels
// (base64), panel by panel: rows x steps x pixels. One slider picks the step; every row of every
// panel shows its picture at that step. Nothing runs in Python, so the page needs no kernel.
//
// Exports: `unpackU8` (from common.js) and `frame(bytes, row, index, nValues, pixels)` (pure,
// used by the tests under node), and the anywidget module `default { render }`.
import { styledEl, styledCanvas, saveChanges, firstDraw, paint, unpackU8 } from "./common.js";

// The grey levels (0..255, 255 = ink) of one row at one step.
export function frame(bytes, row, index, nValues, pixels) {
  const start = (row * nValues + index) * pixels;
  if (index < 0 || index >= nValues || start + pixels > bytes.length) {
    throw new Error(`no picture for row ${row}, step ${index} (${nValues} steps, ${bytes.length} bytes)`);
  }
  return bytes.subarray(start, start + pixels);
}

function render({ model, el: host }) {
  const panels = model.get("panels");
  const values = model.get("values");
  const [height, width] = model.get("image_shape");
  const scale = model.get("scale");
  const nValues = values.length;
  const pixels = height * width;
  const bytes = panels.map((p) => unpackU8(p.images));
  let index = model.get("index");

  const root = styledEl("div", "font-family: sans-serif; font-size: 13px; margin: 8px 0;");
  root.className = "vae-tr";
  const title = model.get("title");
  if (title) root.appendChild(styledEl("div", "font-weight: bold; margin-bottom: 6px;", title));

  const controls = styledEl("label", "display: flex; align-items: center; gap: 8px; margin-bottom: 8px;");
  const name = styledEl("span", "", "value of the traversed coordinate");
  const input = styledEl("input", "width: 260px;");
  input.className = "vae-tr-slider";
  Object.assign(input, { type: "range", min: "0", max: String(nValues - 1), step: "1" });
  input.value = String(index);
  const readout = styledEl("span", "font-family: monospace; min-width: 7em;");
  readout.className = "vae-tr-value";
  controls.append(name, input, readout);
  root.appendChild(controls);

  const grid = styledEl("div", "display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start;");
  const canvases = [];   // {panel, row, canvas}
  panels.forEach((p, k) => {
    const column = styledEl("div", "display: flex; flex-direction: column; gap: 2px;");
    column.appendChild(styledEl("div", "font-weight: bold; text-align: center; margin-bottom: 2px;", p.name));
    p.rows.forEach((label, r) => {
      const line = styledEl("div", "display: flex; align-items: center; gap: 4px;");
      line.appendChild(styledEl("span", "font-family: monospace; width: 3.5em; text-align: right;", label));
      const canvas = styledCanvas("border: 1px solid #ccc; image-rendering: pixelated;", width * scale,
                                  height * scale, `${p.name}, ${label}`);
      canvas.className = "vae-tr-canvas";
      line.appendChild(canvas);
      column.appendChild(line);
      canvases.push({ panel: k, row: r, canvas });
    });
    grid.appendChild(column);
  });
  root.appendChild(grid);
  host.appendChild(root);

  function draw() {
    for (const { panel, row, canvas } of canvases) {
      const grey = frame(bytes[panel], row, index, nValues, pixels);   // 255 = ink
      paint(canvas, Float64Array.from(grey, (g) => g / 255), width, height, true);
    }
    readout.textContent = `z_j = ${values[index].toFixed(2)}`;
    root.dataset.draws = String(Number(root.dataset.draws || 0) + 1);
  }

  input.addEventListener("input", () => {
    index = parseInt(input.value, 10);
    draw();
  });
  input.addEventListener("change", () => {
    model.set("index", index);
    saveChanges(model);
  });
  const onIndex = () => {
    const next = model.get("index");
    if (next !== index && next >= 0 && next < nValues) {
      index = next;
      input.value = String(index);
      draw();
    }
  };
  model.on("change:index", onIndex);

  firstDraw(root, draw);
  return () => model.off("change:index", onIndex);
}

export { unpackU8 };
export default { render };
