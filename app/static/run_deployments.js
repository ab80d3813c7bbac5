/* The run page's deployment section: start an endpoint for a checkpoint, list the run's
   deployments (polling while any is starting or serving), stop them, and a small chat box that
   calls the endpoint itself (with its API key), beside copy-paste curl and openai snippets. */
import { TuneDeck } from "/static/app.js";
(function () {
  "use strict";
  var root = document.getElementById("run-deployments");
  if (!root) return;
  var runId = root.getAttribute("data-run-id");
  var form = document.getElementById("deploy-form");
  var errorBox = document.getElementById("deploy-error");
  var chat = document.getElementById("deployment-chat");
  var chosen = null;
  var keys = {};

  function snippets(d) {
    var key = d.requires_api_key ? "$TUNEDECK_DEPLOYMENT_KEY" : "none";
    return "curl " + d.base_url + "/chat/completions \\\n" +
      (d.requires_api_key ? "  -H \"Authorization: Bearer " + key + "\" \\\n" : "") +
      "  -H 'Content-Type: application/json' \\\n" +
      "  -d '{\"model\": \"" + d.model_name + "\", \"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}]}'\n\n" +
      "from openai import OpenAI\n" +
      "client = OpenAI(base_url=\"" + d.base_url + "\", api_key=" + (d.requires_api_key ? "os.environ[\"TUNEDECK_DEPLOYMENT_KEY\"]" : "\"none\"") + ")\n" +
      "reply = client.chat.completions.create(model=\"" + d.model_name + "\", messages=[{\"role\": \"user\", \"content\": \"Hello\"}])\n" +
      "print(reply.choices[0].message.content)";
  }

  function choose(d) {
    chosen = d;
    chat.hidden = false;
    chat.querySelector('[data-field="id"]').textContent = "#" + d.id;
    document.getElementById("deployment-snippets").textContent = snippets(d);
    var keyInput = document.getElementById("deployment-chat-form").elements.key;
    keyInput.value = keys[d.id] || "";
    keyInput.parentNode.hidden = !d.requires_api_key;
  }

  function render(list) {
    var body = root.querySelector("#deployments-table tbody");
    body.textContent = "";
    list.forEach(function (d) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-deployment-id", d.id);
      [("#" + d.id), "step " + d.checkpoint_step].forEach(function (text) {
        var td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
      });
      var status = document.createElement("td");
      var badge = document.createElement("span");
      TuneDeck.setBadge(badge, d.status === "serving" ? "running" : d.status === "stopped" ? "cancelled" : d.status === "starting" ? "queued" : d.status);
      badge.textContent = d.status;
      status.appendChild(badge);
      tr.appendChild(status);
      var where = document.createElement("td");
      if (d.base_url) {
        var code = document.createElement("code"); code.textContent = d.base_url + " · model " + d.model_name;
        where.appendChild(code);
      } else if (d.status === "failed") {
        var pre = document.createElement("pre"); pre.className = "error-text"; pre.textContent = d.error || "failed";
        where.appendChild(pre);
      } else {
        where.textContent = d.phase || (d.status === "starting" ? "waiting for a worker" : "");
      }
      tr.appendChild(where);
      var actions = document.createElement("td");
      if (d.status === "serving") {
        var talk = document.createElement("button");
        talk.type = "button"; talk.className = "btn btn-small"; talk.textContent = "Chat";
        talk.addEventListener("click", function () { choose(d); });
        actions.appendChild(talk);
        actions.appendChild(document.createTextNode(" "));
      }
      if (d.status === "serving" || d.status === "starting") {
        var stop = document.createElement("button");
        stop.type = "button"; stop.className = "btn btn-small btn-danger"; stop.textContent = d.stop_requested ? "Stopping…" : "Stop";
        stop.disabled = d.stop_requested;
        stop.addEventListener("click", function () {
          TuneDeck.api("POST", "/api/deployments/" + d.id + "/stop").then(function (r) {
            TuneDeck.showError(errorBox, r.ok ? "" : r.error);
            refresh().then(startPolling);
          });
        });
        actions.appendChild(stop);
      }
      tr.appendChild(actions);
      body.appendChild(tr);
    });
    document.getElementById("deployments-empty").hidden = list.length > 0;
  }

  var polling = false;
  function refresh() {
    return TuneDeck.api("GET", "/api/runs/" + runId + "/deployments").then(function (r) {
      if (!r.ok) return true;
      render(r.data);
      var busy = r.data.some(function (d) { return d.status === "starting" || d.status === "serving"; });
      if (!busy) polling = false;
      return busy;
    });
  }
  function startPolling() {
    if (polling) return;
    polling = true;
    TuneDeck.poll(refresh, 3000);
  }

  TuneDeck.api("GET", "/api/runs/" + runId + "/checkpoints").then(function (r) {
    if (!r.ok) return;
    var select = document.getElementById("deploy-checkpoint");
    r.data.forEach(function (c) {
      var option = document.createElement("option");
      option.value = c.step;
      option.textContent = "step " + c.step + (c.is_best ? " (best)" : "");
      select.appendChild(option);
    });
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var checkpoint = form.elements.checkpoint.value;
    var port = form.elements.port.value;
    TuneDeck.showError(errorBox, "");
    TuneDeck.api("POST", "/api/runs/" + runId + "/deployments", {
      checkpoint: checkpoint === "best" ? "best" : Number(checkpoint), engine: form.elements.engine.value,
      port: port ? Number(port) : null,
    }).then(function (r) {
      if (!r.ok) { TuneDeck.showError(errorBox, r.error); return; }
      if (r.data.api_key) {
        keys[r.data.id] = r.data.api_key;
        var box = document.getElementById("deploy-key");
        box.querySelector('[data-field="id"]').textContent = "#" + r.data.id;
        box.querySelector('[data-field="key"]').textContent = r.data.api_key;
        box.hidden = false;
      }
      refresh().then(startPolling);
    });
  });

  document.getElementById("deployment-chat-form").addEventListener("submit", function (event) {
    event.preventDefault();
    if (!chosen) return;
    var f = event.target;
    var out = document.getElementById("deployment-answer");
    out.textContent = "…";
    var headers = { "Content-Type": "application/json" };
    if (chosen.requires_api_key) headers.Authorization = "Bearer " + f.elements.key.value;
    fetch(chosen.base_url + "/chat/completions", {
      method: "POST", headers: headers,
      body: JSON.stringify({ model: chosen.model_name, max_tokens: 256,
                             messages: [{ role: "user", content: f.elements.message.value }] }),
    }).then(function (response) {
      return response.json().then(function (data) {
        out.textContent = response.ok ? data.choices[0].message.content
          : "The endpoint answered " + response.status + ": " + ((data.error && data.error.message) || data.detail || "");
      });
    }).catch(function () { out.textContent = "Could not reach the endpoint from this browser (it listens on its worker host)."; });
  });

  refresh().then(function (busy) { if (busy) startPolling(); });
})();
