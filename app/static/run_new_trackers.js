/* Launch form: the "Mirror metrics to trackers" section (partials/run_new_trackers.html).
   run_new.js asks Trackers.collect() for the request's `trackers`: nothing until the user
   changes a field there, so the server's defaults (TUNEDECK_MLFLOW_TRACKING_URI,
   TUNEDECK_TENSORBOARD, TUNEDECK_WANDB_PROJECT, TUNEDECK_TRACKIO_PROJECT) apply otherwise. */
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
    var wandbProject = form.elements.wandb_project.value.trim();
    if (wandbProject) {
      trackers.wandb = { project: wandbProject };
      var entity = form.elements.wandb_entity.value.trim();
      if (entity) trackers.wandb.entity = entity;
      if (form.elements.wandb_offline.checked) trackers.wandb.mode = "offline";
    }
    var trackioProject = form.elements.trackio_project.value.trim();
    if (trackioProject) trackers.trackio = { project: trackioProject };
    return trackers;
  }

  return { collect: collect };
})();
