/* New run form: strategy sections, base model "other", submit as JSON, errors at the field. */
import { TuneDeck } from "/static/app.js";
import { Grpo } from "/static/run_new_grpo.js";
import { Placement } from "/static/placement.js";
import { Sweep } from "/static/run_new_sweep.js";
import { Trackers } from "/static/run_new_trackers.js";
(function () {
  "use strict";
  var form = document.getElementById("run-form");
  if (!form) return;
  var modelSelect = document.getElementById("field-base_model");
  var modelOther = document.getElementById("field-base_model_other");
  var modelHint = document.getElementById("base-model-hint");
  var errorBox = document.getElementById("run-error");
  var submit = document.getElementById("run-submit");
  var submitStatus = document.getElementById("run-submit-status");

  function strategy() {
    var checked = form.querySelector('input[name="strategy"]:checked');
    return checked ? checked.value : "sft";
  }

  function activeSection() {
    return form.querySelector('.strategy-section[data-strategy="' + strategy() + '"]');
  }

  function showStrategy() {
    form.querySelectorAll(".strategy-section").forEach(function (section) {
      var active = section.getAttribute("data-strategy") === strategy();
      section.hidden = !active;
      // Hidden sections must not submit or validate.
      section.querySelectorAll("input, select, textarea").forEach(function (el) { el.disabled = !active; });
    });
  }

  function showModel() {
    if (!modelSelect) return;
    var other = modelSelect.value === "__other__";
    modelOther.hidden = !other;
    var option = modelSelect.selectedOptions[0];
    modelHint.textContent = other
      ? "A local folder with config.json, or a Hugging Face hub id such as org/model."
      : (option && option.getAttribute("data-description")) || "";
  }

  form.querySelectorAll('input[name="strategy"]').forEach(function (radio) {
    radio.addEventListener("change", showStrategy);
  });
  if (modelSelect) modelSelect.addEventListener("change", showModel);
  showStrategy();
  showModel();
  submit.disabled = false;  // rendered disabled until this script handles the submit

  function fieldBox(name) {
    var scope = activeSection();
    var box = scope && scope.querySelector('[data-field-name="' + name + '"]');
    return box || form.querySelector('[data-field-name="' + name + '"]');
  }

  /* "hyperparameters.learning_rate: Input should be greater than 0" → "Learning rate must be
     greater than 0": the summary in the form's words (fields are still marked from the raw text). */
  function inWords(part) {
    var match = /^hyperparameters\.([A-Za-z0-9_]+)[^:]*:\s*([\s\S]*)$/.exec(part) ||
      /^(base_model|name|dataset_id|strategy|backend|queue|reward_functions)\b[^:]*:\s*([\s\S]*)$/.exec(part);
    if (!match) return part;
    var box = fieldBox(match[1]);
    var label = box && box.querySelector(".field-label");
    var name = label ? label.textContent.replace(/\(optional\)/, "").trim()
      : match[1].replace(/_/g, " ").replace(/^./, function (c) { return c.toUpperCase(); });
    var message = match[2].replace(/^Value error, /, "")
      .replace(/^Input should be a valid number.*$/, "must be a number")
      .replace(/^Input should be a valid integer.*$/, "must be a whole number")
      .replace(/^Input should be /, "must be ")
      .replace(/^Field required$/, "is required");
    return /^(must|is) /.test(message) ? name + " " + message : name + ": " + message;
  }

  function summary(detail) {
    return String(detail || "").split("; ").map(inWords).join("\n");
  }

  function clearErrors() {
    TuneDeck.showError(errorBox, "");
    form.querySelectorAll(".invalid").forEach(function (el) { el.classList.remove("invalid"); });
    form.querySelectorAll(".field-error").forEach(function (el) { TuneDeck.showError(el, ""); });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
  }

  function markField(name, message) {
    var box = fieldBox(name);
    if (!box) return null;
    box.classList.add("invalid");
    var input = box.querySelector("input:not([hidden]), select");
    if (input) input.setAttribute("aria-invalid", "true");
    TuneDeck.showError(box.querySelector(".field-error"), message);
    var details = box.closest("details");
    if (details) details.open = true;
    return input;
  }

  /* "hyperparameters.lora_r: Input should be ...; base_model 'x' is not ..." → mark each field. */
  function markErrors(detail) {
    var first = null;
    String(detail || "").split("; ").forEach(function (part) {
      var match = /^hyperparameters\.([A-Za-z0-9_]+)/.exec(part) ||
        /^(base_model|name|dataset_id|strategy|backend|queue|reward_functions)\b/.exec(part) ||
        /^(trackers(?:\.(?:wandb|trackio))?)\b/.exec(part);  // partials/run_new_trackers.html
      if (match) {
        var input = markField(match[1], part.replace(/^[^:]*:\s*/, ""));
        first = first || input;
      } else if (/^hyperparameters: /.test(part)) {
        // A rule across fields (GRPO: batch × accumulation vs num_generations): mark each named.
        Array.prototype.slice.call(activeSection().querySelectorAll("[data-hp]"))
          .concat(Placement.inputs()).forEach(function (el) {
          if (!new RegExp("\\b" + el.name + "\\b").test(part)) return;
          var named = markField(el.name, part.replace(/^[^:]*:\s*/, ""));
          first = first || named;
        });
      }
    });
    if (first) first.focus();
  }

  function parseValue(input) {
    var raw = input.value.trim();
    var kind = input.getAttribute("data-kind");
    if (raw === "") return undefined;
    if (kind === "int" && /^-?\d+$/.test(raw)) return parseInt(raw, 10);
    if (kind === "float" && raw !== "" && isFinite(Number(raw))) return Number(raw);
    if (kind === "modules" && raw !== "all-linear") {
      return raw.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
    }
    return raw;  // the server names the problem when a value does not fit
  }

  function collect() {
    var problems = [];
    var hyperparameters = {};
    activeSection().querySelectorAll("[data-hp]").forEach(function (input) {
      if (input.validity && input.validity.badInput) {
        problems.push(["hp", input.name, "enter a number"]);
        return;
      }
      var value = parseValue(input);
      if (value !== undefined) hyperparameters[input.name] = value;
    });
    Object.assign(hyperparameters, Placement.collect());  // processes, hosts: "Where it runs"
    var baseModel = modelSelect && modelSelect.value !== "__other__"
      ? modelSelect.value : modelOther.value.trim();
    if (!baseModel) problems.push(["top", "base_model", "enter a local folder or a hub id"]);
    if (!form.elements.dataset_id.value) problems.push(["top", "dataset_id", "pick a dataset"]);
    var body = {
      dataset_id: parseInt(form.elements.dataset_id.value, 10),
      strategy: strategy(),
      base_model: baseModel,
      hyperparameters: hyperparameters,
    };
    var name = form.elements.name.value.trim();
    if (name) body.name = name;
    // Where it runs: sent only when changed, so the server's defaults apply otherwise.
    if (form.elements.backend && form.elements.backend.value !== "auto") {
      body.backend = form.elements.backend.value;
    }
    var queue = form.elements.queue ? form.elements.queue.value.trim() : "";
    if (queue) body.queue = queue;
    var trackers = Trackers.collect(form);
    if (trackers) body.trackers = trackers;
    // GRPO's reward rows come from its own section (strategy_grpo.html, run_new_grpo.js).
    if (body.strategy === "grpo" && Grpo) {
      var rewards = Grpo.collect();
      body.reward_functions = rewards.rewards;
      rewards.problems.forEach(function (p) { problems.push(["top", "reward_functions", p]); });
    }
    return { body: body, problems: problems };
  }

  // Editing a field clears its error mark.
  form.addEventListener("input", function (event) {
    var box = event.target.closest(".invalid");
    if (!box) return;
    box.classList.remove("invalid");
    event.target.removeAttribute("aria-invalid");
    TuneDeck.showError(box.querySelector(".field-error"), "");
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors();
    var collected = collect();
    if (collected.problems.length) {
      var messages = collected.problems.map(function (p) {
        return (p[0] === "hp" ? "hyperparameters." : "") + p[1] + ": " + p[2];
      });
      TuneDeck.showError(errorBox, summary(messages.join("; ")));
      markErrors(messages.join("; "));
      return;
    }
    var url = "/api/runs", body = collected.body, page = "/runs/";
    if (Sweep && Sweep.active()) {  // the "Sweep" switch (run_new_sweep.js)
      var sweep = Sweep.collect(collected.body);
      if (sweep.problems.length) {
        TuneDeck.showError(errorBox, sweep.problems.join("; "));
        markErrors(sweep.problems.join("; "));
        return;
      }
      url = "/api/sweeps";
      body = sweep.body;
      page = "/sweeps/";
    }
    submit.disabled = true;
    submitStatus.textContent = "Checking the configuration…";
    TuneDeck.api("POST", url, body).then(function (result) {
      if (result.ok) {
        submitStatus.textContent = "Queued: opening it…";
        window.location.assign(page + result.data.id);
        return;
      }
      submit.disabled = false;
      submitStatus.textContent = "";
      TuneDeck.showError(errorBox, summary(result.error));
      markErrors(result.error);
    });
  });
})();
