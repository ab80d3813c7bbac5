/* Compare page: the compared runs' evaluations as one table (rows = scores, columns = runs), from
   GET /api/evaluations?run_ids=… (built with textContent only). Per run it shows the latest
   completed evaluation of each evaluation set (its eval split, or a dataset). */
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
      var key = setKey(e);
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

  /* Which evaluation set an evaluation scored: its run's eval split, or a dataset. */
  function setKey(evaluation) {
    return evaluation.split === "eval" ? "eval" : "dataset-" + evaluation.dataset_id;
  }
  function setLabel(evaluation) {
    return evaluation.split === "eval" ? "eval split" : "dataset #" + evaluation.dataset_id;
  }

  /* Column header: the run (name cut, full name on hover) and a link to the evaluation(s). */
  function runHeader(run, evaluations) {
    var th = el("th", null, "eval-run");
    th.setAttribute("data-run-id", run.id);
    th.style.borderTop = "3px solid " + views.colour(run);
    th.appendChild(views.runName(run));
    if (!evaluations.length) th.appendChild(el("div", "No completed evaluation", "muted small"));
    evaluations.forEach(function (evaluation) {
      var line = el("div", null, "small eval-link");
      var link = el("a", "#" + evaluation.id);
      link.href = "/evaluations/" + evaluation.id;
      link.setAttribute("data-evaluation-id", evaluation.id);
      line.appendChild(link);
      var step = evaluation.checkpoint_step === null ? "base only" : "step " + evaluation.checkpoint_step;
      line.appendChild(el("span", " · " + step + " · " + ((evaluation.results || {}).examples || 0) +
                                  " ex.", "muted"));
      line.title = setLabel(evaluation);
      th.appendChild(line);
    });
    return th;
  }

  /* One score of one run: base → tuned, the difference with its interval, the verdict. */
  function scoreCell(run, score) {
    var td = el("td", null, "eval-score");
    td.setAttribute("data-run-id", run.id);
    if (!score) { td.appendChild(el("span", "—", "muted")); return td; }
    td.appendChild(el("div", TuneDeck.number(score.base_mean) + " → " +
                             TuneDeck.number(score.tuned_mean), "eval-means"));
    td.appendChild(el("div", interval(score), "eval-diff muted small"));
    td.appendChild(el("div", score.verdict || "—", "small verdict verdict-" +
                             String(score.verdict || "none").replace(/ /g, "-")));
    return td;
  }

  /* One table: rows are (evaluation set, score), columns are runs; the score column stays put
     while the runs scroll inside the card. */
  function render(runs, list) {
    var box = $("evaluations");
    box.textContent = "";
    var columns = runs.map(function (run) { return latestCompleted(list, run.id); });
    var any = columns.some(function (c) { return c.length > 0; });
    $("evaluations-empty").hidden = any;
    if (!any) return;
    var rows = [], byKey = {}, sets = {};
    columns.forEach(function (evaluations) {
      evaluations.forEach(function (evaluation) {
        sets[setKey(evaluation)] = setLabel(evaluation);
        var primary = (evaluation.results || {}).primary;
        ((evaluation.results || {}).scores || []).forEach(function (score) {
          var key = setKey(evaluation) + "|" + score.name;
          if (!byKey[key]) {
            byKey[key] = { key: key, set: setKey(evaluation), name: score.name,
                           label: score.label || score.name, primary: score.name === primary };
            rows.push(byKey[key]);
          }
        });
      });
    });
    var manySets = Object.keys(sets).length > 1;
    var table = el("table", null, "compare-table eval-table");
    table.id = "evaluations-table";
    var head = el("tr");
    head.appendChild(el("th", "Score"));
    runs.forEach(function (run, i) { head.appendChild(runHeader(run, columns[i])); });
    table.appendChild(el("thead")).appendChild(head);
    var body = table.appendChild(el("tbody"));
    rows.forEach(function (row) {
      var tr = el("tr", null, row.primary ? "primary" : "");
      tr.setAttribute("data-score", row.name);
      tr.setAttribute("data-set", row.set);
      var label = el("th", row.label);
      label.setAttribute("scope", "row");
      if (manySets) label.appendChild(el("div", sets[row.set], "muted small"));
      tr.appendChild(label);
      runs.forEach(function (run, i) {
        var evaluation = columns[i].find(function (e) { return setKey(e) === row.set; });
        var score = evaluation && ((evaluation.results || {}).scores || []).find(function (s) {
          return s.name === row.name;
        });
        tr.appendChild(scoreCell(run, score));
      });
      body.appendChild(tr);
    });
    var wrap = el("div", null, "table-wrap");
    wrap.appendChild(table);
    box.appendChild(wrap);
  }

  function refresh(runs) {
    var ids = runs.map(function (run) { return run.id; }).join(",");
    return TuneDeck.api("GET", "/api/evaluations?run_ids=" + encodeURIComponent(ids))
      .then(function (result) { if (result.ok) render(runs, result.data); });
  }

  return { refresh: refresh, latestCompleted: latestCompleted };
})();
