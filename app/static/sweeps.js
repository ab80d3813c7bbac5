/* Sweep page: GET /api/sweeps/{id} (embedded at load, polled every 3 s) as a table of its runs
   sortable by any column (the target metric final, best and smoothed included), status counts,
   the best run, a plotly chart of the values tried against the metric, and the compare link for
   the top N runs. */
import { TuneDeck } from "/static/app.js";
import { CONFIG, baseLayout, colourAt } from "/static/charts.js";
(function () {
  "use strict";
  var data = TuneDeck.readJson("sweep-data");
  if (!data) return;
  var head = document.getElementById("sweep-head");
  var body = document.querySelector("#sweep-runs tbody");
  var chart = document.getElementById("sweep-chart");
  var view = document.getElementById("sweep-view");
  var errorBox = document.getElementById("sweep-action-error");
  var METRIC_COLUMNS = ["final", "best", "smoothed"];
  var sort = { key: "rank", descending: false };

  function columns() {
    var cols = [{ key: "rank", label: "Rank" }, { key: "name", label: "Run" },
                { key: "status", label: "Status" }];
    Object.keys(data.space).forEach(function (name) { cols.push({ key: "param:" + name, label: name }); });
    cols.push({ key: "final", label: data.metric + " (final)" },
              { key: "best", label: data.metric + " (best)" },
              { key: "smoothed", label: data.metric + " (smoothed)" });
    return cols;
  }

  function valueOf(run, key) {
    if (key.indexOf("param:") === 0) return run.params[key.slice(6)];
    return run[key];
  }

  function show(value) {
    if (value === null || value === undefined) return "—";
    return typeof value === "number" ? TuneDeck.number(value) : String(value);
  }

  function sortedRuns() {
    var runs = data.runs.slice();
    runs.sort(function (a, b) {
      var x = valueOf(a, sort.key), y = valueOf(b, sort.key);
      if (x === null || x === undefined) return 1;  // no value yet: last either way
      if (y === null || y === undefined) return -1;
      var order = x < y ? -1 : x > y ? 1 : 0;
      return sort.descending ? -order : order;
    });
    return runs;
  }

  function renderTable() {
    head.textContent = "";
    columns().forEach(function (col) {
      var th = document.createElement("th");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort-button";
      button.setAttribute("data-sort", col.key);
      button.textContent = col.label + (sort.key === col.key ? (sort.descending ? " ↓" : " ↑") : "");
      button.addEventListener("click", function () {
        // A metric column sorts best first on its first click; a second click reverses.
        var bestFirst = METRIC_COLUMNS.indexOf(col.key) >= 0 && data.direction === "max";
        sort = { key: col.key, descending: sort.key === col.key ? !sort.descending : bestFirst };
        renderTable();
      });
      th.appendChild(button);
      if (sort.key === col.key) th.setAttribute("aria-sort", sort.descending ? "descending" : "ascending");
      head.appendChild(th);
    });
    body.textContent = "";
    sortedRuns().forEach(function (run) {
      var row = document.createElement("tr");
      row.setAttribute("data-run-id", run.id);
      columns().forEach(function (col) {
        var td = document.createElement("td");
        if (col.key === "name") {
          var a = document.createElement("a");
          a.href = "/runs/" + run.id;
          a.textContent = run.name;
          td.appendChild(a);
        } else if (col.key === "status") {
          var badge = document.createElement("span");
          TuneDeck.setBadge(badge, run.status);
          td.appendChild(badge);
          if (run.error || run.prune_reason) td.title = run.error || run.prune_reason;
        } else {
          td.textContent = show(valueOf(run, col.key));
        }
        row.appendChild(td);
      });
      body.appendChild(row);
    });
    document.getElementById("sweep-empty").hidden = data.runs.length > 0;
  }

  function topRuns(n) {
    return data.runs.filter(function (r) { return r.rank; })
      .sort(function (a, b) { return a.rank - b.rank; }).slice(0, n);
  }

  function renderFacts() {
    var status = document.getElementById("sweep-status");
    TuneDeck.setBadge(status, data.status);
    var counts = Object.keys(data.counts).map(function (k) { return data.counts[k] + " " + k; });
    document.getElementById("sweep-counts").textContent =
      data.launched + " of " + data.total_runs + " launched" + (counts.length ? " · " + counts.join(", ") : "");
    var best = document.getElementById("sweep-best");
    best.textContent = "";
    if (data.best_run) {
      var a = document.createElement("a");
      a.href = "/runs/" + data.best_run.id;
      a.id = "sweep-best-link";
      a.textContent = data.best_run.name;
      best.appendChild(a);
      best.appendChild(document.createTextNode(" · " + data.metric + " " + show(data.best_run.best)));
    } else {
      best.textContent = "—";
    }
    var errorText = document.getElementById("sweep-error");
    errorText.hidden = !data.error;
    errorText.textContent = data.error || "";
    document.getElementById("sweep-pause").hidden = data.status !== "running";
    document.getElementById("sweep-resume").hidden = data.status !== "paused";
    document.getElementById("sweep-cancel").hidden = data.status !== "running" && data.status !== "paused";
    updateCompareLink();
  }

  function updateCompareLink() {
    var n = Math.max(2, Math.min(10, Number(document.getElementById("compare-top-n").value) || 2));
    var ids = topRuns(n).map(function (r) { return r.id; });
    var link = document.getElementById("compare-top");
    link.href = "/compare?runs=" + ids.join(",");
    link.classList.toggle("disabled", ids.length < 2);
    link.setAttribute("aria-disabled", ids.length < 2 ? "true" : "false");
  }

  function renderChart() {
    if (!window.Plotly) return;
    var scored = data.runs.filter(function (r) { return r.best !== null; });
    document.getElementById("sweep-chart-empty").hidden = scored.length > 0;
    if (!scored.length) { chart.textContent = ""; return; }
    var names = Object.keys(data.space);
    var numeric = names.filter(function (name) {
      return scored.every(function (r) { return typeof r.params[name] === "number"; });
    });
    if (view.value === "parcoords" && numeric.length) {
      var dims = numeric.map(function (name) {
        return { label: name, values: scored.map(function (r) { return r.params[name]; }) };
      });
      dims.push({ label: data.metric, values: scored.map(function (r) { return r.best; }) });
      window.Plotly.react(chart, [{ type: "parcoords", dimensions: dims,
        line: { color: scored.map(function (r) { return r.best; }), showscale: true,
                reversescale: data.direction === "min" } }],
        Object.assign(baseLayout({ showLegend: false }), { margin: { l: 60, r: 60, t: 40, b: 30 } }), CONFIG);
      return;
    }
    var traces = names.map(function (name, index) {
      return { type: "scatter", mode: "markers", name: name,
               x: scored.map(function (r) { return r.params[name]; }),
               y: scored.map(function (r) { return r.best; }),
               text: scored.map(function (r) { return r.name; }),
               marker: { size: 10, color: colourAt(index) },
               xaxis: index === 0 ? "x" : "x" + (index + 1) };
    });
    var layout = baseLayout({ xTitle: names[0] });
    layout.hovermode = "closest";
    layout.yaxis.title = { text: data.metric + " (best)" };
    layout.grid = { rows: 1, columns: names.length, pattern: "independent" };
    names.forEach(function (name, index) {
      if (index === 0) return;
      layout["xaxis" + (index + 1)] = { title: { text: name }, automargin: true };
    });
    window.Plotly.react(chart, traces, layout, CONFIG);
  }

  function render() { renderFacts(); renderTable(); renderChart(); }

  function act(path) {
    TuneDeck.api("POST", "/api/sweeps/" + data.id + "/" + path).then(function (result) {
      TuneDeck.showError(errorBox, result.ok ? "" : result.error);
      if (result.ok) { data = result.data; render(); }
    });
  }
  document.getElementById("sweep-pause").addEventListener("click", function () { act("pause"); });
  document.getElementById("sweep-resume").addEventListener("click", function () { act("resume"); });
  document.getElementById("sweep-cancel").addEventListener("click", function () { act("cancel"); });
  document.getElementById("compare-top-n").addEventListener("input", updateCompareLink);
  view.addEventListener("change", renderChart);
  window.addEventListener("load", renderChart);  // plotly is a deferred classic script

  render();
  TuneDeck.poll(function () {
    return TuneDeck.api("GET", "/api/sweeps/" + data.id).then(function (result) {
      if (result.ok) { data = result.data; render(); }
      return !(result.ok && TuneDeck.TERMINAL.indexOf(data.status) >= 0 &&
               data.runs.every(function (r) { return TuneDeck.TERMINAL.indexOf(r.status) >= 0; }));
    });
  }, 3000);
})();
