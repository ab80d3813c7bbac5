/* Run page: health signals (GET /api/runs/{id}/health) as a warning list, refreshed every 10 s
   while the run is queued or running. */
import { TuneDeck } from "/static/app.js";
(function () {
  "use strict";
  var root = document.getElementById("run-detail");
  var box = document.getElementById("health-flags");
  if (!root || !box) return;
  var url = "/api/runs/" + root.getAttribute("data-run-id") + "/health";

  function render(flags) {
    var list = document.getElementById("health-flag-list");
    list.textContent = "";
    flags.forEach(function (flag) {
      var item = document.createElement("li");
      item.setAttribute("data-code", flag.code);
      var message = document.createElement("strong");
      message.textContent = flag.message;
      var explanation = document.createElement("div");
      explanation.className = "small";
      explanation.textContent = flag.explanation;
      item.appendChild(message);
      item.appendChild(explanation);
      list.appendChild(item);
    });
    box.hidden = !flags.length;
  }

  function refresh() {
    return TuneDeck.api("GET", url).then(function (result) {
      if (result.ok) render(result.data);
      return TuneDeck.TERMINAL.indexOf(root.getAttribute("data-status")) < 0;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    refresh().then(function (active) { if (active) TuneDeck.poll(refresh, 10000); });
  });
})();
