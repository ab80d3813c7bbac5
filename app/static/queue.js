/* Queue page: render GET /api/queues (embedded at load, then polled every 2 s) as one card per
   queue: running runs by worker and device, waiting runs in claim order with priority inputs and
   move up/down buttons, pause/resume. */
import { TuneDeck } from "/static/app.js";
(function () {
  "use strict";
  var box = document.getElementById("queues");
  var template = document.getElementById("queue-template");
  var errorBox = document.getElementById("queue-error");
  if (!box || !template) return;
  var editing = false;  // a priority input has focus: do not redraw under the cursor

  function part(root, name) { return root.querySelector('[data-part="' + name + '"]'); }
  function cell(row, content) {
    var td = document.createElement("td");
    if (content instanceof Node) td.appendChild(content); else td.textContent = content;
    row.appendChild(td);
    return td;
  }
  function runLink(run) {
    var a = document.createElement("a");
    a.href = "/runs/" + run.id;
    a.textContent = run.name + " #" + run.id;
    return a;
  }
  function button(label, title, onClick) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "btn btn-small";
    b.textContent = label;
    b.title = title;
    b.addEventListener("click", onClick);
    return b;
  }

  function act(method, url, body) {
    return TuneDeck.api(method, url, body).then(function (result) {
      TuneDeck.showError(errorBox, result.ok ? "" : result.error);
      return refresh();
    });
  }

  function queueCard(queue) {
    var card = template.content.firstElementChild.cloneNode(true);
    card.setAttribute("data-queue", queue.name);
    part(card, "name").textContent = queue.name;
    part(card, "paused").hidden = !queue.paused;
    part(card, "summary").textContent = queue.running.length + " running · " +
      queue.waiting.length + " waiting";
    var toggle = part(card, "toggle");
    toggle.textContent = queue.paused ? "Resume queue" : "Pause queue";
    toggle.title = queue.paused ? "Let workers take its waiting runs again"
      : "Workers stop taking its waiting runs; running ones go on";
    toggle.addEventListener("click", function () {
      act("POST", "/api/queues/" + encodeURIComponent(queue.name) + (queue.paused ? "/resume" : "/pause"));
    });
    part(card, "running-empty").hidden = queue.running.length > 0;
    part(card, "running-table").hidden = queue.running.length === 0;
    queue.running.forEach(function (run) {
      var row = document.createElement("tr");
      row.setAttribute("data-run-id", run.id);
      cell(row, runLink(run));
      cell(row, run.worker || "—");
      cell(row, run.device || "—");
      cell(row, run.max_steps ? run.step + " / " + run.max_steps : (run.phase || "starting"));
      part(card, "running").appendChild(row);
    });
    part(card, "waiting-empty").hidden = queue.waiting.length > 0;
    part(card, "waiting-table").hidden = queue.waiting.length === 0;
    queue.waiting.forEach(function (run, index) {
      var row = document.createElement("tr");
      row.setAttribute("data-run-id", run.id);
      cell(row, String(index + 1));
      cell(row, runLink(run));
      var input = document.createElement("input");
      input.type = "number";
      input.step = "1";
      input.min = "-1000";
      input.max = "1000";
      input.value = run.priority;
      input.className = "priority-input";
      input.setAttribute("aria-label", "Priority of run " + run.id);
      input.addEventListener("focus", function () { editing = true; });
      input.addEventListener("blur", function () { editing = false; });
      input.addEventListener("change", function () {
        editing = false;
        act("PUT", "/api/runs/" + run.id + "/priority", { priority: Number(input.value) });
      });
      cell(row, input);
      var moves = document.createElement("span");
      var up = button("↑", "Move up: swap with the run ahead", function () {
        act("POST", "/api/runs/" + run.id + "/move", { direction: "up" });
      });
      up.disabled = index === 0;
      up.setAttribute("aria-label", "Move run " + run.id + " up");
      var down = button("↓", "Move down: swap with the run behind", function () {
        act("POST", "/api/runs/" + run.id + "/move", { direction: "down" });
      });
      down.disabled = index === queue.waiting.length - 1;
      down.setAttribute("aria-label", "Move run " + run.id + " down");
      moves.appendChild(up);
      moves.appendChild(down);
      cell(row, moves).className = "nowrap";
      part(card, "waiting").appendChild(row);
    });
    return card;
  }

  function render(queues) {
    if (editing) return;
    box.textContent = "";
    queues.forEach(function (queue) { box.appendChild(queueCard(queue)); });
  }

  function refresh() {
    return TuneDeck.api("GET", "/api/queues").then(function (result) {
      if (result.ok) render(result.data);
    });
  }

  render(TuneDeck.readJson("queues-data") || []);
  TuneDeck.poll(refresh, 2000);
})();
