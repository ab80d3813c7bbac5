/* Datasets page: upload with a progress bar, then "validating…", errors under the form. */
import { TuneDeck } from "/static/app.js";
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) return;
  var fileInput = document.getElementById("upload-file");
  var fileLabel = document.getElementById("upload-file-label");
  var dropzone = document.getElementById("upload-dropzone");
  var submit = document.getElementById("upload-submit");
  var status = document.getElementById("upload-status");
  var bar = document.getElementById("upload-progress");
  var statusText = document.getElementById("upload-status-text");
  var errorBox = document.getElementById("upload-error");
  var defaultLabel = fileLabel.textContent;
  submit.disabled = false;  // rendered disabled until this script handles the upload

  function showFileName() {
    var file = fileInput.files[0];
    fileLabel.textContent = file ? file.name : defaultLabel;
    TuneDeck.showError(errorBox, "");
  }
  fileInput.addEventListener("change", showFileName);

  ["dragenter", "dragover"].forEach(function (type) {
    dropzone.addEventListener(type, function (event) {
      event.preventDefault();
      dropzone.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    dropzone.addEventListener(type, function () { dropzone.classList.remove("dragging"); });
  });
  dropzone.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) {
      fileInput.files = event.dataTransfer.files;
      showFileName();
    }
  });

  function setBusy(busy) {
    submit.disabled = busy;
    fileInput.disabled = busy;
    status.hidden = !busy;
  }

  var demoButton = document.getElementById("demo-button");
  if (demoButton) {
    demoButton.form.addEventListener("submit", function () {
      demoButton.disabled = true;  // the server counts tokens: this takes a few seconds
      demoButton.textContent = "Loading the demo dataset…";
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var file = fileInput.files[0];
    if (!file) {
      TuneDeck.showError(errorBox, "Choose a .jsonl, .json, .csv or .parquet file first.");
      return;
    }
    var body = new FormData();
    body.append("file", file);
    var name = document.getElementById("upload-name").value.trim();
    if (name) body.append("name", name);

    TuneDeck.showError(errorBox, "");
    setBusy(true);
    bar.max = 1;
    bar.value = 0;
    statusText.textContent = "Uploading " + file.name + "…";
    TuneDeck.api("POST", "/api/datasets", body, {
      onUploadProgress: function (fraction) {
        bar.value = fraction;
        statusText.textContent = "Uploading " + file.name + "… " + Math.round(fraction * 100) + "%";
      },
      onUploaded: function () {
        bar.removeAttribute("value");  // indeterminate while the server checks every row
        statusText.textContent = "Validating rows and counting tokens…";
      },
    }).then(function (result) {
      if (result.ok) {
        statusText.textContent = "Done: opening the dataset…";
        window.location.assign("/datasets/" + result.data.id);
        return;
      }
      setBusy(false);
      TuneDeck.showError(errorBox, result.error);
    });
  });
})();
