/* Tags and notes of a run or a sweep (templates/partials/annotations.html): saved with PATCH. */
import { TuneDeck } from "/static/app.js";
(function () {
  "use strict";
  var form = document.getElementById("annotations-form");
  if (!form) return;
  var status = document.getElementById("annotations-status");
  var errorBox = document.getElementById("annotations-error");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var tags = document.getElementById("annotation-tags").value.split(",")
      .map(function (t) { return t.trim(); }).filter(Boolean);
    var body = { tags: tags, notes: document.getElementById("annotation-notes").value };
    status.textContent = "Saving…";
    TuneDeck.api("PATCH", form.getAttribute("data-url"), body).then(function (result) {
      status.textContent = result.ok ? "Saved." : "";
      TuneDeck.showError(errorBox, result.ok ? "" : result.error);
    });
  });
})();
