/* GRPO run page: sampled completions with each reward function's score, in a collapsed section
   after the curves, PAGE_SIZE to a page (newest first); the count and the page shown refresh every
   3 s while the run is active (run_detail.js keeps data-status current), once more when it ends.
   Every user-visible string goes in with textContent. */
import { TuneDeck } from "/static/app.js";
(function () {
  "use strict";
  var root = document.getElementById("run-detail");
  var list = document.getElementById("samples");
  if (!root || !list) return;
  var base = "/api/runs/" + root.getAttribute("data-run-id");
  var template = document.getElementById("sample-template");
  var shown = null;
  var PAGE_SIZE = 6;
  var page = 0, total = 0;

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

  function renderPager() {
    var pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    document.getElementById("samples-count").textContent = total;
    document.getElementById("samples-pager").hidden = total <= PAGE_SIZE;
    document.getElementById("samples-page").textContent = "page " + (page + 1) + " of " + pages;
    document.getElementById("samples-newer").disabled = page === 0;
    document.getElementById("samples-older").disabled = page >= pages - 1;
  }

  function refresh() {
    var query = "/samples?limit=" + PAGE_SIZE + "&offset=" + page * PAGE_SIZE;
    return TuneDeck.api("GET", base + query).then(function (result) {
      if (!result.ok) return;
      total = Number(result.header("X-Total-Count")) || result.data.length;
      render(result.data);
      renderPager();
    });
  }

  function turn(delta) {
    page = Math.max(0, page + delta);
    refresh();
  }
  document.getElementById("samples-newer").addEventListener("click", function () { turn(-1); });
  document.getElementById("samples-older").addEventListener("click", function () { turn(1); });

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
