/* Delete buttons on any page: <button data-delete-url="/api/runs/3" data-confirm="…"
   data-then="/runs">. A checkpoint row's button (data-delete-checkpoint) reads its step from the
   row, since the run page redraws those rows. The API's refusal (409: what uses it) is shown
   beside the button; on success the page goes to data-then, or the row disappears. */
import { TuneDeck } from "/static/app.js";

(function () {
  "use strict";

  function showError(button, message) {
    var box = button.parentElement.querySelector(".delete-error");
    if (!box) {
      box = document.createElement("span");
      box.className = "form-error delete-error";
      box.setAttribute("role", "alert");
      button.parentElement.appendChild(box);
    }
    box.textContent = message;
    box.hidden = false;
  }

  function target(button) {
    if (!button.hasAttribute("data-delete-checkpoint")) return button.getAttribute("data-delete-url");
    var row = button.closest("tr");
    var step = row && row.querySelector('[data-field="step"]');
    var root = document.getElementById("run-detail");
    if (!step || !root) return null;
    return "/api/runs/" + root.getAttribute("data-run-id") + "/checkpoints/" + step.textContent.trim();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-delete-url], [data-delete-checkpoint]");
    if (!button) return;
    var url = target(button);
    if (!url) return;
    var question = button.getAttribute("data-confirm") || "Delete it? This cannot be undone.";
    if (!window.confirm(question)) return;
    button.disabled = true;
    TuneDeck.api("DELETE", url).then(function (r) {
      button.disabled = false;
      if (!r.ok) { showError(button, r.error); return; }
      var then = button.getAttribute("data-then");
      if (then) { window.location.assign(then); return; }
      var row = button.closest("tr");
      if (row) row.remove();
    });
  });
})();
