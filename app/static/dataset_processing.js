/* Datasets a worker is still processing: poll each one's progress, reload when it is done. */
import { TuneDeck } from "/static/app.js";

const POLL_MS = 1000;

function watch(box) {
  const id = box.dataset.processingDataset;
  const bar = box.querySelector("progress");
  const text = box.querySelector(".progress-text");
  function poll() {
    TuneDeck.api("GET", "/api/datasets/" + id).then(function (result) {
      if (!result.ok) return setTimeout(poll, 5 * POLL_MS);
      if (result.data.status !== "processing") return window.location.reload();
      const fraction = result.data.progress || 0;
      bar.value = fraction;
      text.textContent = "Processing: checking every row and counting tokens… " +
        Math.round(fraction * 100) + "%";
      setTimeout(poll, POLL_MS);
    });
  }
  setTimeout(poll, POLL_MS);
}

document.querySelectorAll("[data-processing-dataset]").forEach(watch);
