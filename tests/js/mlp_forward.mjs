// Run the latent explorer's JavaScript decoder under node (used by tests/test_widgets.py).
//
//   node tests/js/mlp_forward.mjs path/to/latent_explorer.js < {"spec": ..., "z": [[...], ...]}
//
// Prints {"raw": [[...]], "intensities": [[...]]}: the last-layer outputs and the pixel values
// the canvas would show. The module is imported from a data: URL, so it is treated as an ES
// module wherever the file lives.
import { readFileSync } from "node:fs";

const source = readFileSync(process.argv[2], "utf8");
const mod = await import("data:text/javascript;base64," + Buffer.from(source).toString("base64"));
const { spec, z, output = "sigmoid" } = JSON.parse(readFileSync(0, "utf8"));
const raw = z.map((code) => Array.from(mod.mlpForward(spec, code)));
const intensities = raw.map((r) => Array.from(mod.toIntensities(r, output)));
process.stdout.write(JSON.stringify({ raw, intensities, hasRender: typeof mod.default?.render === "function" }));
