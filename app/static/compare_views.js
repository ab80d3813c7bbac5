/* Compare page views: the summary, health, config diff and samples tables, built from the
   /api/compare payload with textContent only. compare.js owns the data, charts and polling. */
import { TuneDeck } from "/static/app.js";
import { colourAt } from "/static/charts.js";
export const CompareViews = (function () {
  "use strict";
  // One colour per run (its position in ?runs=), the same on every chart and table.

  function $(id) { return document.getElementById(id); }
  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }
  function colour(run) { return colourAt(run.colour); }

  // ---- Tables ------------------------------------------------------------------------------
  function swatch(run) {
    var dot = el("span", null, "run-swatch");
    dot.style.background = colour(run);
    return dot;
  }

  /* A run's name on one line, cut with an ellipsis when long; the full name on hover. */
  function runName(run, href) {
    var name = el(href ? "a" : "span", run.name, "run-name");
    name.title = run.name;
    if (href) name.href = href;
    return name;
  }

  function runLink(run) {
    var cell = el("th");
    cell.setAttribute("scope", "row");
    cell.appendChild(swatch(run));
    cell.appendChild(runName(run, run.url));
    cell.appendChild(el("div", "#" + run.id + " · " + run.strategy.toUpperCase(), "muted small"));
    return cell;
  }

  function renderSummary(data) {
    var keys = [];
    data.runs.forEach(function (run) {
      Object.keys(run.summary).forEach(function (k) { if (keys.indexOf(k) < 0) keys.push(k); });
    });
    var head = el("tr");
    ["Run", "Status", "Steps", "Duration"].concat(keys.map(function (k) { return k + " (final / best)"; }))
      .concat(["Best checkpoint"]).forEach(function (label, i) {
        head.appendChild(el("th", label, i >= 2 ? "num" : ""));
      });
    var thead = document.querySelector("#summary-table thead");
    thead.textContent = "";
    thead.appendChild(head);
    var tbody = document.querySelector("#summary-table tbody");
    tbody.textContent = "";
    data.runs.forEach(function (run) {
      var row = el("tr");
      row.setAttribute("data-run-id", run.id);
      row.appendChild(runLink(run));
      var status = el("td");
      var badge = el("span");
      TuneDeck.setBadge(badge, run.status);
      status.appendChild(badge);
      row.appendChild(status);
      row.appendChild(el("td", run.max_steps ? run.step + " / " + run.max_steps : String(run.step), "num"));
      row.appendChild(el("td", TuneDeck.duration(run.duration_seconds) || "—", "num"));
      keys.forEach(function (k) {
        var s = run.summary[k];
        var cell = el("td", s ? TuneDeck.number(s.final[1]) + " / " + TuneDeck.number(s.best[1]) : "—",
                      "num");
        if (s) cell.title = "best at step " + s.best[0] + ", final at step " + s.final[0];
        row.appendChild(cell);
      });
      var best = el("td", null, "num");
      if (run.best_checkpoint) {
        var link = el("a", "step " + run.best_checkpoint.step, "btn btn-small");
        link.href = run.best_checkpoint.download_url;
        link.setAttribute("download", "");
        link.title = (run.best_checkpoint.metric_name || "") + " " +
          TuneDeck.number(run.best_checkpoint.metric_value);
        best.appendChild(link);
      } else {
        best.textContent = "—";
      }
      row.appendChild(best);
      tbody.appendChild(row);
    });
  }

  function renderHealth(runs, health) {
    var list = $("health-list");
    list.textContent = "";
    runs.forEach(function (run) {
      (health[run.id] || []).forEach(function (flag) {
        var item = el("li");
        item.setAttribute("data-code", flag.code);
        item.appendChild(swatch(run));
        item.appendChild(el("strong", run.name + ": "));
        item.appendChild(el("span", flag.message, "flag-" + flag.severity));
        item.appendChild(el("div", flag.explanation, "muted small"));
        list.appendChild(item);
      });
    });
    $("health-card").hidden = !list.children.length;
  }

  function renderDiff(data) {
    var head = el("tr");
    head.appendChild(el("th", "Setting"));
    data.runs.forEach(function (run) {
      var th = el("th");
      th.setAttribute("data-run-id", run.id);
      th.appendChild(swatch(run));
      th.appendChild(runName(run));
      head.appendChild(th);
    });
    var thead = document.querySelector("#diff-table thead");
    thead.textContent = "";
    thead.appendChild(head);
    var tbody = document.querySelector("#diff-table tbody");
    tbody.textContent = "";
    data.config_diff.rows.forEach(function (row) {
      var tr = el("tr", null, row.differs ? "differs" : "same");
      var key = el("th", row.key, "mono");
      key.setAttribute("scope", "row");
      tr.appendChild(key);
      data.runs.forEach(function (run) {
        var value = row.values[run.id];
        tr.appendChild(el("td", value === null || value === undefined ? "—" :
          (typeof value === "object" ? JSON.stringify(value) :
           // 0.00030000000000000003 → 0.0003: float noise, never a real difference
           typeof value === "number" ? String(Number(value.toPrecision(12))) : String(value))));
      });
      tbody.appendChild(tr);
    });
    applyOnlyDifferences();
  }

  function applyOnlyDifferences() {
    var only = $("only-differences").checked;
    var shown = 0;
    document.querySelectorAll("#diff-table tbody tr").forEach(function (tr) {
      tr.hidden = only && !tr.classList.contains("differs");
      if (!tr.hidden) shown += 1;
    });
    $("diff-empty").hidden = shown > 0;
  }

  // ---- Samples -----------------------------------------------------------------------------
  function renderSamples(samples, allRuns) {
    var card = $("samples-card");
    card.hidden = !samples.steps.length;
    if (!samples.steps.length) return;
    var slider = $("sample-step");
    slider.max = samples.steps.length - 1;
    slider.value = Math.max(0, samples.steps.indexOf(samples.step));
    $("sample-step-value").textContent = samples.step;
    var runs = allRuns.filter(function (run) { return samples.shown[run.id] !== null && samples.shown[run.id] !== undefined; });
    $("samples-note").textContent = "Nearest sampled step per run: " + runs.map(function (run) {
      return run.name + " → " + samples.shown[run.id];
    }).join(", ");
    var box = $("samples");
    box.textContent = "";
    samples.prompts.slice(0, 10).forEach(function (group) {
      box.appendChild(el("div", group.prompt, "sample-prompt"));
      var grid = el("div", null, "samples-grid");
      grid.style.gridTemplateColumns = "repeat(" + runs.length + ", minmax(200px, 1fr))";
      runs.forEach(function (run) {
        var cell = el("div", null, "sample-cell");
        cell.style.borderTop = "3px solid " + colour(run);
        cell.appendChild(runName(run));
        (group.runs[run.id] || []).forEach(function (entry) {
          cell.appendChild(el("pre", entry.completion));
          var rewards = Object.keys(entry.rewards || {}).map(function (k) {
            return k + " " + TuneDeck.number(entry.rewards[k]);
          }).join(" · ");
          if (rewards) cell.appendChild(el("div", rewards, "small muted"));
        });
        if (!(group.runs[run.id] || []).length) cell.appendChild(el("div", "not sampled", "muted small"));
        grid.appendChild(cell);
      });
      var wrap = el("div", null, "samples-wrap");
      wrap.appendChild(grid);
      box.appendChild(wrap);
    });
  }

  return {
    el: el, colour: colour, runName: runName, renderSummary: renderSummary, renderHealth: renderHealth,
    renderDiff: renderDiff, applyOnlyDifferences: applyOnlyDifferences,
    renderSamples: renderSamples,
  };
})();
