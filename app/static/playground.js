/* Playground: queue a generation, poll it, show each answer when it lands (textContent only). */
import { TuneDeck } from "/static/app.js";
(function () {
  "use strict";
  var form = document.getElementById("playground-form");
  if (!form) return;
  var runs = TuneDeck.readJson("playground-runs");
  var runSelect = document.getElementById("pg-run");
  var checkpoint = document.getElementById("pg-checkpoint");
  var examples = document.getElementById("pg-examples");
  var prompt = document.getElementById("pg-prompt");
  var status = document.getElementById("pg-status");
  var stop = null;

  function option(select, value, text) {
    var o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    select.appendChild(o);
  }

  function chooseRun() {
    var run = runs.filter(function (r) { return String(r.id) === runSelect.value; })[0];
    checkpoint.textContent = "";
    option(checkpoint, "best", "best");
    run.steps.forEach(function (s) { option(checkpoint, s, "step " + s); });
    examples.textContent = "";
    option(examples, "", "—");
    TuneDeck.api("GET", "/api/runs/" + run.id + "/prompts").then(function (r) {
      if (!r.ok) return;
      r.data.forEach(function (text, i) { option(examples, i, text.length > 80 ? text.slice(0, 77) + "…" : text); });
      examples._texts = r.data;
    });
  }

  /* '12 prompt tokens → 30 new tokens · 0.84 s (36 tokens/s)' under each answer. */
  function statsText(s) {
    if (!s) return "";
    var rate = s.seconds > 0 ? " (" + TuneDeck.number(Math.round(s.new_tokens / s.seconds)) + " tokens/s)" : "";
    return s.prompt_tokens + " prompt tokens → " + s.new_tokens + " new tokens · " +
      s.seconds.toFixed(2) + " s" + rate;
  }

  function show(g) {
    document.getElementById("pg-tuned").textContent = g.tuned_output === null ? "…" : g.tuned_output;
    document.getElementById("pg-base").textContent = g.base_output === null ? "…" : g.base_output;
    var stats = g.answer_stats || {};
    document.getElementById("pg-tuned-stats").textContent = statsText(stats.tuned);
    document.getElementById("pg-base-stats").textContent = statsText(stats.base);
    status.textContent = g.status === "queued" ? "waiting for a worker…" :
      g.status === "running" ? "generating…" : g.status === "completed" ? "done" : "";
    TuneDeck.showError(document.getElementById("pg-error"), g.status === "failed" ? g.error : "");
  }

  runSelect.addEventListener("change", chooseRun);
  // Greedy decoding ignores temperature and top-p: say so by disabling them.
  form.greedy.addEventListener("change", function () {
    form.temperature.disabled = form.top_p.disabled = form.greedy.checked;
  });
  examples.addEventListener("change", function () {
    if (examples.value !== "" && examples._texts) prompt.value = examples._texts[Number(examples.value)];
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (stop) stop();
    var button = document.getElementById("pg-generate");
    var body = {
      run_id: Number(runSelect.value),
      checkpoint: checkpoint.value === "best" ? "best" : Number(checkpoint.value),
      prompt: prompt.value, temperature: Number(form.temperature.value),
      top_p: Number(form.top_p.value), max_new_tokens: Number(form.max_new_tokens.value),
      greedy: form.greedy.checked,
    };
    button.disabled = true;
    // The previous answers go at once: nothing on screen belongs to an older request.
    show({ tuned_output: "", base_output: "", status: "" });
    status.textContent = "sending…";
    TuneDeck.api("POST", "/api/playground", body).then(function (r) {
      button.disabled = false;
      if (!r.ok) { TuneDeck.showError(document.getElementById("pg-error"), r.error); return; }
      show(r.data);
      var id = r.data.id;
      stop = TuneDeck.poll(function () {
        return TuneDeck.api("GET", "/api/playground/" + id).then(function (g) {
          if (!g.ok) return true;
          show(g.data);
          return g.data.status === "queued" || g.data.status === "running";
        });
      }, 700);
    });
  });
  chooseRun();
})();
