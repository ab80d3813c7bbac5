/* Run page: the notifications sent about this run (GET /api/runs/{id}/notifications), with the
   attempts and the last error of each; refreshed while the run is active or a send is pending. */
import { TuneDeck } from "/static/app.js";
(function () {
  "use strict";
  var root = document.getElementById("run-detail");
  var box = document.getElementById("run-notifications");
  if (!root || !box) return;
  var url = "/api/runs/" + root.getAttribute("data-run-id") + "/notifications";
  var STATUS_TEXT = { pending: "sending…", sent: "sent", failed: "failed" };
  var extraPolls = 6;  // rows appear a moment after the run ends (sent from the worker)

  function cell(row, text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function render(items) {
    var body = document.getElementById("run-notification-rows");
    body.textContent = "";
    items.forEach(function (item) {
      var row = document.createElement("tr");
      row.setAttribute("data-status", item.status);
      cell(row, item.event);
      cell(row, item.target, "mono small");
      cell(row, STATUS_TEXT[item.status] || item.status);
      cell(row, String(item.attempts), "num");
      cell(row, item.error || "", "small");
      body.appendChild(row);
    });
    var failed = items.filter(function (i) { return i.status === "failed"; }).length;
    var warning = document.getElementById("run-notifications-failed");
    warning.hidden = !failed;
    warning.textContent = failed ? failed + " notification" + (failed > 1 ? "s" : "") +
      " could not be sent: the reason is in the table." : "";
    box.hidden = !items.length;
    return items.some(function (i) { return i.status === "pending"; });
  }

  function refresh() {
    return TuneDeck.api("GET", url).then(function (result) {
      var pending = result.ok ? render(result.data) : false;
      var active = TuneDeck.TERMINAL.indexOf(root.getAttribute("data-status")) < 0;
      if (active || pending) return true;
      return extraPolls-- > 0;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    refresh().then(function (more) { if (more) TuneDeck.poll(refresh, 5000); });
  });
})();
