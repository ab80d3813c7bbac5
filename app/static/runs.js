/* Runs page: poll GET /api/runs every 2 s and update the table in place (rows from the template). */
import { TuneDeck } from "/static/app.js";
(function () {
  "use strict";
  var tbody = document.querySelector("#runs-table tbody");
  var template = document.getElementById("run-row-template");
  if (!tbody || !template) return;
  var tableWrap = document.getElementById("runs-table-wrap");
  var empty = document.getElementById("runs-empty");
  var datasetNames = TuneDeck.readJson("dataset-names") || {};

  function field(row, name) { return row.querySelector('[data-field="' + name + '"]'); }

  /* Same markup as the best_metric macro in partials/macros.html. */
  function fillBest(cell, checkpoint) {
    cell.textContent = "";
    if (!checkpoint) {
      var none = document.createElement("span");
      none.className = "muted";
      none.textContent = "—";
      cell.appendChild(none);
      return;
    }
    var value = document.createElement("span");
    value.className = "best-value";
    value.textContent = TuneDeck.number(checkpoint.metric_value);
    var label = document.createElement("div");
    label.className = "muted small";
    label.title = checkpoint.metric_name || "";
    label.textContent = (checkpoint.metric_name ? TuneDeck.shortMetric(checkpoint.metric_name) + " · " : "") +
      "step " + checkpoint.step;
    cell.appendChild(value);
    cell.appendChild(label);
  }

  function update(row, run) {
    row.setAttribute("data-run-id", run.id);
    TuneDeck.setBadge(field(row, "status"), run.status);
    var name = field(row, "name");
    name.textContent = run.name;
    name.href = "/runs/" + run.id;
    field(row, "id").textContent = run.id;
    field(row, "strategy").textContent = run.strategy.toUpperCase();
    field(row, "base_model").textContent = run.base_model;
    var dataset = field(row, "dataset");
    dataset.textContent = datasetNames[run.dataset_id] || "dataset #" + run.dataset_id;
    dataset.href = "/datasets/" + run.dataset_id;
    TuneDeck.setProgress(field(row, "progress"), run);
    field(row, "progress_text").textContent = TuneDeck.progressText(run);
    fillBest(field(row, "best"), run.best_checkpoint);
    TuneDeck.setTime(field(row, "started_at"), run.started_at);
    TuneDeck.setTime(field(row, "finished_at"), run.finished_at);
  }

  function render(runs) {
    var existing = {};
    tbody.querySelectorAll("tr[data-run-id]").forEach(function (row) {
      existing[row.getAttribute("data-run-id")] = row;
    });
    runs.forEach(function (run, index) {
      var row = existing[run.id];
      delete existing[run.id];
      if (!row) row = template.content.firstElementChild.cloneNode(true);
      update(row, run);
      if (tbody.children[index] !== row) tbody.insertBefore(row, tbody.children[index] || null);
    });
    Object.keys(existing).forEach(function (id) { existing[id].remove(); });
    tableWrap.hidden = runs.length === 0;
    empty.hidden = runs.length !== 0;
  }

  function refreshDatasetNames(runs) {
    var unknown = runs.some(function (run) { return !(run.dataset_id in datasetNames); });
    if (!unknown) return Promise.resolve();
    return TuneDeck.api("GET", "/api/datasets").then(function (result) {
      if (!result.ok) return;
      result.data.forEach(function (d) { datasetNames[d.id] = d.name; });
      runs.forEach(function (run) {  // deleted datasets: ask once, not every poll
        if (!(run.dataset_id in datasetNames)) datasetNames[run.dataset_id] = "dataset #" + run.dataset_id;
      });
    });
  }

  TuneDeck.poll(function () {
    // The page's own query holds its filters (status, strategy, dataset_id), as /api/runs takes them.
    return TuneDeck.api("GET", "/api/runs" + window.location.search).then(function (result) {
      if (!result.ok) return;
      return refreshDatasetNames(result.data).then(function () { render(result.data); });
    });
  }, 2000);
})();
