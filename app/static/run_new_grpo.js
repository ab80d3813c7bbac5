/* New run form, GRPO section: reward-function rows built from GET /api/reward-functions, their
   params as small inputs generated from each function's defaults, the reasoning-format preset.
   run_new.js asks Grpo.collect() (this module's export) for the reward_functions when GRPO is picked.
   A link may pre-fill rows with ?rewards=exact_answer:1,soft_format:0.25 (name[:weight]); a run
   launched again with changes (?clone=) pre-fills them with their params too (#reward-configs). */
import { TuneDeck } from "/static/app.js";
export const Grpo = (function () {
  "use strict";
  var rowsBox = document.getElementById("reward-rows");
  if (!rowsBox) return;
  var template = document.getElementById("reward-row-template");
  var addButton = document.getElementById("add-reward");
  var loadError = document.getElementById("reward-load-error");
  var library = { specs: {}, order: [], custom: { enabled: false } };

  function $(id) { return document.getElementById(id); }
  function part(row, name) { return row.querySelector('[data-reward="' + name + '"]'); }

  /* "exact_answer:1, soft_format:0.25" → [{name, weight}]; a missing or bad weight means 1. */
  function parseRewardsParam(text) {
    return String(text || "").split(",").map(function (item) {
      var bits = item.trim().split(":");
      var weight = bits.length > 1 ? Number(bits[1]) : 1;
      return { name: bits[0].trim(), weight: isFinite(weight) && bits[1] !== "" ? weight : 1 };
    }).filter(function (item) { return item.name; });
  }

  function paramInput(key, value) {
    var label = document.createElement("label");
    label.className = "field reward-param";
    var caption = document.createElement("span");
    caption.className = "field-label";
    caption.textContent = key.replace(/_/g, " ");
    label.appendChild(caption);
    var input;
    if (key === "code") {
      input = document.createElement("textarea");
      input.rows = 8;
      input.className = "mono";
      input.spellcheck = false;
      input.value = value;
      label.classList.add("reward-code");
    } else {
      input = document.createElement("input");
      if (typeof value === "boolean") {
        input.type = "checkbox";
        input.checked = value;
        label.classList.add("reward-check");
      } else if (typeof value === "number") {
        input.type = "number";
        input.step = Number.isInteger(value) ? "1" : "any";
        input.value = String(value);
      } else {
        input.type = "text";
        input.value = Array.isArray(value) ? value.join(", ") : String(value);
        if (Array.isArray(value)) input.placeholder = "comma-separated";
      }
    }
    input.setAttribute("data-param", key);
    input.setAttribute("data-default", JSON.stringify(value));
    label.appendChild(input);
    return label;
  }

  function specFor(name) {
    if (name === "custom") {
      return { name: "custom", description: "Your Python, run in a limited subprocess: def reward(completions, **kwargs) returns one number (or None) per completion; dataset columns arrive as lists.",
               defaults: { code: library.custom.template || "" } };
    }
    return library.specs[name];
  }

  /* The reward configurations of a run launched again (JSON text of [{name, weight, params}]). */
  function parseConfigs(text) {
    try {
      var configs = JSON.parse(text || "[]");
      return Array.isArray(configs) ? configs.filter(function (c) { return c && c.name; }) : [];
    } catch (error) {
      return [];
    }
  }

  function renderParams(row, values) {
    var spec = specFor(part(row, "name").value);
    var box = part(row, "params");
    box.textContent = "";
    part(row, "description").textContent = spec ? spec.description : "";
    if (!spec) return;
    Object.keys(spec.defaults).forEach(function (key) {
      var input = paramInput(key, spec.defaults[key]);
      if (values && key in values) setParam(input.querySelector("[data-param]"), values[key]);
      box.appendChild(input);
    });
  }

  function setParam(input, value) {
    if (input.type === "checkbox") input.checked = Boolean(value);
    else input.value = Array.isArray(value) ? value.join(", ") : String(value);
  }

  function addRow(name, weight, params) {
    var row = template.content.firstElementChild.cloneNode(true);
    var select = part(row, "name");
    library.order.concat(library.custom.enabled ? ["custom"] : []).forEach(function (key) {
      var option = document.createElement("option");
      option.value = key;
      option.textContent = key === "custom" ? "custom (Python)" : key;
      select.appendChild(option);
    });
    select.value = name || unusedName();
    part(row, "weight").value = weight === undefined ? "1" : String(weight);
    select.addEventListener("change", function () { renderParams(row); });
    part(row, "remove").addEventListener("click", function () { row.remove(); });
    rowsBox.appendChild(row);
    renderParams(row, params);
    return row;
  }

  function unusedName() {
    var used = Array.prototype.map.call(rowsBox.querySelectorAll('[data-reward="name"]'),
                                        function (s) { return s.value; });
    return library.order.filter(function (n) { return used.indexOf(n) < 0; })[0] || library.order[0];
  }

  function paramValue(input, problems, fn) {
    var fallback = JSON.parse(input.getAttribute("data-default"));
    var key = input.getAttribute("data-param");
    if (input.type === "checkbox") return input.checked;
    if (typeof fallback === "number") {
      var raw = input.value.trim();
      if (raw === "" || !isFinite(Number(raw))) {
        problems.push(fn + ": parameter " + key + " must be a number");
        return fallback;
      }
      return Number(raw);
    }
    if (Array.isArray(fallback)) {
      return input.value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
    }
    return input.value;
  }

  /* {rewards: [{name, weight, params}], problems: ["..."]} for the request body. */
  function collect() {
    var problems = [];
    var rewards = Array.prototype.map.call(rowsBox.querySelectorAll("[data-reward-row]"), function (row) {
      var name = part(row, "name").value;
      var rawWeight = part(row, "weight").value.trim();
      if (rawWeight === "" || !isFinite(Number(rawWeight))) problems.push(name + ": weight must be a number");
      var params = {};
      row.querySelectorAll("[data-param]").forEach(function (input) {
        params[input.getAttribute("data-param")] = paramValue(input, problems, name);
      });
      return { name: name, weight: Number(rawWeight), params: params };
    });
    if (!rewards.length) problems.push("add at least one reward function");
    return { rewards: rewards, problems: problems };
  }

  /* Live warnings: a reward that reads a column the chosen dataset does not hand it, and tag
     rewards with no prompt asking for the tags (such a run scores 0 on every step). */
  function fitWarnings() {
    var box = $("grpo-fit-warnings");
    var facts = TuneDeck.readJson("dataset-facts") || {};
    var tagRewards = TuneDeck.readJson("tag-rewards") || [];
    var datasetSelect = $("field-dataset_id");
    var fact = datasetSelect ? facts[datasetSelect.value] : null;
    var warnings = [], tagged = [];
    rowsBox.querySelectorAll("[data-reward-row]").forEach(function (row) {
      var name = part(row, "name").value;
      var column = row.querySelector('[data-param="column"]');
      var wanted = column ? column.value.trim() : "";
      if (fact && wanted && fact.reward_columns.indexOf(wanted) < 0) {
        warnings.push(name + " reads column '" + wanted + "', which dataset " + fact.name +
          " does not have (columns rewards receive: " + (fact.reward_columns.join(", ") || "none") + ").");
      }
      if (tagRewards.indexOf(name) >= 0 && tagged.indexOf(name) < 0) tagged.push(name);
    });
    if (tagged.length) {
      var reasoning = $("hp-grpo-reasoning_tag").value.trim() || "reasoning";
      var answer = $("hp-grpo-answer_tag").value.trim() || "answer";
      var prompt = $("hp-grpo-system_prompt").value;
      if (prompt.indexOf("<" + reasoning + ">") < 0 || prompt.indexOf("<" + answer + ">") < 0) {
        warnings.push(tagged.join(", ") + " score the <" + reasoning + "> and <" + answer +
          "> tags, but nothing asks the model for them: click \u201cUse reasoning format preset\u201d or ask for them in the system prompt.");
      }
    }
    var list = box.querySelector("ul");
    list.textContent = "";
    warnings.forEach(function (text) {
      var item = document.createElement("li");
      item.textContent = text;
      list.appendChild(item);
    });
    box.hidden = !warnings.length;
  }

  function usePreset() {
    var reasoning = $("hp-grpo-reasoning_tag").value.trim() || "reasoning";
    var answer = $("hp-grpo-answer_tag").value.trim() || "answer";
    var url = "/api/reward-functions?reasoning_tag=" + encodeURIComponent(reasoning) +
      "&answer_tag=" + encodeURIComponent(answer);
    var box = $("hp-grpo-system_prompt").closest(".field");
    TuneDeck.api("GET", url).then(function (result) {
      TuneDeck.showError(box.querySelector(".field-error"), result.ok ? "" : result.error);
      if (result.ok) $("hp-grpo-system_prompt").value = result.data.reasoning_system_prompt;
      fitWarnings();
    });
  }

  $("reasoning-preset").addEventListener("click", usePreset);
  addButton.addEventListener("click", function () { addRow(); });

  TuneDeck.api("GET", "/api/reward-functions").then(function (result) {
    if (!result.ok) {
      TuneDeck.showError(loadError, "Could not load the reward functions: " + result.error);
      return;
    }
    result.data.reward_functions.forEach(function (spec) {
      library.specs[spec.name] = spec;
      library.order.push(spec.name);
    });
    library.custom = result.data.custom_rewards;
    var configs = parseConfigs(TuneDeck.readJson("reward-configs"));
    var wanted = configs.length ? configs : parseRewardsParam(TuneDeck.readJson("reward-prefill"));
    var unknown = wanted.filter(function (w) { return !specFor(w.name); });
    wanted = wanted.filter(function (w) { return specFor(w.name); });
    if (unknown.length) {
      TuneDeck.showError(loadError, "Skipped from the link: " + unknown.map(function (w) {
        return w.name === "custom" ? "custom (custom rewards are disabled on this server)" : w.name;
      }).join(", ") + ". Choose from the list.");
    }
    (wanted.length ? wanted : [{ name: "exact_answer", weight: 1 }]).forEach(function (w) {
      addRow(w.name, w.weight, w.params);
    });
    // A link that asks for tag rewards gets the prompt that asks for the tags.
    var tagRewards = TuneDeck.readJson("tag-rewards") || [];
    var wantsTags = wanted.some(function (w) { return tagRewards.indexOf(w.name) >= 0; });
    if (wantsTags && !$("hp-grpo-system_prompt").value.trim()) usePreset();
    // A section hidden at load has its inputs disabled by run_new.js; new rows follow suit.
    var section = rowsBox.closest(".strategy-section");
    if (section && section.hidden) {
      rowsBox.querySelectorAll("input, select, textarea").forEach(function (el) { el.disabled = true; });
    }
    addButton.disabled = false;
    fitWarnings();
    var form = rowsBox.closest("form");
    form.addEventListener("input", fitWarnings);
    form.addEventListener("change", fitWarnings);
    rowsBox.addEventListener("click", function () { setTimeout(fitWarnings, 0); });  // Remove
    rowsBox.setAttribute("data-ready", "");
  });

  return { collect: collect, parseRewardsParam: parseRewardsParam };
})();
