"""The new-run form's "Mirror metrics to trackers" section: what is filled in reaches the run."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.browser
ROWS = [{"prompt": f"Spell {w}.", "completion": " " + "-".join(w)} for w in ("cat", "dog", "owl")]


def test_trackers_from_the_form(page, live_server):
    with live_server.client() as client:
        body = "\n".join(json.dumps(row) for row in ROWS).encode()
        files = {"file": ("spell.jsonl", body, "application/json")}
        dataset = client.post("/api/datasets", files=files).json()
    page.goto(f"{live_server.url}/runs/new?dataset_id={dataset['id']}")
    page.locator("#advanced-trackers summary").click()
    page.fill("#field-mlflow-uri", "http://127.0.0.1:9")
    page.fill("#field-mlflow-experiment", "from-the-form")
    page.check("#field-tensorboard")
    page.fill("#field-wandb-project", "form-runs")
    page.check("#field-wandb-offline")
    page.fill("#field-trackio-project", "form-local")
    page.locator("#advanced-placement summary").click()
    page.fill("#field-queue", "gpu-7")  # no worker listens there: the run stays queued
    page.click("#run-submit")
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    run_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    assert page.locator('#run-trackers tr[data-tracker="mlflow"]').inner_text().count(
        "http://127.0.0.1:9") == 1
    assert "form-runs" in page.locator('#run-trackers tr[data-tracker="wandb"]').inner_text()
    with live_server.client() as client:
        run = client.get(f"/api/runs/{run_id}").json()
        assert run["trackers"] == {"mlflow": {"tracking_uri": "http://127.0.0.1:9",
                                              "experiment": "from-the-form"},
                                   "tensorboard": True,
                                   "wandb": {"project": "form-runs", "entity": None,
                                             "mode": "offline"},
                                   "trackio": {"project": "form-local"}}
        assert client.post(f"/api/runs/{run_id}/cancel").status_code in (200, 202)
