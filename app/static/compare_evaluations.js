/* Compare page: the compared runs' evaluations side by side, one column per run, from
   GET /api/evaluations?run_ids=… (built with textContent only). Per run it shows the latest
   completed evaluation of each evaluation set (its eval split, or a dataset), newest first. */
import { TuneDeck } from "/static/app.js";
import { CompareViews } from "/static/compare_views.js";
export const CompareEvaluations = (function () {
  "use strict";
  var views = CompareViews;
  var el = views.el;

  function $(id) { return document.getElementById(id); }

  /* Completed evaluations of one run, the newest per evaluation set (the list is newest first). */
  function latestCompleted(list, runId) {
    var seen = {};
    return list.filter(function (e) {
      if (e.run_id !== runId || e.status !== "completed") return false;
      var key = e.split === "eval" ? "eval" : "dataset-" + e.dataset_id;
      if (seen[key]) return false;
      seen[key] = true;
      return true;
    });
  }

  function interval(score) {
    if (score.diff === null || score.diff === undefined) return "—";
    var sign = score.diff > 0 ? "+" : "";
    return sign + TuneDeck.number(score.diff) + " [" + TuneDeck.number(score.ci_low) + ", " +
      TuneDeck.number(score.ci_high) + "]";
  }

  function scoreTable(evaluation) {
    var table = el("table", null, "eval-scores");
    var head = el("tr");
    ["Score", "Base → tuned", "Tuned − base [95% CI]", "Verdict"].forEach(function (label, i) {
      head.appendChild(el("th", label, i === 1 || i === 2 ? "num" : ""));
    });
    table.appendChild(el("thead")).appendChild(head);
    var body = table.appendChild(el("tbody"));
    var primary = (evaluation.results || {}).primary;
    ((evaluation.results || {}).scores || []).forEach(function (score) {
      var row = el("tr", null, score.name === primary ? "primary" : "");
      row.setAttribute("data-score", score.name);
      row.appendChild(el("td", score.label || score.name));
      row.appendChild(el("td", TuneDeck.number(score.base_mean) + " → " +
                               TuneDeck.number(score.tuned_mean), "num"));
      row.appendChild(el("td", interval(score), "num"));
      row.appendChild(el("td", score.verdict || "—", "verdict verdict-" +
                               String(score.verdict || "none").replace(/ /g, "-")));
      body.appendChild(row);
    });
    return table;
  }

  function evaluationBlock(evaluation) {
    var block = el("div", null, "compare-evaluation");
    block.setAttribute("data-evaluation-id", evaluation.id);
    var link = el("a", "Evaluation #" + evaluation.id);
    link.href = "/evaluations/" + evaluation.id;
    var title = el("div", null, "compare-evaluation-title");
    title.appendChild(link);
    var where = evaluation.split === "eval" ? "eval split" : "dataset #" + evaluation.dataset_id;
    var step = evaluation.checkpoint_step === null ? "base only" : "step " + evaluation.checkpoint_step;
    title.appendChild(el("span", " · " + step + " · " + where + " · " +
                                 ((evaluation.results || {}).examples || 0) + " examples",
                         "muted small"));
    block.appendChild(title);
    block.appendChild(scoreTable(evaluation));
    return block;
  }

  function render(runs, list) {
    var box = $("evaluations");
    box.textContent = "";
    var columns = runs.map(function (run) { return latestCompleted(list, run.id); });
    var any = columns.some(function (c) { return c.length > 0; });
    $("evaluations-empty").hidden = any;
    if (!any) return;
    box.style.gridTemplateColumns = "repeat(" + runs.length + ", minmax(0, 1fr))";
    runs.forEach(function (run, i) {
      var cell = el("div", null, "sample-cell compare-evaluations-run");
      cell.setAttribute("data-run-id", run.id);
      cell.style.borderTop = "3px solid " + views.colour(run);
      cell.appendChild(el("div", run.name + " #" + run.id, "small muted"));
      columns[i].forEach(function (evaluation) { cell.appendChild(evaluationBlock(evaluation)); });
      if (!columns[i].length) cell.appendChild(el("div", "No completed evaluation", "muted small"));
      box.appendChild(cell);
    });
  }

  function refresh(runs) {
    var ids = runs.map(function (run) { return run.id; }).join(",");
    return TuneDeck.api("GET", "/api/evaluations?run_ids=" + encodeURIComponent(ids))
      .then(function (result) { if (result.ok) render(runs, result.data); });
  }

  return { refresh: refresh, latestCompleted: latestCompleted };
})();
