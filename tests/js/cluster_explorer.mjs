// Run the cluster explorer's JavaScript under node (used by tests/test_cluster_widget.py).
//
//   node tests/js/cluster_explorer.mjs path/to/esm.js < {"spec", "means", "stds", "queries": [[c, s], ...], "output"}
//
// The module is the widget's _esm as vae_core.widgets.esm_source builds it (helpers inlined),
// imported from a data: URL. Prints {"z": [...], "raw": [...], "intensities": [...], "hasRender"}.
import { readFileSync } from "node:fs";

const source = readFileSync(process.argv[2], "utf8");
const mod = await import("data:text/javascript;base64," + Buffer.from(source).toString("base64"));
const { spec, means, stds, queries, output = "sigmoid" } = JSON.parse(readFileSync(0, "utf8"));
const z = queries.map(([c, s]) => mod.clusterCode(means, stds, c, s));
const raw = z.map((code) => Array.from(mod.decoderForward(spec, code)));
const intensities = raw.map((r) => Array.from(mod.toIntensities(r, output)));
process.stdout.write(JSON.stringify({ z, raw, intensities, hasRender: typeof mod.default?.render === "function" }));
