"""The new-run form's "Where it runs" section: backend and queue reach the run."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.browser
ROWS = [{"prompt": f"Spell {w}.", "completion": " " + "-".join(w)} for w in ("cat", "dog", "owl")]


def test_backend_and_queue_from_the_form(page, live_server):
    with live_server.client() as client:
        body = "\n".join(json.dumps(row) for row in ROWS).encode()
        files = {"file": ("spell.jsonl", body, "application/json")}
        dataset = client.post("/api/datasets", files=files).json()
    page.goto(f"{live_server.url}/runs/new?dataset_id={dataset['id']}")
    page.locator("#advanced-placement summary").click()
    page.select_option("#field-backend", "trl")
    page.fill("#field-queue", "not a queue!")
    page.click("#run-submit")
    error = page.locator('[data-field-name="queue"] .field-error')
    error.wait_for(state="visible")
    assert "queue" in page.locator("#run-error").inner_text().lower()
    page.screenshot(path="/tmp/run-placement-form.png", full_page=True)

    page.fill("#field-queue", "gpu-7")  # no worker listens there: the run stays queued
    page.click("#run-submit")
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    run_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    with live_server.client() as client:
        run = client.get(f"/api/runs/{run_id}").json()
        assert (run["requested_backend"], run["queue"], run["status"]) == ("trl", "gpu-7", "queued")
        assert client.post(f"/api/runs/{run_id}/cancel").status_code in (200, 202)
