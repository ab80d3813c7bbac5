/* GRPO run page: sampled completions with each reward function's score, refreshed every 3 s while
   the run is active (run_detail.js keeps data-status current), once more when it ends. Every
   user-visible string goes in with textContent. */
import { TuneDeck } from "/static/app.js";
(function () {
  "use strict";
  var root = document.getElementById("run-detail");
  var list = document.getElementById("samples");
  if (!root || !list) return;
  var base = "/api/runs/" + root.getAttribute("data-run-id");
  var template = document.getElementById("sample-template");
  var shown = null;

  function field(scope, name) { return scope.querySelector('[data-field="' + name + '"]'); }

  function rewardChip(name, value) {
    var chip = document.createElement("span");
    chip.className = "chip";
    chip.setAttribute("data-reward", name);
    chip.textContent = name + " " + (value === null || value === undefined ? "—" : TuneDeck.number(value));
    return chip;
  }

  function render(samples) {
    var key = samples.map(function (s) { return s.id; }).join(",");
    if (key === shown) return;  // nothing new: keep the reader's scroll and selection
    shown = key;
    list.textContent = "";
    samples.forEach(function (sample) {
      var item = template.content.firstElementChild.cloneNode(true);
      item.setAttribute("data-sample-id", sample.id);
      field(item, "step").textContent = sample.step;
      field(item, "prompt").textContent = sample.prompt;
      field(item, "completion").textContent = sample.completion || "(empty)";
      Object.keys(sample.rewards).forEach(function (name) {
        field(item, "rewards").appendChild(rewardChip(name, sample.rewards[name]));
      });
      var extra = Object.keys(sample.extra || {}).map(function (k) {
        var value = sample.extra[k];
        return k + ": " + (typeof value === "string" ? value : JSON.stringify(value));
      });
      field(item, "extra").textContent = extra.join(" · ");
      list.appendChild(item);
    });
    document.getElementById("samples-empty").hidden = samples.length > 0;
  }

  function refresh() {
    return TuneDeck.api("GET", base + "/samples?limit=24").then(function (result) {
      if (result.ok) render(result.data);
    });
  }

  function tick() {
    var terminal = TuneDeck.TERMINAL.indexOf(root.getAttribute("data-status")) >= 0;
    // Terminal: this is the final refresh; stop polling.
    return refresh().then(function () { return !terminal; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    refresh();
    if (TuneDeck.TERMINAL.indexOf(root.getAttribute("data-status")) < 0) TuneDeck.poll(tick, 3000);
  });
})();
