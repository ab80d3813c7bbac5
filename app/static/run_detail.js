/* Run page: poll the run, its metrics and checkpoints every 2 s while it is queued or running;
   one final refresh when it ends. Charts are Plotly (served from the installed wheel). */
import { TuneDeck } from "/static/app.js";
import { baseLayout, colourAt, CONFIG, drawLegend, ema, flatRange, isCurve, metricTitle, resumeMarks,
         stepAxis } from "/static/charts.js";
(function () {
  "use strict";
  var root = document.getElementById("run-detail");
  if (!root) return;
  var runId = root.getAttribute("data-run-id");
  var base = "/api/runs/" + runId;
  var last = { status: root.getAttribute("data-status"), step: null, best: null };

  function $(id) { return document.getElementById(id); }
  function field(scope, name) { return scope.querySelector('[data-field="' + name + '"]'); }
  function parseTime(iso) { return Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : iso + "Z"); }

  // ---- Queued: which queue it waits on; after a while, how to start a worker there ---------
  var queueNotice = $("queue-notice");
  var hintAfterMs = Number(queueNotice.getAttribute("data-hint-after-s")) * 1000;
  // Server clock minus this browser's, so "waited" does not depend on the browser's clock.
  var clockSkew = parseTime(queueNotice.getAttribute("data-server-now")) - Date.now();

  function applyQueued(run) {
    queueNotice.hidden = run.status !== "queued";
    if (queueNotice.hidden) return;
    var reason = $("waiting-reason");  // devices or hosts held by other runs
    reason.hidden = run.phase !== "waiting_for_devices";
    reason.textContent = reason.hidden ? "" : run.phase_label;
    var waited = Date.now() + clockSkew - parseTime(run.published_at || run.created_at);
    $("queue-hint").hidden = !(queueNotice.hasAttribute("data-no-worker") ||
                               run.publish_count > 1 || waited > hintAfterMs);
    var resent = run.publish_count - 1;
    var note = field(queueNotice, "resent");
    if (note) note.textContent = resent < 1 ? "" :
      "; it has re-sent it " + (resent === 1 ? "once" : resent + " times") + " so far";
  }

  // ---- Run header, progress, error, actions ------------------------------------------------
  function applyRun(run) {
    var header = root.querySelector(".page-header");
    TuneDeck.setBadge(field(header, "status"), run.status);
    root.setAttribute("data-status", run.status);
    TuneDeck.setProgress(field(root, "progress"), run);
    field(root, "progress_text").textContent = TuneDeck.progressText(run);
    field(root, "epoch").textContent = run.epoch === null ? "" : "epoch " + run.epoch.toFixed(2) + " · ";
    TuneDeck.setTime(field(root, "started_at"), run.started_at);
    TuneDeck.setTime(field(root, "finished_at"), run.finished_at);
    if (run.backend || run.device) {
      field(root, "backend").textContent = run.backend || run.requested_backend;
      field(root, "device").textContent = run.device || "?";
      $("backend-info").hidden = false;
    }
    resumePoints = run.resume_points || [];
    $("error-box").hidden = run.status !== "failed";
    field($("error-box"), "error").textContent = run.error || "";
    var active = TuneDeck.TERMINAL.indexOf(run.status) < 0;
    var cancel = $("cancel-button");
    cancel.hidden = !active;
    if (run.cancel_requested) { cancel.disabled = true; cancel.textContent = "Stopping…"; }
    $("cancel-notice").hidden = !(run.cancel_requested && run.status === "running") || !!run.prune_reason;
    $("prune-notice").hidden = !run.prune_reason;
    field($("prune-notice"), "prune_reason").textContent = run.prune_reason || "";
    applyQueued(run);
    $("download-best").hidden = !run.best_checkpoint;
    // Failed or cancelled runs with a checkpoint continue from it (POST /resume).
    $("resume-button").hidden = !((run.status === "failed" || run.status === "cancelled") &&
                                  run.best_checkpoint);
  }

  // Rendered disabled: a click before this script runs would do nothing.
  $("cancel-button").disabled = root.hasAttribute("data-cancel-requested");
  $("cancel-button").addEventListener("click", function () {
    var button = this;
    button.disabled = true;
    TuneDeck.showError($("action-error"), "");
    TuneDeck.api("POST", base + "/cancel").then(function (result) {
      if (result.ok) { applyRun(result.data); return; }
      button.disabled = false;
      TuneDeck.showError($("action-error"), result.error);
    });
  });

  $("resume-button").addEventListener("click", function () {
    var button = this;
    button.disabled = true;
    TuneDeck.showError($("action-error"), "");
    TuneDeck.api("POST", base + "/resume").then(function (result) {
      button.disabled = false;
      if (!result.ok) { TuneDeck.showError($("action-error"), result.error); return; }
      applyRun(result.data);
      last.status = result.data.status;
      $("cancel-button").disabled = false;
      $("cancel-button").textContent = "Cancel run";
      TuneDeck.poll(tick, 2000);  // the earlier loop stopped when the run ended
    });
  });

  // ---- Charts ------------------------------------------------------------------------------
  var FIRST = ["loss", "learning_rate", "grad_norm"];

  function groupOf(name) {
    if (DPO) return dpoGroup(name);
    if (GRPO) return grpoGroup(name);
    return name === "eval_loss" ? "loss" : name.replace(/^eval_/, "");
  }

  // ---- DPO: preference curves right after the loss; chosen and rejected share a chart ------
  // so that the gap between them (the margin) reads at a glance. Train and eval overlay as usual.
  var DPO = root.getAttribute("data-strategy") === "dpo";
  var DPO_PAIRED = /^(rewards|logps|logits)\/(chosen|rejected)$/;
  if (DPO) FIRST.splice(1, 0, "rewards/margins", "rewards/accuracies", "rewards/chosen vs rejected");

  function dpoGroup(name) {
    var base = name === "eval_loss" ? "loss" : name.replace(/^eval_/, "");
    var paired = DPO_PAIRED.exec(base);
    return paired ? paired[1] + "/chosen vs rejected" : base;
  }

  // ---- GRPO: total reward and each function's mean share the page's Reward chart (#chart-reward,
  // runs/_grpo_panels.html); spreads, completion lengths and clip ratios are grouped likewise.
  var GRPO = root.getAttribute("data-strategy") === "grpo";
  if (GRPO) FIRST.splice(1, 0, "kl", "entropy", "completion length", "completions/clipped_ratio");

  function grpoGroup(name) {
    var base = name === "eval_loss" ? "loss" : name.replace(/^eval_/, "");
    if (/^rewards\/[^/]+\/mean$/.test(base)) return "reward";
    if (base === "reward_std" || /^rewards\/[^/]+\/std$/.test(base)) return "reward std";
    if (/^completions\/.*length$/.test(base)) return "completion length";
    if (/^clip_ratio\//.test(base)) return "clip ratio";
    return base;
  }

  function groups(metrics) {
    var found = {};
    Object.keys(metrics).sort().forEach(function (name) {
      if (!isCurve(name) || !metrics[name].length || duplicateOfTotal(name, metrics)) return;
      var group = groupOf(name);
      (found[group] = found[group] || []).push(name);
    });
    return found;
  }

  /* GRPO with one reward function: its rewards/<fn>/mean (and /std) is the total reward (and
     reward_std) again, scaled by its weight: one line, not two. */
  function duplicateOfTotal(name, metrics) {
    var m = /^(eval_)?rewards\/([^/]+)\/(mean|std)$/.exec(name);
    if (!GRPO || !m) return false;
    var prefix = m[1] || "";
    var total = prefix + (m[3] === "mean" ? "reward" : "reward_std");
    if (!metrics[total] || !metrics[total].length) return false;
    var pattern = new RegExp("^" + prefix + "rewards\\/[^/]+\\/" + m[3] + "$");
    return Object.keys(metrics).filter(function (n) { return pattern.test(n); }).length === 1;
  }

  function smoothing() {
    var slider = $("run-smoothing");
    return slider ? parseFloat(slider.value) || 0 : 0;
  }

  function traces(names, metrics) {
    // Train curve first (data[0] of chart-loss is the loss), evaluation overlaid dashed.
    // Smoothing (EMA, as on compare) applies to training curves; evaluations are few points.
    var alpha = smoothing();
    names.sort(function (a, b) { return (a.indexOf("eval_") === 0) - (b.indexOf("eval_") === 0); });
    return names.map(function (name, i) {
      var points = metrics[name];
      var isEval = name.indexOf("eval_") === 0;
      var values = points.map(function (p) { return p[1]; });
      return {
        x: points.map(function (p) { return p[0]; }), y: isEval ? values : ema(values, alpha),
        name: name, type: "scatter", mode: isEval || points.length < 30 ? "lines+markers" : "lines",
        line: { color: colourAt(i), width: 2, dash: isEval ? "dash" : "solid" },
        marker: { size: isEval ? 7 : 4 },
      };
    });
  }

  // Steps each resume continued from (dotted lines on every chart); applyRun keeps it current.
  var resumePoints = JSON.parse(root.getAttribute("data-resume-points") || "[]");
  var lastMetrics = null;

  /* The legend goes under the chart (drawLegend), the y axis says what is drawn, whole steps
     on x, one early point drawn where it is, resumes marked. */
  function layout(group, data) {
    var flat = flatRange(data);
    var marks = resumeMarks(resumePoints);
    return Object.assign(baseLayout({ showLegend: false, yTitle: metricTitle(group),
                                      xaxis: stepAxis(data), yaxis: flat ? { range: flat } : {} }),
                         { shapes: marks.shapes, annotations: marks.annotations, meta: group });
  }


  function chartDiv(group) {
    var id = "chart-" + group.replace(/[^A-Za-z0-9_-]+/g, "-");
    var div = $(id);
    if (div) return div;
    var wrap = document.createElement("div");
    var title = document.createElement("h3");
    title.textContent = metricTitle(group);
    div = document.createElement("div");
    div.id = id;
    div.className = "chart chart-small";
    wrap.appendChild(title);
    wrap.appendChild(div);
    $("charts-extra").appendChild(wrap);
    return div;
  }

  function drawCharts(metrics) {
    if (typeof Plotly === "undefined") {
      $("chart-loss-empty").textContent = "Charts could not load (/static/vendor/plotly.min.js).";
      return;
    }
    lastMetrics = metrics;
    var found = groups(metrics);
    var order = FIRST.filter(function (g) { return found[g]; })
      .concat(Object.keys(found).filter(function (g) { return FIRST.indexOf(g) < 0; }).sort());
    order.forEach(function (group) {
      var data = traces(found[group], metrics);
      var div = group === "loss" ? $("chart-loss") : chartDiv(group);
      // Charts the page places itself (loss; GRPO's reward) carry a "no points yet" note.
      var note = div.querySelector(".chart-empty");
      if (note) note.hidden = true;
      div.classList.remove("is-empty");
      Plotly.react(div, data, layout(group, data), CONFIG);
      drawLegend(div, data);
    });
  }

  var smoothingSlider = $("run-smoothing");
  if (smoothingSlider) smoothingSlider.addEventListener("input", function () {
    $("run-smoothing-value").textContent = this.value;
    if (lastMetrics) drawCharts(lastMetrics);
  });

  function refreshMetrics() {
    return TuneDeck.api("GET", base + "/series").then(function (result) {
      if (result.ok) drawCharts(result.data.metrics);
    });
  }

  // ---- Checkpoints -------------------------------------------------------------------------
  function renderCheckpoints(checkpoints) {
    var tbody = document.querySelector("#checkpoints-table tbody");
    var template = $("checkpoint-row-template");
    tbody.textContent = "";
    checkpoints.forEach(function (c) {
      var row = template.content.firstElementChild.cloneNode(true);
      field(row, "step").textContent = c.step;
      field(row, "metric_name").textContent = c.metric_name || "—";
      field(row, "metric_value").textContent = TuneDeck.number(c.metric_value);
      field(row, "best").hidden = !c.is_best;
      TuneDeck.setTime(field(row, "created_at"), c.created_at);
      field(row, "download").href = base + "/checkpoints/" + c.step + "/download";
      tbody.appendChild(row);
    });
    $("checkpoint-count").textContent = checkpoints.length;
    $("checkpoints-wrap").hidden = !checkpoints.length;
    $("checkpoints-empty").hidden = !!checkpoints.length;
  }

  function refreshCheckpoints() {
    return TuneDeck.api("GET", base + "/checkpoints").then(function (result) {
      if (result.ok) renderCheckpoints(result.data);
    });
  }

  // ---- Polling -----------------------------------------------------------------------------
  function tick() {
    return TuneDeck.api("GET", base).then(function (result) {
      if (!result.ok) return true;
      var run = result.data;
      applyRun(run);
      var best = run.best_checkpoint ? run.best_checkpoint.id + ":" + run.best_checkpoint.step : null;
      var changed = run.step !== last.step || best !== last.best || run.status !== last.status;
      last = { status: run.status, step: run.step, best: best };
      var terminal = TuneDeck.TERMINAL.indexOf(run.status) >= 0;
      if (terminal && !$("chart-loss").data) {
        $("chart-loss-empty").textContent = "This run logged no loss.";
      }
      var work = [refreshMetrics()];
      if (changed || terminal) work.push(refreshCheckpoints());
      // Terminal: this was the final refresh; stop polling.
      return Promise.all(work).then(function () { return !terminal; });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    refreshMetrics();
    if (TuneDeck.TERMINAL.indexOf(last.status) < 0) TuneDeck.poll(tick, 2000);
  });
})();
