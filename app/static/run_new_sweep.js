/* New run form, "Sweep" switch: rows of fields to vary (comma-separated values, or a range
   "low .. high" with an optional log scale, random and optuna only), the sweep's settings (an
   optuna sweep's pruner), and how many runs it will make (the budget, for random and optuna). run_new.js asks Sweep.active() and Sweep.collect(body) at submit and posts the
   sweep to POST /api/sweeps instead of one run. */
import { TuneDeck } from "/static/app.js";
export const Sweep = (function () {
  "use strict";
  var toggle = document.getElementById("sweep-switch");
  if (!toggle) return null;
  var form = toggle.closest("form");
  var panel = document.getElementById("sweep-body");
  var rows = document.getElementById("sweep-rows");
  var template = document.getElementById("sweep-row-template");
  var kind = document.getElementById("sweep-kind");
  var budget = document.getElementById("sweep-budget");
  var pruner = document.getElementById("sweep-pruner");
  var metric = document.getElementById("sweep-metric");
  var direction = document.getElementById("sweep-direction");
  var count = document.getElementById("sweep-count");
  var submit = document.getElementById("run-submit");
  var metrics = TuneDeck.readJson("sweep-metrics") || {};
  var RANGE = /^\s*(-?[\d.eE+-]+)\s*\.\.\s*(-?[\d.eE+-]+)\s*$/;

  function strategy() {
    var checked = form.querySelector('input[name="strategy"]:checked');
    return checked ? checked.value : "sft";
  }
  function part(row, name) { return row.querySelector('[data-sweep="' + name + '"]'); }
  function section() {
    return form.querySelector('.strategy-section[data-strategy="' + strategy() + '"]');
  }
  function fieldNames() {
    var names = [];
    section().querySelectorAll("[data-hp]").forEach(function (input) {
      if (names.indexOf(input.name) < 0) names.push(input.name);
    });
    if (strategy() === "grpo") {
      form.querySelectorAll('[data-reward="name"]').forEach(function (select) {
        names.push("reward:" + select.value);
      });
    }
    return names;
  }

  function fillFields(select) {
    var current = select.value;
    select.textContent = "";
    fieldNames().forEach(function (name) {
      var option = document.createElement("option");
      option.value = name;
      option.textContent = name.indexOf("reward:") === 0 ? "weight of " + name.slice(7) : name;
      select.appendChild(option);
    });
    if (current && fieldNames().indexOf(current) >= 0) select.value = current;
  }

  function fillMetrics() {
    var current = metric.value;
    metric.textContent = "";
    (metrics[strategy()] || []).forEach(function (name) {
      var option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      metric.appendChild(option);
    });
    if (current && (metrics[strategy()] || []).indexOf(current) >= 0) metric.value = current;
    direction.value = /reward|margin|accurac/.test(metric.value) ? "max" : "min";
  }

  function addRow(field, values) {
    var row = template.content.firstElementChild.cloneNode(true);
    fillFields(part(row, "field"));
    if (field) part(row, "field").value = field;
    if (values) part(row, "values").value = values;
    part(row, "remove").addEventListener("click", function () { row.remove(); update(); });
    rows.appendChild(row);
    update();
    return row;
  }

  function number(text) {
    var value = Number(text.trim());
    return text.trim() !== "" && isFinite(value) ? value : text.trim();
  }

  /* The space the rows describe, and what is wrong with it ("space.<field>: …"). */
  function space() {
    var result = {}, problems = [];
    rows.querySelectorAll(".sweep-row").forEach(function (row) {
      var field = part(row, "field").value;
      var text = part(row, "values").value;
      var range = RANGE.exec(text);
      if (range) {
        result[field] = { low: Number(range[1]), high: Number(range[2]),
                          scale: part(row, "log").checked ? "log" : "linear" };
        if (kind.value === "grid") problems.push("space." + field + ": a grid needs a list of values; ranges are for random and optuna sweeps");
      } else {
        var values = text.split(",").map(function (v) { return v.trim(); }).filter(Boolean).map(number);
        if (!values.length) problems.push("space." + field + ": enter values, e.g. 1e-4, 3e-4");
        result[field] = values;
      }
    });
    if (!Object.keys(result).length) problems.push("space: vary at least one field");
    return { space: result, problems: problems };
  }

  function drawn() { return kind.value === "random" || kind.value === "optuna"; }

  function runs() {
    if (drawn()) return Number(budget.value) || 0;
    var described = space().space;
    return Object.keys(described).reduce(function (total, name) {
      return total * (Array.isArray(described[name]) ? described[name].length : 0);
    }, 1);
  }

  function update() {
    panel.hidden = !toggle.checked;
    document.getElementById("sweep-budget-box").hidden = !drawn();
    document.getElementById("sweep-pruner-box").hidden = kind.value !== "optuna";
    var n = toggle.checked && rows.children.length ? runs() : 0;
    count.textContent = toggle.checked
      ? (n ? "This sweep will make " + n + " run" + (n === 1 ? "" : "s") + "." : "Vary at least one field to see how many runs it makes.")
      : "";
    submit.textContent = toggle.checked ? "Launch sweep" + (n ? " (" + n + " runs)" : "") : "Launch run";
  }

  toggle.addEventListener("change", function () {
    if (toggle.checked && !rows.children.length) addRow("learning_rate", "1e-4, 3e-4");
    fillMetrics();
    update();
  });
  form.addEventListener("input", update);
  form.addEventListener("change", function (event) {
    if (event.target.name === "strategy") {
      rows.querySelectorAll('[data-sweep="field"]').forEach(fillFields);
      fillMetrics();
    }
    update();
  });
  document.getElementById("sweep-add").addEventListener("click", function () { addRow(); });
  fillMetrics();
  update();

  return {
    active: function () { return toggle.checked; },
    /* The POST /api/sweeps body for the run body the form collected; varied fields leave the
       base's hyperparameters. */
    collect: function (runBody) {
      var described = space();
      var base = JSON.parse(JSON.stringify(runBody));
      Object.keys(described.space).forEach(function (name) { delete base.hyperparameters[name]; });
      var body = { run: base, kind: kind.value, space: described.space, metric: metric.value,
                   direction: direction.value,
                   concurrency: Number(document.getElementById("sweep-concurrency").value) || 1,
                   continue_on_error: document.getElementById("sweep-continue").checked };
      if (drawn()) body.budget = Number(budget.value) || 0;
      if (kind.value === "optuna") body.pruner = pruner.value;
      if (runBody.name) body.name = runBody.name;
      return { body: body, problems: described.problems };
    },
  };
})();
