"""A big upload end to end on a live server: the request answers 202 with the dataset
"processing", the real Celery worker (datasets queue) processes it, and the dataset becomes
ready with its statistics, or failed with the row to fix."""

from __future__ import annotations

import json
import time

ROWS = [{"prompt": f"Question {i}: " + "how many? " * 8, "completion": f"{i} of them."}
        for i in range(3000)]
BODY = "\n".join(json.dumps(row) for row in ROWS).encode()  # over the 256 KB processed inline


def wait_processed(client, dataset_id: int, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dataset = client.get(f"/api/datasets/{dataset_id}").json()
        if dataset["status"] != "processing":
            return dataset
        time.sleep(0.5)
    raise AssertionError(f"dataset {dataset_id} still processing: {dataset}")


def test_big_upload_is_processed_by_the_worker(any_live_server):
    assert len(BODY) > 256 * 1024
    with any_live_server.client() as client:
        response = client.post("/api/datasets", files={"file": ("big.jsonl", BODY)})
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "processing"
        dataset = wait_processed(client, response.json()["id"])
        assert dataset["status"] == "ready", (dataset, any_live_server.logs())
        assert dataset["num_rows"] == 3000 and dataset["format"] == "prompt_completion"
        assert dataset["stats"]["fields"]["total"]["tokens"]["max"] > 0

        bad = BODY + b"\n" + json.dumps({"prompt": "x", "completion": None}).encode()
        response = client.post("/api/datasets", files={"file": ("bad.jsonl", bad)})
        assert response.status_code == 202
        failed = wait_processed(client, response.json()["id"])
        assert failed["status"] == "failed"
        assert "row 3001: column 'completion' is null" in failed["error"]
