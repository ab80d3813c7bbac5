/* Runs page: poll GET /api/runs/changes every 2 s with the page's filters and the last cursor, and
   update the table in place: changed runs are redrawn (rows from the template), rows that left the
   page are dropped, and the rows follow the page's order. */
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

  var cursor = tableWrap.getAttribute("data-cursor");
  // The filters as the server understood them (an unknown value in the address shows every run).
  var pageQuery = new URLSearchParams(tableWrap.getAttribute("data-query") || "");
  pageQuery.set("limit", tableWrap.getAttribute("data-limit") || "50");
  pageQuery.set("offset", tableWrap.getAttribute("data-offset") || "0");
  var count = document.getElementById("runs-count");
  var pager = document.getElementById("runs-pager");

  /* Returns false when the page holds a run it was not sent (it moved onto this page): the next
     poll then asks for the whole page. */
  function render(changes) {
    var existing = {};
    tbody.querySelectorAll("tr[data-run-id]").forEach(function (row) {
      existing[row.getAttribute("data-run-id")] = row;
    });
    changes.runs.forEach(function (run) {
      var row = existing[run.id];
      if (!row) existing[run.id] = row = template.content.firstElementChild.cloneNode(true);
      update(row, run);
    });
    var complete = true;
    var onPage = {};
    changes.page_ids.forEach(function (id, index) {
      onPage[id] = true;
      var row = existing[id];
      if (!row) { complete = false; return; }
      if (tbody.children[index] !== row) tbody.insertBefore(row, tbody.children[index] || null);
    });
    Object.keys(existing).forEach(function (id) { if (!onPage[id]) existing[id].remove(); });
    var shown = tbody.children.length;
    tableWrap.hidden = shown === 0;
    empty.hidden = shown !== 0;
    if (pager) pager.hidden = shown === 0;
    if (count && shown) {
      var first = Number(pageQuery.get("offset")) + 1;
      count.textContent = first + "–" + (first + shown - 1) + " of " + changes.total;
    }
    return complete;
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
    var query = new URLSearchParams(pageQuery);
    if (cursor) query.set("since", cursor);
    return TuneDeck.api("GET", "/api/runs/changes?" + query.toString()).then(function (result) {
      if (!result.ok) return;
      return refreshDatasetNames(result.data.runs).then(function () {
        cursor = render(result.data) ? result.data.cursor : null;
      });
    });
  }, 2000);
})();
