/* Compare page: one GET /api/compare feeds the summary, health, charts, config diff and samples.
   Charts are Plotly; each run keeps one colour on every chart (its position in ?runs=).
   While any run is queued or running the page polls and extends the curves in place. */
import { TuneDeck } from "/static/app.js";
import { baseLayout, CONFIG, drawLegend, ema, flatRange, isCurve, metricTitle, stepAxis } from "/static/charts.js";
import { CompareViews } from "/static/compare_views.js";
import { CompareEvaluations } from "/static/compare_evaluations.js";
(function () {
  "use strict";
  var root = document.getElementById("compare");
  if (!root) return;
  var runIds = root.getAttribute("data-run-ids");
  var views = CompareViews;
  var el = views.el, colour = views.colour;
  // The first two of these a run logged open as charts (and are all the first call reads).
  var DEFAULT_CHARTS = ["loss", "reward", "eval_loss", "eval_reward"];
  var state = { data: null, metrics: {}, charts: [] };
  var stopPolling = null;

  function $(id) { return document.getElementById(id); }
  function url(path, params) {
    var query = ["run_ids=" + encodeURIComponent(runIds)];
    Object.keys(params || {}).forEach(function (key) {
      if (params[key] !== null && params[key] !== undefined) {
        query.push(key + "=" + encodeURIComponent(params[key]));
      }
    });
    return path + "?" + query.join("&");
  }

  // ---- Data --------------------------------------------------------------------------------
  function fetchComparison(names) {
    // Health flags come from a second call: the curves should not wait for them.
    var params = { names: names.join(","), health: "false" };
    return TuneDeck.api("GET", url("/api/compare", params)).then(function (result) {
      if (!result.ok) { TuneDeck.showError($("load-error"), result.error); return null; }
      TuneDeck.showError($("load-error"), "");
      var data = result.data;
      Object.keys(data.metrics).forEach(function (runId) {
        state.metrics[runId] = state.metrics[runId] || {};
        Object.keys(data.metrics[runId]).forEach(function (name) {
          state.metrics[runId][name] = data.metrics[runId][name];
        });
      });
      state.data = data;
      return data;
    });
  }

  function chartedNames() {
    return state.charts.map(function (chart) { return chart.name; });
  }

  // ---- Smoothing and x-axes ----------------------------------------------------------------
  /* Linear interpolation in a [[step, x], ...] table sorted by step; null outside it. */
  function lookup(table, step) {
    if (!table || !table.length) return null;
    var lo = 0, hi = table.length - 1;
    if (step <= table[0][0]) return table[0][1];
    if (step >= table[hi][0]) return table[hi][1];
    while (hi - lo > 1) {
      var mid = (lo + hi) >> 1;
      if (table[mid][0] <= step) lo = mid; else hi = mid;
    }
    var a = table[lo], b = table[hi];
    return a[1] + (b[1] - a[1]) * (step - a[0]) / (b[0] - a[0]);
  }

  function xValues(runId, steps, axis) {
    if (axis === "step") return steps;
    var table = (state.data.x[runId] || {})[axis];
    if (!table || !table.length) return null;
    return steps.map(function (s) {
      var x = lookup(table, s);
      return axis === "elapsed" && x !== null ? x / 60 : x;
    });
  }

  // ---- Charts ------------------------------------------------------------------------------
  function layout(name, data) {
    var axis = $("x-axis").value;
    var xTitle = { step: "step", epoch: "epoch", elapsed: "elapsed (min)" }[axis];
    var log = $("log-scale").checked;
    var flat = log ? null : flatRange(data);
    return Object.assign(baseLayout({ xTitle: xTitle, uirevision: name + axis, showLegend: false,
                                      yTitle: metricTitle(name), yType: log ? "log" : "linear",
                                      xaxis: axis === "step" ? stepAxis(data) : {},
                                      yaxis: flat ? { range: flat } : {} }),
                         { height: 300, meta: name });
  }

  function traces(name) {
    var alpha = parseFloat($("smoothing").value) || 0;
    var axis = $("x-axis").value;
    var out = [];
    state.data.runs.forEach(function (run) {
      var points = (state.metrics[run.id] || {})[name];
      if (!points || !points.length) return;
      var steps = points.map(function (p) { return p[0]; });
      var x = xValues(String(run.id), steps, axis) || steps;
      var y = ema(points.map(function (p) { return p[1]; }), alpha);
      out.push({
        x: x, y: y, name: run.name + " #" + run.id, type: "scatter",
        mode: points.length < 30 ? "lines+markers" : "lines",
        line: { color: colour(run), width: 2 }, marker: { size: 5 },
        meta: { run_id: run.id }, customdata: steps,
        hovertemplate: "%{y:.4g} (step %{customdata})<extra>" + run.name + "</extra>",
      });
    });
    return out;
  }

  function draw(chart) {
    if (typeof Plotly === "undefined") {
      chart.plot.textContent = "Charts could not load (/static/vendor/plotly.min.js).";
      return;
    }
    var data = traces(chart.name);
    Plotly.react(chart.plot, data, layout(chart.name, data), CONFIG);
    drawLegend(chart.plot, data);
  }

  function drawAll() { state.charts.forEach(draw); }

  function fillMetricSelect(select, selected) {
    select.textContent = "";
    (state.data ? state.data.metric_names : []).forEach(function (name) {
      var option = el("option", name);
      option.value = name;
      option.selected = name === selected;
      select.appendChild(option);
    });
  }

  function ensureLoaded(name) {
    var missing = state.data.runs.some(function (run) {
      return run.metric_names.indexOf(name) >= 0 && !(state.metrics[run.id] || {})[name];
    });
    if (!missing) return Promise.resolve();
    return fetchComparison([name]).then(function () {});
  }

  function addChart(name) {
    var node = $("chart-template").content.firstElementChild.cloneNode(true);
    var chart = { name: name, node: node, plot: node.querySelector(".plot"),
                  select: node.querySelector(".chart-metric") };
    chart.plot.id = "chart-" + state.charts.length + "-" + Date.now();
    fillMetricSelect(chart.select, name);
    chart.select.addEventListener("change", function () {
      chart.name = chart.select.value;
      ensureLoaded(chart.name).then(function () { draw(chart); });
    });
    node.querySelector(".chart-remove").addEventListener("click", function () {
      if (typeof Plotly !== "undefined") Plotly.purge(chart.plot);
      node.remove();
      state.charts = state.charts.filter(function (c) { return c !== chart; });
    });
    state.charts.push(chart);
    $("charts").appendChild(node);
    return ensureLoaded(name).then(function () { draw(chart); });
  }

  // ---- Health and samples (tables: compare_views.js) ----------------------------------------
  function refreshHealth() {
    return TuneDeck.api("GET", url("/api/compare/health")).then(function (result) {
      if (result.ok) views.renderHealth(state.data.runs, result.data);
    });
  }

  $("sample-step").addEventListener("input", function () {
    var step = state.data.samples.steps[parseInt(this.value, 10)];
    $("sample-step-value").textContent = step;
    TuneDeck.api("GET", url("/api/compare/samples", { step: step })).then(function (result) {
      if (result.ok) {
        state.data.samples = result.data;
        views.renderSamples(result.data, state.data.runs);
      }
    });
  });

  // ---- Wiring ------------------------------------------------------------------------------
  function renderAll(data) {
    views.renderSummary(data);
    refreshHealth();
    views.renderDiff(data);
    views.renderSamples(data.samples, data.runs);
    CompareEvaluations.refresh(data.runs);
    fillMetricSelect($("add-metric"), $("add-metric").value);
    state.charts.forEach(function (chart) { fillMetricSelect(chart.select, chart.name); });
    var active = data.runs.filter(function (run) { return TuneDeck.TERMINAL.indexOf(run.status) < 0; });
    $("live-status").textContent = active.length ? "Live: " + active.length + " run(s) still training" : "";
    return active.length > 0;
  }

  $("smoothing").addEventListener("input", function () {
    $("smoothing-value").textContent = this.value;
    drawAll();
  });
  $("x-axis").addEventListener("change", drawAll);
  $("log-scale").addEventListener("change", drawAll);
  $("only-differences").addEventListener("change", views.applyOnlyDifferences);
  $("add-chart").addEventListener("click", function () {
    var name = $("add-metric").value;
    if (name) addChart(name);
  });

  function poll() {
    return fetchComparison(chartedNames()).then(function (data) {
      if (!data) return true;
      var live = renderAll(data);
      drawAll();
      return live;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    fetchComparison(DEFAULT_CHARTS).then(function (data) {
      if (!data) return;
      var live = renderAll(data);
      var first = DEFAULT_CHARTS.filter(function (n) { return data.metric_names.indexOf(n) >= 0; });
      if (!first.length) {
        first = data.metric_names.filter(isCurve).slice(0, 2);
      }
      first.slice(0, 2).forEach(addChart);
      if (live) stopPolling = TuneDeck.poll(poll, 3000);
    });
  });

  // For tests and the console: the loaded payload and the charts' Plotly divs.
})();
