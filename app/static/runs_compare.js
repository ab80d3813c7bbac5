/* Runs page: filters (status, strategy, dataset: a GET form, the table polls with the same query)
   and "Compare selected" for the ticked runs (→ /compare?runs=…, in the order ticked). */
(function () {
  "use strict";
  var table = document.getElementById("runs-table");
  var button = document.getElementById("compare-selected");
  if (!table || !button) return;
  var order = [];  // run ids in the order they were ticked: the compare page's colours

  function update() {
    var ticked = {};
    table.querySelectorAll("input.run-select:checked").forEach(function (box) {
      var row = box.closest("tr[data-run-id]");
      if (row) ticked[row.getAttribute("data-run-id")] = true;
    });
    order = order.filter(function (id) { return ticked[id]; });
    Object.keys(ticked).forEach(function (id) { if (order.indexOf(id) < 0) order.push(id); });
    button.disabled = order.length < 2;
    button.textContent = order.length ? "Compare selected (" + order.length + ")" : "Compare selected";
  }

  table.addEventListener("change", function (event) {
    if (event.target.classList.contains("run-select")) update();
  });
  button.addEventListener("click", function () {
    if (order.length >= 2) window.location.href = "/compare?runs=" + order.join(",");
  });

  var filters = document.getElementById("run-filters");
  if (filters) {
    // Empty choices stay out of the query: GET /api/runs refuses status= with no value. A new
    // filter starts again at the first page.
    function apply(event) {
      if (event) event.preventDefault();
      var params = new URLSearchParams();
      filters.querySelectorAll("select, input[name]").forEach(function (input) {
        if (input.value.trim()) params.set(input.name, input.value.trim());
      });
      var query = params.toString();
      window.location.search = query ? "?" + query : "";
    }
    filters.addEventListener("change", apply);
    filters.addEventListener("submit", apply);
  }
  // runs.js adds and removes rows as runs appear: keep the count and button right.
  new MutationObserver(update).observe(table.querySelector("tbody"), { childList: true });
  update();
})();
