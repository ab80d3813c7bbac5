/* TuneDeck's one DOM and API helper module (an ES module every page imports): the API call
   helper, formatting, badges, progress, polling.
   User content is only ever inserted with textContent. */
export const TuneDeck = (function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : null;
  }

  function errorMessage(status, data, fallback) {
    if (data && typeof data.detail === "string") return data.detail;
    if (data && Array.isArray(data.detail)) {
      return data.detail.map(function (e) {
        var where = (e.loc || []).filter(function (p) { return p !== "body"; }).join(".");
        return where ? where + ": " + e.msg : e.msg;
      }).join("; ");
    }
    if (status === 413) return "The file is too large for this server.";
    return fallback || ("The server answered " + status + ".");
  }

  /* Every API call from the pages: JSON in and out (or FormData for uploads), the CSRF header
     when the page carries a token. Resolves (never rejects) with {ok, status, data, error}. */
  function api(method, url, body, options) {
    options = options || {};
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("Accept", "application/json");
      var token = csrfToken();
      if (token) xhr.setRequestHeader("X-CSRF-Token", token);
      var payload = null;
      if (typeof FormData !== "undefined" && body instanceof FormData) {
        payload = body;  // the browser sets the multipart boundary
      } else if (body !== undefined && body !== null) {
        xhr.setRequestHeader("Content-Type", "application/json");
        payload = JSON.stringify(body);
      }
      if (options.onUploadProgress) {
        xhr.upload.addEventListener("progress", function (event) {
          if (event.lengthComputable) options.onUploadProgress(event.loaded / event.total);
        });
      }
      if (options.onUploaded) xhr.upload.addEventListener("load", options.onUploaded);
      xhr.addEventListener("load", function () {
        var data = null;
        try { data = xhr.responseText ? JSON.parse(xhr.responseText) : null; } catch (e) { data = null; }
        var ok = xhr.status >= 200 && xhr.status < 300;
        resolve({ ok: ok, status: xhr.status, data: data,
                  error: ok ? null : errorMessage(xhr.status, data, xhr.statusText),
                  header: function (name) { return xhr.getResponseHeader(name); } });
      });
      xhr.addEventListener("error", function () {
        resolve({ ok: false, status: 0, data: null,
                  error: "Could not reach the TuneDeck server. Is it still running?" });
      });
      xhr.send(payload);
    });
  }

  /* '45 s', '2 min 10 s', '1 h 5 min' (same rules as page_helpers.human_duration). */
  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds) || seconds < 0) return "";
    var total = Math.round(seconds);
    if (total < 60) return total + " s";
    var minutes = Math.floor(total / 60), secs = total % 60;
    if (minutes < 60) return secs ? minutes + " min " + secs + " s" : minutes + " min";
    var hours = Math.floor(minutes / 60);
    minutes = minutes % 60;
    if (hours < 24) return minutes ? hours + " h " + minutes + " min" : hours + " h";
    var days = Math.floor(hours / 24);
    hours = hours % 24;
    return hours ? days + " d " + hours + " h" : days + " d";
  }

  function number(value) {
    if (value === null || value === undefined) return "—";
    if (typeof value !== "number") return String(value);
    if (!isFinite(value)) return String(value);
    if (Number.isInteger(value)) return value.toLocaleString("en-US");
    return String(Number(value.toPrecision(4)));
  }

  /* 'loss (moving average of 5)' → 'loss (avg)' (as page_helpers.short_metric). */
  function shortMetric(name) {
    return String(name || "").replace(/\s*\(moving average of \d+\)/, " (avg)");
  }

  var timeFormat = new Intl.DateTimeFormat(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });

  /* Fill a <time> element from an ISO string (API times are UTC; shown in local time). */
  function setTime(el, iso) {
    if (!el) return;
    if (!iso) { el.textContent = "—"; el.removeAttribute("datetime"); el.title = ""; return; }
    var date = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : iso + "Z");
    el.setAttribute("datetime", iso);
    el.textContent = isNaN(date) ? iso : timeFormat.format(date);
    el.title = isNaN(date) ? "" : date.toLocaleString();
  }

  function localizeTimes(root) {
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      setTime(el, el.getAttribute("datetime"));
    });
  }

  var STATUSES = ["queued", "running", "completed", "failed", "cancelled", "pruned"];
  var TERMINAL = ["completed", "failed", "cancelled", "pruned"];

  function setBadge(el, status) {
    if (!el) return;
    STATUSES.forEach(function (s) { el.classList.remove("badge-" + s); });
    el.classList.add("badge", "badge-" + status);
    el.textContent = status;
  }

  /* Progress bar and its caption for a run (RunPublic JSON). */
  /* Same rules as macros.progress_text: a resumed run waiting again keeps its "7 / 24"; a
     running one names its phase (preparing the model, loading data, evaluating…) and for how
     long it has been in it, until it trains. */
  function progressText(run) {
    var steps = run.max_steps ? run.step + " / " + run.max_steps : "step " + run.step;
    if (run.status === "queued") return (run.step > 0 ? steps + " · " : "") + "waiting for a worker";
    if (run.status === "running") {
      if (run.phase && run.phase !== "training" && run.phase_label) {
        return steps + " · " + run.phase_label + " · " + (duration(run.phase_seconds) || "0 s");
      }
      var eta = duration(run.eta_seconds);
      return steps + (eta ? " · " + eta + " left" : "");
    }
    if (run.status === "completed") return steps + " · done";
    return steps + " · " + run.status;
  }

  function setProgress(bar, run) {
    if (!bar) return;
    bar.classList.toggle("done", run.status === "completed");
    bar.classList.toggle("stopped", ["failed", "cancelled", "pruned"].indexOf(run.status) >= 0);
    if ((run.status === "queued" && !run.step) || (run.status === "running" && run.progress === null)) {
      bar.removeAttribute("value");  // indeterminate
    } else {
      bar.max = 1;
      bar.value = run.progress === null ? (run.status === "completed" ? 1 : 0) : run.progress;
    }
  }

  /* Call fn every intervalMs, never overlapping; fn returns a promise resolving to false to stop.
     Skips turns while the tab is hidden. Returns a function that stops the loop. */
  function poll(fn, intervalMs) {
    var stopped = false, timer = null;
    function tick() {
      if (stopped) return;
      if (document.hidden) { timer = setTimeout(tick, intervalMs); return; }
      Promise.resolve(fn()).then(function (more) {
        if (more !== false && !stopped) timer = setTimeout(tick, intervalMs);
      }, function () { if (!stopped) timer = setTimeout(tick, intervalMs); });
    }
    timer = setTimeout(tick, intervalMs);
    return function () { stopped = true; clearTimeout(timer); };
  }

  function showError(el, message) {
    if (!el) return;
    el.textContent = message || "";
    el.hidden = !message;
  }

  function readJson(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  document.addEventListener("DOMContentLoaded", function () { localizeTimes(document); });

  return {
    api: api, duration: duration, number: number, setTime: setTime, localizeTimes: localizeTimes,
    setBadge: setBadge, setProgress: setProgress, progressText: progressText, poll: poll,
    showError: showError, readJson: readJson, shortMetric: shortMetric, TERMINAL: TERMINAL,
  };

})();
