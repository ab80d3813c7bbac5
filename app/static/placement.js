/* Placement on the new-run form (templates/partials/placement.html): processes per host, hosts
   and ddp/fsdp go with the hyperparameters; the global batch they make is shown as you type. */
var DEFAULTS = { num_processes: 1, num_hosts: 1, distributed: "ddp" };

function form() { return document.getElementById("run-form"); }

function inputs() {
  var root = form();
  return root ? Array.prototype.slice.call(root.querySelectorAll("[data-placement]")) : [];
}

function number(input, fallback) {
  var value = input ? parseInt(input.value, 10) : NaN;
  return isFinite(value) && value > 0 ? value : fallback;
}

/* The enabled input named ``name``: the visible strategy section's (hidden ones are disabled). */
function enabled(name) {
  var root = form();
  var found = root ? root.querySelectorAll('[name="' + name + '"]') : [];
  for (var i = 0; i < found.length; i++) if (!found[i].disabled) return found[i];
  return null;
}

function showGlobalBatch() {
  var out = document.getElementById("global-batch");
  if (!out) return;
  var batch = number(enabled("per_device_train_batch_size"), 4);
  var accumulation = number(enabled("gradient_accumulation_steps"), 1);
  var processes = number(enabled("num_processes"), 1);
  var hosts = number(enabled("num_hosts"), 1);
  out.textContent = (batch * processes * hosts * accumulation) + " = " + batch + " × " +
    processes + " process" + (processes === 1 ? "" : "es") + " × " + hosts + " host" +
    (hosts === 1 ? "" : "s") + " × " + accumulation;
}

export const Placement = {
  /* The placement hyperparameters that differ from the defaults (the server fills the rest). */
  collect: function () {
    var chosen = {};
    inputs().forEach(function (input) {
      var raw = input.value.trim();
      if (raw === "") return;
      var value = input.getAttribute("data-kind") === "int" && /^-?\d+$/.test(raw)
        ? parseInt(raw, 10) : raw;
      if (value !== DEFAULTS[input.name]) chosen[input.name] = value;
    });
    return chosen;
  },
  inputs: inputs,
};

(function () {
  var root = form();
  if (!root) return;
  root.addEventListener("input", showGlobalBatch);
  root.addEventListener("change", showGlobalBatch);
  showGlobalBatch();
})();
