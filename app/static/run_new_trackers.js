/* Launch form: the "Mirror metrics to trackers" section (partials/run_new_trackers.html).
   run_new.js asks Trackers.collect() for the request's `trackers`: nothing until the user
   changes a field there, so the server's defaults (TUNEDECK_MLFLOW_TRACKING_URI,
   TUNEDECK_TENSORBOARD) apply otherwise. */
export const Trackers = (function () {
  "use strict";
  var section = document.getElementById("advanced-trackers");
  var changed = false;
  if (section) {
    section.addEventListener("input", function () { changed = true; });
    section.addEventListener("change", function () { changed = true; });
  }

  function collect(form) {
    if (!section || !changed) return undefined;
    var uri = form.elements.mlflow_tracking_uri.value.trim();
    var experiment = form.elements.mlflow_experiment.value.trim();
    var trackers = { tensorboard: form.elements.tensorboard.checked };
    if (uri) {
      trackers.mlflow = { tracking_uri: uri };
      if (experiment) trackers.mlflow.experiment = experiment;
    }
    return trackers;
  }

  return { collect: collect };
})();
