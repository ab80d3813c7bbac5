/* Evaluation page: a progress bar while queued/running (reloads when done), then the
   per-example review table with sort and filter. User text only ever goes in via textContent. */
import { TuneDeck } from "/static/app.js";
(function () {
  "use strict";
  var root = document.getElementById("evaluation");
  if (!root) return;
  var id = root.getAttribute("data-evaluation-id");
  var status = root.getAttribute("data-status");

  function field(name) { return root.querySelector('[data-field="' + name + '"]'); }

  if (status === "queued" || status === "running") {
    TuneDeck.poll(function () {
      return TuneDeck.api("GET", "/api/evaluations/" + id).then(function (r) {
        if (!r.ok) return true;
        var e = r.data;
        TuneDeck.setBadge(field("status"), e.status);
        var bar = field("progress");
        if (e.status === "running") { bar.max = 1; bar.value = e.progress; }
        field("progress_text").textContent = e.status === "queued" ? "waiting for a worker"
          : "scoring… " + Math.round(e.progress * 100) + " %";
        if (e.status === "completed" || e.status === "failed") { window.location.reload(); return false; }
        return true;
      });
    }, 1500);
    return;
  }

  var table = document.getElementById("examples-table");
  if (!table) return;
  var filter = document.getElementById("example-filter");
  var sort = document.getElementById("example-sort");

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    var div = document.createElement("div");
    div.className = "clip";
    div.textContent = text === null || text === undefined ? "—" : text;
    td.appendChild(div);
    tr.appendChild(td);
    return td;
  }

  function scores(example) {
    var names = Object.keys(example.base_scores || {});
    return names.map(function (n) {
      var t = example.tuned_scores ? example.tuned_scores[n] : undefined;
      return n + ": " + TuneDeck.number(example.base_scores[n]) +
        (t === undefined ? "" : " → " + TuneDeck.number(t));
    }).join("\n");
  }

  function load() {
    var url = "/api/evaluations/" + id + "/examples?filter=" + encodeURIComponent(filter.value) +
      "&sort=" + encodeURIComponent(sort.value);
    TuneDeck.api("GET", url).then(function (r) {
      if (!r.ok) return;
      var body = table.querySelector("tbody");
      body.textContent = "";
      r.data.examples.forEach(function (ex) {
        var tr = document.createElement("tr");
        tr.className = "outcome-" + ex.tuned_vs_base;
        tr.setAttribute("data-outcome", ex.tuned_vs_base);
        cell(tr, String(ex.index + 1), "num");
        cell(tr, ex.prompt);
        cell(tr, ex.reference);
        cell(tr, ex.base_output);
        cell(tr, ex.tuned_output);
        cell(tr, scores(ex), "scores");
        body.appendChild(tr);
      });
      document.getElementById("example-count").textContent = r.data.total;
      document.getElementById("examples-empty").hidden = r.data.total > 0;
    });
  }
  filter.addEventListener("change", load);
  sort.addEventListener("change", load);
  load();
})();
