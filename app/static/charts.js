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
    yaxis: Object.assign({ type: o.yType || "linear", exponentformat: "power" }, GRID),
    showlegend: o.showLegend !== false,
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    hovermode: "x unified", uirevision: o.uirevision || "keep",
  };
}
