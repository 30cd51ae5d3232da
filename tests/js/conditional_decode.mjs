// Run the conditional explorer's decoder under node (used by tests/test_conditional_widget.py).
//
//   node tests/js/conditional_decode.mjs path/to/esm.mjs < {"spec", "cases": [{"z", "label"}], "n_classes", "output"}
//
// The module is the widget's _esm as anywidget receives it (esm_source, sibling files inlined),
// written to a file by the test. Prints {"intensities": [[...]], "inputs": [[...]], "hasRender", "bad"}.
import { readFileSync } from "node:fs";

const source = readFileSync(process.argv[2], "utf8");
const mod = await import("data:text/javascript;base64," + Buffer.from(source).toString("base64"));
const { spec, cases, n_classes: nClasses, output = "sigmoid" } = JSON.parse(readFileSync(0, "utf8"));
const intensities = cases.map(({ z, label }) => Array.from(mod.decodeClass(spec, z, label, nClasses, output)));
const inputs = cases.map(({ z, label }) => Array.from(mod.conditionalInput(z, label, nClasses)));
let bad = null;
try {
  mod.conditionalInput([0, 0], nClasses, nClasses);
} catch (err) {
  bad = err.message;
}
process.stdout.write(JSON.stringify({ intensities, inputs, hasRender: typeof mod.default?.render === "function", bad }));
