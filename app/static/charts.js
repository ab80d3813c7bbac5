/* The one chart module: the palette, which logged keys are not training curves, and the Plotly
   layout and config every chart starts from (the run page and the compare page alike). */

// One colour per line: a run's position in ?runs= on the compare page, a metric's on the run page.
export const PALETTE = ["#4f46e5", "#f97316", "#0ea5e9", "#16a34a", "#db2777", "#a16207",
                        "#7c3aed", "#0d9488", "#dc2626", "#64748b"];

// Bookkeeping values the trainer logs that are not training curves.
export const NOT_CURVES =
  /^(epoch|step|total_flos|num_tokens|num_input_tokens_seen|runtime|train_runtime|train_loss)$|_per_second$/;

export function isCurve(name) { return !NOT_CURVES.test(name.replace(/^eval_/, "")); }

export function colourAt(index) { return PALETTE[index % PALETTE.length]; }

export const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';

export const CONFIG = { displaylogo: false, responsive: true,
                        modeBarButtonsToRemove: ["lasso2d", "select2d", "autoScale2d"] };

const GRID = { gridcolor: "#eef2f7", zeroline: false, linecolor: "#cbd5e1", automargin: true };

/* A layout with the shared look; ``options`` sets the x title, y axis type, legend and the
   uirevision that keeps a user's zoom across redraws. */
export function baseLayout(options) {
  const o = options || {};
  return {
    margin: { l: 56, r: 16, t: o.showLegend === false ? 8 : 28, b: 40 },
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: FONT, size: 12, color: "#475569" },
    xaxis: Object.assign({ title: { text: o.xTitle || "step" } }, GRID, o.xaxis || {}),
    yaxis: Object.assign({ type: o.yType || "linear", exponentformat: "power" }, GRID,
                         o.yTitle ? { title: { text: o.yTitle } } : {}, o.yaxis || {}),
    showlegend: o.showLegend !== false,
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    hovermode: "x unified", uirevision: o.uirevision || "keep",
  };
}

// ---- Titles --------------------------------------------------------------------------------
// Logged names in words, with their unit where there is one (train and eval share a title).
const TITLES = {
  loss: "Loss", learning_rate: "Learning rate", grad_norm: "Gradient norm",
  kl: "KL divergence", entropy: "Entropy (nats)", step_time: "Step time (s)",
  reward: "Reward", "reward std": "Reward spread (std)", reward_std: "Reward spread (std)",
  "completion length": "Completion length (tokens)", "clip ratio": "Clip ratio",
  "completions/clipped_ratio": "Truncated completions (share)",
  "frac_reward_zero_std": "Groups with one reward (share)",
  mean_token_accuracy: "Token accuracy", num_tokens: "Tokens seen",
  "rewards/margins": "Reward margin (chosen − rejected)",
  "rewards/accuracies": "Preference accuracy (share)",
  "rewards/chosen vs rejected": "Reward: chosen vs rejected",
  "logps/chosen vs rejected": "Log-probability: chosen vs rejected",
  "logits/chosen vs rejected": "Logits: chosen vs rejected",
  "completions/mean_length": "Mean completion length (tokens)",
};

/* 'kl' → 'KL divergence', 'step_time' → 'Step time (s)', anything else in plain words. */
export function metricTitle(name) {
  const base = String(name).replace(/^eval_/, "");
  if (TITLES[base]) return TITLES[base];
  const fn = /^rewards\/([^/]+)\/(mean|std)$/.exec(base);
  if (fn) return "Reward " + fn[1] + (fn[2] === "std" ? " (std)" : "");
  const text = base.replace(/[_/]+/g, " ").trim();
  const words = text.charAt(0).toUpperCase() + text.slice(1);
  return /length$/.test(base) ? words + " (tokens)" : /_time$|runtime$/.test(base) ? words + " (s)" : words;
}

// ---- Smoothing -----------------------------------------------------------------------------
/* TensorBoard's debiased EMA (as app/services/compare/downsample.ema); non-finite values pass
   through; alpha 0 = raw. */
export function ema(values, alpha) {
  if (!alpha) return values.slice();
  let last = 0, count = 0;
  return values.map(function (v) {
    if (v === null || !isFinite(v)) return v;
    last = last * alpha + (1 - alpha) * v;
    count += 1;
    return last / (1 - Math.pow(alpha, count));
  });
}

// ---- Axes ----------------------------------------------------------------------------------
/* A step axis: whole steps only (Plotly would tick 0.2, 0.4… over the first few steps). */
export function stepAxis(traces) {
  let max = 0;
  (traces || []).forEach(function (t) { (t.x || []).forEach(function (x) { if (x > max) max = x; }); });
  const axis = { rangemode: "tozero", tickformat: "d", tick0: 0 };
  if (max <= 10) Object.assign(axis, { dtick: 1, range: [0, Math.max(1, max) + 0.5] });
  return axis;
}

/* When every drawn value is the same (one early point, a constant), a range around it, so the
   point sits where it is instead of at the middle of Plotly's −1…1 default; else null. */
export function flatRange(traces) {
  const ys = [];
  (traces || []).forEach(function (t) {
    if (t.visible === "legendonly" || t.visible === false) return;
    (t.y || []).forEach(function (y) { if (y !== null && isFinite(y)) ys.push(y); });
  });
  if (!ys.length || ys.some(function (y) { return y !== ys[0]; })) return null;
  const v = ys[0];
  if (v === 0) return [0, 1];
  const pad = Math.abs(v) * 0.5;
  return v > 0 ? [0, v + pad] : [v - pad, 0];
}

/* Dotted vertical lines at each step a run resumed from (resume_points: [{step, at}]). */
export function resumeMarks(points) {
  const shapes = [], annotations = [];
  (points || []).forEach(function (p) {
    shapes.push({ type: "line", xref: "x", yref: "paper", x0: p.step, x1: p.step, y0: 0, y1: 1,
                  line: { color: "#94a3b8", width: 1.5, dash: "dot" } });
    annotations.push({ xref: "x", yref: "paper", x: p.step, y: 1, yanchor: "bottom",
                       text: "resumed", showarrow: false, font: { size: 10, color: "#64748b" } });
  });
  return { shapes: shapes, annotations: annotations };
}

// ---- Legend --------------------------------------------------------------------------------
/* Long names lose their middle, not their end: runs of one sweep differ in the last part. */
export function shortName(name, max) {
  const limit = max || 40;
  const text = String(name);
  if (text.length <= limit) return text;
  const tail = Math.floor((limit - 1) / 2);
  return text.slice(0, limit - 1 - tail) + "…" + text.slice(text.length - tail);
}

/* The legend as HTML under the chart, never inside Plotly's drawing area (six long entries
   there left 40 px of plot). A click shows or hides that line; names too long are cut, the
   full name on hover. */
export function drawLegend(plot, traces) {
  let box = plot.nextElementSibling;
  if (!box || !box.classList.contains("chart-legend")) {
    box = document.createElement("ul");
    box.className = "chart-legend";
    plot.parentNode.insertBefore(box, plot.nextSibling);
  }
  box.textContent = "";
  box.hidden = traces.length < 2;
  traces.forEach(function (trace, i) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.title = trace.name;
    button.setAttribute("aria-pressed", trace.visible === "legendonly" ? "false" : "true");
    const swatch = document.createElement("span");
    swatch.className = "legend-swatch";
    swatch.style.background = trace.line.color;
    if (trace.line.dash === "dash") swatch.classList.add("dashed");
    const label = document.createElement("span");
    label.className = "legend-name";
    label.textContent = shortName(trace.name);
    button.appendChild(swatch);
    button.appendChild(label);
    button.addEventListener("click", function () {
      const hidden = button.getAttribute("aria-pressed") === "true";
      button.setAttribute("aria-pressed", hidden ? "false" : "true");
      if (typeof Plotly !== "undefined") Plotly.restyle(plot, { visible: hidden ? "legendonly" : true }, [i]);
    });
    item.appendChild(button);
    box.appendChild(item);
  });
  return box;
}
