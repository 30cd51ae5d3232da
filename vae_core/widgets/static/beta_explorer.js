// β explorer: the front end of vae_core.widgets.BetaExplorer (chapter 9).
//
// Everything it shows was measured in Python and travels in the widget state: for each β of a sweep
// the rate R and distortion D (nats), reconstructions and latent traversals (one byte per pixel,
// base64). Moving the slider only picks another precomputed entry, so the page needs no kernel.
//
// Exports (pure, also run by the tests under node): unpackImages, elboLevels, formatBeta, readout;
// and the anywidget module `default { render }`.
import { styledEl, styledCanvas, saveChanges, firstDraw, unpackU8 } from "./common.js";

// ---------------------------------------------------------------- pure helpers

// base64 of unsigned bytes -> Float64Array of intensities byte / 255 (vae_core.widgets.frontend.pack_u8).
export function unpackImages(b64) {
  return Float64Array.from(unpackU8(b64), (v) => v / 255);
}

// n values of D + R (= -ELBO) for the iso-ELBO lines, evenly spaced from the best ELBO of the sweep.
export function elboLevels(rates, distortions, n = 5) {
  const s = rates.map((r, i) => r + distortions[i]);
  const lo = Math.min(...s), hi = Math.max(...s);
  if (n === 1 || hi === lo) return [lo];
  return Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
}

// β with 3 significant digits and no trailing zeros.
export function formatBeta(beta) {
  return String(Number(beta.toPrecision(3)));
}

export function readout(beta, rate, distortion) {
  return `β = ${formatBeta(beta)}: rate R = ${rate.toFixed(2)} nats, distortion D = ${distortion.toFixed(2)} nats, ` +
    `ELBO = −(D + R) = ${(-(rate + distortion)).toFixed(2)} nats`;
}

// ---------------------------------------------------------------- drawing

const COLORS = { curve: "#1f77b4", chosen: "#d62728", iso: "#999", text: "#222" };

// Draw n images (pixels: Float64Array, image k at offset k * H * W) in a grid of `cols` columns
// onto ctx at (x0, y0); ink: dark strokes on white.
function drawImages(ctx, pixels, n, cols, [H, W], scale, gap, x0, y0) {
  const img = ctx.createImageData(W * scale, H * scale);
  for (let k = 0; k < n; k++) {
    const off = k * H * W;
    for (let r = 0; r < H; r++) {
      for (let c = 0; c < W; c++) {
        const g = Math.round(255 * (1 - pixels[off + r * W + c]));
        for (let dy = 0; dy < scale; dy++) {
          for (let dx = 0; dx < scale; dx++) {
            const p = 4 * ((r * scale + dy) * W * scale + c * scale + dx);
            img.data[p] = g; img.data[p + 1] = g; img.data[p + 2] = g; img.data[p + 3] = 255;
          }
        }
      }
    }
    const col = k % cols, row = Math.floor(k / cols);
    ctx.putImageData(img, x0 + col * (W * scale + gap), y0 + row * (H * scale + gap));
  }
}

function render({ model, el: host }) {
  const betas = model.get("betas");
  const rates = model.get("rates");
  const dists = model.get("distortions");
  const [H, W] = model.get("image_shape");
  const n = model.get("n_images");
  const scale = model.get("scale");
  const values = model.get("traversal_values");
  const levels = model.get("levels");
  const K = betas.length;
  const originals = unpackImages(model.get("originals"));
  const recons = model.get("recons").map(unpackImages);
  const travs = model.get("traversals").map(unpackImages);
  const tdims = model.get("traversal_dims");
  const tkl = model.get("traversal_kl");
  let index = model.get("index");

  const root = styledEl("div", "font-family:system-ui,sans-serif;font-size:13px;color:#222;margin:6px 0");
  root.className = "vae-beta";
  const title = model.get("title");
  if (title) root.appendChild(styledEl("div", "font-weight:600;margin-bottom:4px", title));

  const row = styledEl("label", "display:flex;align-items:center;gap:8px;margin:4px 0");
  const input = document.createElement("input");
  Object.assign(input, { type: "range", min: "0", max: String(K - 1), step: "1", value: String(index) });
  input.className = "vae-beta-slider";
  input.style.width = "260px";
  input.setAttribute("aria-label", "β (index along the sweep)");
  const betaOut = styledEl("span", "min-width:5em;font-weight:600", "");
  betaOut.className = "vae-beta-value";
  row.append(styledEl("span", null, "β"), input, betaOut);
  const text = styledEl("div", "margin:2px 0 6px 0;font-variant-numeric:tabular-nums", "");
  text.className = "vae-beta-readout";

  // the R-D plane
  const PW = 380, PH = 280, M = { L: 52, R: 12, T: 12, B: 40 };
  const plot = styledCanvas("border:1px solid #ddd;cursor:pointer", PW, PH,
    "rate-distortion plane: distortion against rate for each β, lines of constant ELBO dashed");
  plot.className = "vae-beta-rd";
  const span = (a) => Math.max(...a) - Math.min(...a) || 1;
  const xr = [0, Math.max(...rates) + 0.08 * span(rates) + 0.5];
  const yr = [Math.min(...dists) - 0.08 * span(dists) - 0.5, Math.max(...dists) + 0.08 * span(dists) + 0.5];
  const X = (r) => M.L + ((r - xr[0]) / (xr[1] - xr[0])) * (PW - M.L - M.R);
  const Y = (d) => PH - M.B - ((d - yr[0]) / (yr[1] - yr[0])) * (PH - M.T - M.B);

  // the pictures: data and reconstructions, then the traversals
  const cell = W * scale, gap = 2, labelW = 118;
  const pics = styledCanvas("border:1px solid #ddd", labelW + n * (cell + gap), 2 * (H * scale + gap) + 4,
    "test images (top) and their reconstructions by the chosen β (bottom)");
  pics.className = "vae-beta-recon";
  const rowsT = tdims[0].length;
  const trav = styledCanvas("border:1px solid #ddd", labelW + values.length * (cell + gap),
    rowsT * (H * scale + gap) + 18, "latent traversals of the most informative dimensions for the chosen β");
  trav.className = "vae-beta-trav";

  const left = styledEl("div", null);
  left.append(row, text, plot);
  const right = styledEl("div", "display:flex;flex-direction:column;gap:6px");
  right.append(styledEl("div", "font-weight:600", "reconstructions"), pics,
    styledEl("div", "font-weight:600", "traversals (encoder mean of the first image, one coordinate swept)"), trav);
  const box = styledEl("div", "display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start");
  box.append(left, right);
  root.appendChild(box);
  host.appendChild(root);

  function drawPlot() {
    const ctx = plot.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, PW, PH);
    ctx.save();
    ctx.beginPath();
    ctx.rect(M.L, M.T, PW - M.L - M.R, PH - M.T - M.B);
    ctx.clip();
    ctx.strokeStyle = COLORS.iso;
    ctx.setLineDash([4, 4]);
    for (const c of levels) {            // D + R = c
      ctx.beginPath();
      ctx.moveTo(X(xr[0]), Y(c - xr[0]));
      ctx.lineTo(X(xr[1]), Y(c - xr[1]));
      ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.strokeStyle = COLORS.curve;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    rates.forEach((r, i) => (i ? ctx.lineTo(X(r), Y(dists[i])) : ctx.moveTo(X(r), Y(dists[i]))));
    ctx.stroke();
    ctx.lineWidth = 1;
    ctx.font = "10px sans-serif";
    rates.forEach((r, i) => {
      ctx.fillStyle = i === index ? COLORS.chosen : COLORS.curve;
      ctx.beginPath();
      ctx.arc(X(r), Y(dists[i]), i === index ? 6 : 3.5, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillStyle = COLORS.text;
      ctx.textAlign = "left";
      ctx.fillText(formatBeta(betas[i]), X(r) + 6, Y(dists[i]) - 5);
    });
    ctx.restore();
    ctx.strokeStyle = "#444";
    ctx.beginPath();
    ctx.moveTo(M.L, M.T); ctx.lineTo(M.L, PH - M.B); ctx.lineTo(PW - M.R, PH - M.B);
    ctx.stroke();
    ctx.fillStyle = COLORS.text;
    ctx.font = "11px sans-serif";
    ctx.textAlign = "center";
    for (let k = 0; k <= 4; k++) {
      const r = xr[0] + ((xr[1] - xr[0]) * k) / 4, d = yr[0] + ((yr[1] - yr[0]) * k) / 4;
      ctx.fillText(r.toFixed(0), X(r), PH - M.B + 13);
      ctx.textAlign = "right";
      ctx.fillText(d.toFixed(0), M.L - 4, Y(d) + 4);
      ctx.textAlign = "center";
    }
    ctx.fillText("rate R = KL (nats)", M.L + (PW - M.L - M.R) / 2, PH - 6);
    ctx.save();
    ctx.translate(12, M.T + (PH - M.T - M.B) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText("distortion D = −E log p(x|z) (nats)", 0, 0);
    ctx.restore();
    ctx.textAlign = "right";
    ctx.fillStyle = "#666";
    ctx.fillText("dashed: D + R = const (ELBO lines)", PW - M.R - 2, M.T + 12);
  }

  function drawPictures() {
    const c1 = pics.getContext("2d");
    c1.fillStyle = "#fff";
    c1.fillRect(0, 0, pics.width, pics.height);
    c1.fillStyle = COLORS.text;
    c1.font = "11px sans-serif";
    c1.textAlign = "left";
    c1.fillText("test images", 4, (H * scale) / 2 + 4);
    c1.fillText(`recon., β = ${formatBeta(betas[index])}`, 4, H * scale + gap + 4 + (H * scale) / 2 + 4);
    drawImages(c1, originals, n, n, [H, W], scale, gap, labelW, 0);
    drawImages(c1, recons[index], n, n, [H, W], scale, gap, labelW, H * scale + gap + 4);

    const c2 = trav.getContext("2d");
    c2.fillStyle = "#fff";
    c2.fillRect(0, 0, trav.width, trav.height);
    c2.fillStyle = COLORS.text;
    c2.font = "11px sans-serif";
    c2.textAlign = "left";
    tdims[index].forEach((j, r) => {
      c2.fillText(`z[${j}], KL ${tkl[index][r].toFixed(2)}`, 4, r * (H * scale + gap) + (H * scale) / 2 + 4);
    });
    drawImages(c2, travs[index], rowsT * values.length, values.length, [H, W], scale, gap, labelW, 0);
    c2.textAlign = "center";
    values.forEach((v, k) => c2.fillText(String(v), labelW + k * (cell + gap) + cell / 2, trav.height - 4));
  }

  function draw() {
    input.value = String(index);
    betaOut.textContent = formatBeta(betas[index]);
    text.textContent = readout(betas[index], rates[index], dists[index]);
    drawPlot();
    drawPictures();
    root.dataset.index = String(index);
  }

  function push() {
    model.set("index", index);
    saveChanges(model);
  }

  input.addEventListener("input", () => {
    index = parseInt(input.value, 10);
    draw();
  });
  input.addEventListener("change", push);
  plot.addEventListener("click", (ev) => {   // click near a point: choose that β
    const rect = plot.getBoundingClientRect();
    const px = ((ev.clientX - rect.left) / rect.width) * PW, py = ((ev.clientY - rect.top) / rect.height) * PH;
    let best = -1, bestD = 15 * 15;
    rates.forEach((r, i) => {
      const d2 = (X(r) - px) ** 2 + (Y(dists[i]) - py) ** 2;
      if (d2 < bestD) { bestD = d2; best = i; }
    });
    if (best >= 0) { index = best; draw(); push(); }
  });
  const onChange = () => {
    index = model.get("index");
    draw();
  };
  model.on("change:index", onChange);

  firstDraw(root, draw);
  return () => model.off("change:index", onChange);
}

export default { render };
