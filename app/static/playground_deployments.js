/* The playground's deployment target: for the chosen run, list its serving deployments and send
   the prompt (with the form's temperature, top-p and token limit) straight to the endpoint. */
import { TuneDeck } from "/static/app.js";
(function () {
  "use strict";
  var card = document.getElementById("pg-deployment");
  var runSelect = document.getElementById("pg-run");
  if (!card || !runSelect) return;
  var select = document.getElementById("pg-deployment-select");
  var form = document.getElementById("pg-deployment-form");
  var status = document.getElementById("pg-deployment-status");
  var answer = document.getElementById("pg-deployment-answer");
  var serving = [];

  function load() {
    var runId = runSelect.value;
    document.getElementById("pg-deployment-run").href = "/runs/" + runId + "#run-deployments";
    TuneDeck.api("GET", "/api/runs/" + runId + "/deployments").then(function (r) {
      serving = r.ok ? r.data.filter(function (d) { return d.status === "serving"; }) : [];
      select.textContent = "";
      serving.forEach(function (d, i) {
        var o = document.createElement("option");
        o.value = i;
        o.textContent = "#" + d.id + " step " + d.checkpoint_step + " (" + d.engine + ")";
        select.appendChild(o);
      });
      card.hidden = serving.length === 0;
      pick();
    });
  }

  function pick() {
    var d = serving[Number(select.value)];
    form.querySelector('[data-field="key"]').hidden = !(d && d.requires_api_key);
  }

  runSelect.addEventListener("change", load);
  select.addEventListener("change", pick);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var d = serving[Number(select.value)];
    var main = document.getElementById("playground-form");
    if (!d || !main) return;
    var headers = { "Content-Type": "application/json" };
    if (d.requires_api_key) headers.Authorization = "Bearer " + form.elements.key.value;
    var started = performance.now();
    status.textContent = "asking…";
    answer.textContent = "";
    fetch(d.base_url + "/chat/completions", {
      method: "POST", headers: headers,
      body: JSON.stringify({
        model: d.model_name, messages: [{ role: "user", content: main.elements.prompt.value }],
        temperature: Number(main.elements.temperature.value), top_p: Number(main.elements.top_p.value),
        max_tokens: Number(main.elements.max_new_tokens.value),
      }),
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) {
          status.textContent = "";
          answer.textContent = "The endpoint answered " + response.status + ": " + ((data.error && data.error.message) || data.detail || "");
          return;
        }
        answer.textContent = data.choices[0].message.content;
        status.textContent = "answered in " + ((performance.now() - started) / 1000).toFixed(1) + " s";
      });
    }).catch(function () {
      status.textContent = "";
      answer.textContent = "Could not reach the endpoint from this browser (it listens on its worker host).";
    });
  });
  load();
})();
