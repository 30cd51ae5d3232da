// Run the traversal explorer's JavaScript under node (used by tests/test_traversal_widget.py).
//
//   node tests/js/traversal_frames.mjs < {"esm": "<module source>", "panel": {...}, "n_values": n,
//                                          "pixels": p, "queries": [[row, index], ...]}
//
// Prints {"frames": [[grey levels], ...], "hasRender": bool}: what the canvases would be drawn from.
import { readFileSync } from "node:fs";

const { esm, panel, n_values: nValues, pixels, queries } = JSON.parse(readFileSync(0, "utf8"));
const mod = await import("data:text/javascript;base64," + Buffer.from(esm).toString("base64"));
const bytes = mod.decodeU8(panel.images);
const frames = queries.map(([row, index]) => Array.from(mod.frame(bytes, row, index, nValues, pixels)));
let outOfRange = null;
try {
  mod.frame(bytes, 0, nValues, nValues, pixels);
} catch (err) {
  outOfRange = err.message;
}
process.stdout.write(JSON.stringify({ frames, outOfRange, hasRender: typeof mod.default?.render === "function" }));
