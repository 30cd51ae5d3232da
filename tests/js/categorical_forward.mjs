// Run the categorical explorer's JavaScript decoder under node (used by tests/test_categorical_explorer.py).
//
//   node tests/js/categorical_forward.mjs < {"esm": "<module source>", "spec": ..., "codes": [[...], ...], "K": K}
//
// The module source is the widget's _esm (widget_common.js already inlined by esm_source), imported
// from a data: URL. Prints {"raw": [[...]], "intensities": [[...]], "hasRender": bool}.
import { readFileSync } from "node:fs";

const { esm, spec, codes, K } = JSON.parse(readFileSync(0, "utf8"));
const mod = await import("data:text/javascript;base64," + Buffer.from(esm).toString("base64"));
const raw = codes.map((c) => Array.from(mod.decodeCode(spec, c, K)));
const intensities = raw.map((r) => Array.from(mod.toIntensities(r)));
let error = null;
try {
  mod.decodeCode(spec, codes[0].map(() => K), K);
} catch (err) {
  error = err.message;
}
process.stdout.write(JSON.stringify({ raw, intensities, hasRender: typeof mod.default?.render === "function", error }));
