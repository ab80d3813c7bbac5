"""Picking "2 processes" on the new-run form: the global batch follows the inputs, the run gets
the placement, and its page shows it."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.browser
ROWS = [{"prompt": f"Spell {w}.", "completion": " " + "-".join(w)} for w in ("cat", "dog", "owl")]


def test_two_processes_from_the_form(page, live_server):
    with live_server.client() as client:
        body = "\n".join(json.dumps(row) for row in ROWS).encode()
        files = {"file": ("spell.jsonl", body, "application/json")}
        dataset = client.post("/api/datasets", files=files).json()
    page.goto(f"{live_server.url}/runs/new?dataset_id={dataset['id']}")
    page.locator("#advanced-placement summary").click()
    page.locator("#advanced-sft summary").click()
    page.fill("#hp-sft-per_device_train_batch_size", "2")
    page.fill("#hp-sft-gradient_accumulation_steps", "3")
    page.fill("#field-num_processes", "2")
    assert page.locator("#global-batch").inner_text().startswith("12 = 2 × 2 processes")

    page.fill("#field-num_processes", "64")  # more than this 2-core worker has
    page.click("#run-submit")
    page.locator('[data-field-name="num_processes"] .field-error').wait_for(state="visible")
    assert "use at most" in page.locator("#run-error").inner_text()

    page.fill("#field-num_processes", "2")
    page.fill("#hp-sft-max_steps", "2")
    page.click("#run-submit")
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    assert "2 processes (ddp)" in page.locator("#placement-summary").inner_text()
    assert "global batch 12" in page.locator("#placement-summary").inner_text()
    run_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    run = live_server.wait_for_run(run_id, timeout=300)
    assert run["status"] == "completed", run["error"]
    assert run["hyperparameters"]["num_processes"] == 2
