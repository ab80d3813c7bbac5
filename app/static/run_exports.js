/* The run page's export section: list the run's exports (polling while any is active), start
   one, download or delete finished ones, show the `ollama create` command of a GGUF. */
import { TuneDeck } from "/static/app.js";
(function () {
  "use strict";
  var root = document.getElementById("run-exports");
  if (!root) return;
  var runId = root.getAttribute("data-run-id");
  var form = document.getElementById("export-form");
  var kind = document.getElementById("export-kind");
  var quant = document.getElementById("export-quantization");
  var errorBox = document.getElementById("export-error");
  var QUANTS = { gguf: ["q8_0", "f16", "bf16", "q4_K_M"], adapter_gguf: ["f16", "bf16", "q8_0"], merged: [] };
  var KINDS = { gguf: "GGUF", merged: "merged", adapter_gguf: "adapter GGUF" };

  function fillQuantizations() {
    quant.textContent = "";
    var choices = QUANTS[kind.value] || [];
    choices.forEach(function (q) {
      var option = document.createElement("option");
      option.value = q;
      option.textContent = q + (q === "q4_K_M" ? " (needs llama-quantize)" : "");
      quant.appendChild(option);
    });
    if (!choices.length) {
      var keep = document.createElement("option");
      keep.value = "";
      keep.textContent = "base model's dtype";
      quant.appendChild(keep);
    }
    quant.disabled = !choices.length;
  }

  function size(bytes) {
    if (bytes >= 1 << 30) return (bytes / (1 << 30)).toFixed(1) + " GiB";
    if (bytes >= 1 << 20) return (bytes / (1 << 20)).toFixed(1) + " MiB";
    return Math.max(1, Math.round(bytes / 1024)) + " KiB";
  }

  function cell(tr, content) {
    var td = document.createElement("td");
    if (content instanceof Node) td.appendChild(content); else td.textContent = content;
    tr.appendChild(td);
    return td;
  }

  function filesCell(e) {
    var box = document.createElement("div");
    if (e.status === "completed") {
      e.files.forEach(function (f) {
        var link = document.createElement("a");
        link.href = f.url;
        link.setAttribute("download", "");
        link.textContent = f.name + " (" + size(f.size) + ")";
        box.appendChild(link);
        box.appendChild(document.createElement("br"));
      });
      if (e.ollama_command) {
        var hint = document.createElement("div");
        hint.className = "muted small";
        hint.textContent = "Download the .gguf and the Modelfile into one folder, then run there: ";
        var code = document.createElement("code");
        code.className = "ollama-command";
        code.textContent = e.ollama_command;
        hint.appendChild(code);
        box.appendChild(hint);
      }
    } else if (e.status === "failed") {
      var pre = document.createElement("pre");
      pre.className = "error-text";
      pre.textContent = e.error || "failed";
      box.appendChild(pre);
    } else {
      box.textContent = (e.phase || "waiting for a worker") + (e.status === "running" ? " · " + Math.round(e.progress * 100) + " %" : "");
    }
    return box;
  }

  function actions(e) {
    var box = document.createElement("div");
    if (e.download_url) {
      var zip = document.createElement("a");
      zip.className = "btn btn-small";
      zip.href = e.download_url;
      zip.setAttribute("download", "");
      zip.textContent = "Download all";
      box.appendChild(zip);
      box.appendChild(document.createTextNode(" "));
    }
    if (e.status === "completed" || e.status === "failed") {
      var del = document.createElement("button");
      del.type = "button";
      del.className = "btn btn-small btn-danger";
      del.textContent = "Delete";
      del.addEventListener("click", function () {
        if (!window.confirm("Delete export #" + e.id + " and its files?")) return;
        TuneDeck.api("DELETE", "/api/exports/" + e.id).then(function (r) {
          TuneDeck.showError(errorBox, r.ok ? "" : r.error);
          refresh();
        });
      });
      box.appendChild(del);
    }
    return box;
  }

  function render(list) {
    var body = root.querySelector("#exports-table tbody");
    body.textContent = "";
    list.forEach(function (e) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-export-id", e.id);
      cell(tr, "#" + e.id);
      cell(tr, "step " + e.checkpoint_step);
      cell(tr, (KINDS[e.kind] || e.kind) + (e.quantization ? " " + e.quantization : "") + (e.details && e.details.dtype ? " (" + e.details.dtype + ")" : ""));
      var badge = document.createElement("span");
      TuneDeck.setBadge(badge, e.status);
      cell(tr, badge);
      cell(tr, filesCell(e));
      cell(tr, actions(e));
      body.appendChild(tr);
    });
    if (list.length) document.getElementById("exports-empty").hidden = true;
  }

  function refresh() {
    return TuneDeck.api("GET", "/api/runs/" + runId + "/exports").then(function (r) {
      if (!r.ok) return true;
      render(r.data);
      var busy = r.data.some(function (e) { return e.status === "queued" || e.status === "running"; });
      if (!busy) polling = false;
      return busy;
    });
  }

  var polling = false;
  function startPolling() {
    if (polling) return;
    polling = true;
    TuneDeck.poll(refresh, 1500);
  }

  TuneDeck.api("GET", "/api/runs/" + runId + "/checkpoints").then(function (r) {
    if (!r.ok) return;
    var select = document.getElementById("export-checkpoint");
    r.data.forEach(function (c) {
      var option = document.createElement("option");
      option.value = c.step;
      option.textContent = "step " + c.step + (c.is_best ? " (best)" : "");
      select.appendChild(option);
    });
  });

  kind.addEventListener("change", fillQuantizations);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var checkpoint = form.elements.checkpoint.value;
    var body = { checkpoint: checkpoint === "best" ? "best" : Number(checkpoint), kind: kind.value,
                 quantization: quant.value || null };
    TuneDeck.showError(errorBox, "");
    TuneDeck.api("POST", "/api/runs/" + runId + "/exports", body).then(function (r) {
      if (!r.ok) { TuneDeck.showError(errorBox, r.error); return; }
      refresh().then(startPolling);
    });
  });

  fillQuantizations();
  refresh().then(function (busy) { if (busy) startPolling(); });
})();
