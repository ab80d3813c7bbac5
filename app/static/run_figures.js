/* Run page figures: training time (and wall time when a pause makes it longer), seconds per
   step, tokens per second, samples seen, from GET /api/runs/{id}/figures; refreshed every 5 s
   while the run is active (run_detail.js keeps data-status current), once more when it ends. */
import { TuneDeck } from "/static/app.js";
(function () {
  "use strict";
  var root = document.getElementById("run-detail");
  var box = document.getElementById("run-figures");
  if (!root || !box) return;
  var url = "/api/runs/" + root.getAttribute("data-run-id") + "/figures";

  function set(name, text, note) {
    var dd = box.querySelector('[data-figure="' + name + '"] dd');
    dd.textContent = text;
    if (note) {
      var small = document.createElement("small");
      small.textContent = " " + note;
      dd.appendChild(small);
    }
  }

  function perStep(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    return (seconds < 10 ? seconds.toFixed(2) : seconds.toFixed(1)) + " s";
  }

  function render(f) {
    var wall = f.wall_seconds !== null && f.wall_seconds > f.training_seconds + 60 ?
      "of " + TuneDeck.duration(f.wall_seconds) + " wall time" : "";
    set("training_seconds", f.training_seconds ? TuneDeck.duration(f.training_seconds) : "—", wall);
    set("seconds_per_step", perStep(f.seconds_per_step));
    set("tokens_per_second", f.tokens_per_second === null ? "—" :
        TuneDeck.number(Math.round(f.tokens_per_second)),
        f.tokens_seen === null ? "" : TuneDeck.number(f.tokens_seen) + " in all");
    set("samples_seen", f.samples_seen === null ? "—" : TuneDeck.number(f.samples_seen),
        f.samples_seen === null ? "" : f.samples_unit +
          (f.prompts_seen === null ? "" : " (" + TuneDeck.number(f.prompts_seen) + " prompts)"));
  }

  function refresh() {
    return TuneDeck.api("GET", url).then(function (result) { if (result.ok) render(result.data); });
  }

  function tick() {
    var terminal = TuneDeck.TERMINAL.indexOf(root.getAttribute("data-status")) >= 0;
    return refresh().then(function () { return !terminal; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    refresh();
    if (TuneDeck.TERMINAL.indexOf(root.getAttribute("data-status")) < 0) TuneDeck.poll(tick, 5000);
  });
})();
