// The one MLP runtime of the explorers: runs the spec made by vae_core.widgets.export_mlp.
//
// Declarations only (no imports, no side effects): a front end takes what it needs with
// `import { mlpForward, toIntensities } from "./mlp.js";`, which vae_core.widgets.esm_source
// inlines (see common.js for the rule). vae_core.widgets.export.mlp_forward_numpy is the same
// forward pass in numpy.

export const MLP_SPEC_FORMAT = "vae-core-mlp/1";

// 1 / (1 + exp(-x)) without overflow for large |x|
export function sigmoid(x) {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

const MLP_ACTIVATIONS = {
  identity: () => (x) => x,
  tanh: () => Math.tanh,
  relu: () => (x) => (x > 0 ? x : 0),
  sigmoid: () => sigmoid,
  leaky_relu: (layer) => (x) => (x >= 0 ? x : layer.negative_slope * x),
  softplus: (layer) => {
    // torch.nn.Softplus: log(1 + exp(beta x)) / beta, and x itself once beta x > threshold
    const beta = layer.beta, threshold = layer.threshold;
    return (x) => {
      const bx = beta * x;
      if (bx > threshold) return x;
      return (bx > 0 ? bx + Math.log1p(Math.exp(-bx)) : Math.log1p(Math.exp(bx))) / beta;
    };
  },
  elu: (layer) => (x) => (x > 0 ? x : layer.alpha * Math.expm1(x)),
};

// base64 of little-endian float32 values -> Float32Array (endianness made explicit)
export function decodeFloat32(b64, count) {
  const binary = atob(b64);
  if (binary.length !== 4 * count) throw new Error(`weight blob has ${binary.length} bytes, expected ${4 * count}`);
  const view = new DataView(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i++) view.setUint8(i, binary.charCodeAt(i));
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

// Decoding the weights is the slow part: once per spec object.
const MLP_PREPARED = new WeakMap();

export function prepareMlp(spec) {
  let prepared = MLP_PREPARED.get(spec);
  if (prepared) return prepared;
  if (!spec || spec.format !== MLP_SPEC_FORMAT) throw new Error(`expected a decoder spec of format ${MLP_SPEC_FORMAT}`);
  prepared = spec.layers.map((layer) => {
    if (layer.type === "linear") {
      return {
        type: "linear", nIn: layer.in, nOut: layer.out,
        weight: decodeFloat32(layer.weight, layer.in * layer.out),
        bias: layer.bias == null ? null : decodeFloat32(layer.bias, layer.out),
      };
    }
    const make = MLP_ACTIVATIONS[layer.name];
    if (!make) throw new Error(`unknown activation ${layer.name}`);
    return { type: "activation", fn: make(layer) };
  });
  MLP_PREPARED.set(spec, prepared);
  return prepared;
}

// The prepared layers from `start` on, applied to h.
function runLayers(layers, start, h) {
  for (const layer of layers.slice(start)) {
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

// The decoder on one input vector (length in_features): the raw last-layer output (logits or
// means), a Float64Array of length out_features.
export function mlpForward(spec, input) {
  if (input.length !== spec.in_features) throw new Error(`the input has ${input.length} values, the decoder takes ${spec.in_features}`);
  return runLayers(prepareMlp(spec), 0, Float64Array.from(input));
}

// The same for a one-hot input: N variables with K classes each, codes[n] the class of variable n.
// The first layer is then a table look-up, W onehot(c) + b = b + sum_n W[:, n K + c_n]: N column
// sums instead of a matrix product.
export function oneHotForward(spec, codes, K) {
  const layers = prepareMlp(spec);
  const first = layers[0];
  if (first.type !== "linear") throw new Error("the decoder must start with a Linear layer");
  if (codes.length * K !== first.nIn) {
    throw new Error(`${codes.length} variables x ${K} classes = ${codes.length * K} inputs, the decoder takes ${first.nIn}`);
  }
  const h = new Float64Array(first.nOut);
  for (let o = 0; o < first.nOut; o++) {
    let acc = first.bias ? first.bias[o] : 0;
    const row = o * first.nIn;
    for (let n = 0; n < codes.length; n++) {
      const c = codes[n];
      if (!(Number.isInteger(c) && c >= 0 && c < K)) throw new Error(`class ${c} of variable ${n} is not in 0..${K - 1}`);
      acc += first.weight[row + n * K + c];
    }
    h[o] = acc;
  }
  return runLayers(layers, 1, h);
}

// Last-layer output -> pixel intensities in [0, 1] ("sigmoid": logits; "identity": means, clamped).
export function toIntensities(raw, output) {
  const out = new Float64Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const v = output === "sigmoid" ? sigmoid(raw[i]) : raw[i];
    out[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return out;
}
