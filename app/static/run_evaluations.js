/* The run page's evaluation section: list the run's evaluations (polling while any is active),
   fill the checkpoint choices, start an evaluation. */
import { TuneDeck } from "/static/app.js";
(function () {
  "use strict";
  var root = document.getElementById("run-evaluations");
  if (!root) return;
  var runId = root.getAttribute("data-run-id");
  var base = "/api/runs/" + runId;
  var select = document.getElementById("evaluate-checkpoint");
  var form = document.getElementById("evaluate-form");

  function td(tr, content) {
    var cell = document.createElement("td");
    if (content instanceof Node) cell.appendChild(content); else cell.textContent = content;
    tr.appendChild(cell);
  }

  function mainScore(e) {
    var res = e.results || {};
    var s = (res.scores || []).filter(function (x) { return x.name === res.primary; })[0];
    return s || null;
  }

  function render(list) {
    var body = root.querySelector("#evaluations-table tbody");
    body.textContent = "";
    list.forEach(function (e) {
      var tr = document.createElement("tr");
      var link = document.createElement("a");
      link.href = "/evaluations/" + e.id;
      link.textContent = "#" + e.id;
      td(tr, link);
      td(tr, e.checkpoint_step === null ? "base only" : "step " + e.checkpoint_step);
      td(tr, e.rows_label || (e.split === "eval" ? "eval split" : "dataset #" + e.dataset_id));
      var badge = document.createElement("span");
      TuneDeck.setBadge(badge, e.status);
      td(tr, badge);
      var s = mainScore(e);
      td(tr, s ? s.label + ": " + TuneDeck.number(s.base_mean) + " → " + TuneDeck.number(s.tuned_mean) :
        (e.status === "running" ? Math.round(e.progress * 100) + " %" : "—"));
      td(tr, s && s.summary ? s.summary : (e.error ? e.error.split("\n")[0] : "—"));
      body.appendChild(tr);
    });
    document.getElementById("evaluations-empty").hidden = list.length > 0;
  }

  function refresh() {
    return TuneDeck.api("GET", base + "/evaluations").then(function (r) {
      if (!r.ok) return true;
      render(r.data);
      var busy = r.data.some(function (e) { return e.status === "queued" || e.status === "running"; });
      // A run that is still training gets its automatic evaluation when it completes.
      var run = document.getElementById("run-detail");
      var training = run && ["queued", "running"].indexOf(run.getAttribute("data-status")) >= 0;
      if (!busy && !training) polling = false;
      return busy || training;
    });
  }

  var polling = false;
  function startPolling() {
    if (polling) return;
    polling = true;
    TuneDeck.poll(refresh, 2000);
  }

  TuneDeck.api("GET", base + "/checkpoints").then(function (r) {
    if (!r.ok) return;
    r.data.forEach(function (c) {
      var option = document.createElement("option");
      option.value = c.step;
      option.textContent = "step " + c.step + (c.is_best ? " (best)" : "");
      select.appendChild(option);
    });
  });

  var datasetSelect = document.getElementById("evaluate-dataset");
  function warnTrainingRows() {
    var chosen = datasetSelect.options[datasetSelect.selectedIndex];
    document.getElementById("evaluate-training-rows").hidden = !(chosen && chosen.hasAttribute("data-training"));
  }
  datasetSelect.addEventListener("change", warnTrainingRows);
  warnTrainingRows();

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var button = document.getElementById("evaluate-button");
    var body = { checkpoint: select.value === "best" ? "best" : Number(select.value) };
    if (form.dataset_id.value) body.dataset_id = Number(form.dataset_id.value);
    if (form.limit.value) body.limit = Number(form.limit.value);
    button.disabled = true;
    TuneDeck.showError(document.getElementById("evaluate-error"), "");
    TuneDeck.api("POST", base + "/evaluations", body).then(function (r) {
      button.disabled = false;
      if (!r.ok) { TuneDeck.showError(document.getElementById("evaluate-error"), r.error); return; }
      refresh();
      startPolling();
    });
  });

  refresh();
  startPolling();
})();
