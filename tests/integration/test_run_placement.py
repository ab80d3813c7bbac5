"""Where a run trains: its backend and queue, from the form and the API to the worker."""

from __future__ import annotations

import json

import pytest

ROWS = [{"prompt": f"Count to {i}.", "completion": " " + " ".join(map(str, range(i)))}
        for i in range(1, 9)]


def upload(client) -> int:
    body = "\n".join(json.dumps(row) for row in ROWS).encode()
    files = {"file": ("count.jsonl", body, "application/json")}
    response = client.post("/api/datasets", files=files)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_queue_and_backend_are_validated_and_kept(client):
    dataset_id = upload(client)
    spec = {"dataset_id": dataset_id, "base_model": "tiny-random-llama"}
    bad_queue = client.post("/api/runs", json={**spec, "queue": "gpu 1; rm"})
    assert bad_queue.status_code == 422 and "queue" in bad_queue.text, bad_queue.text
    bad_backend = client.post("/api/runs", json={**spec, "backend": "vllm"})
    assert bad_backend.status_code == 422 and "backend" in bad_backend.text, bad_backend.text

    four_bit = client.post("/api/runs", json={**spec, "backend": "trl",
                                              "hyperparameters": {"load_in_4bit": True}})
    assert four_bit.status_code == 422 and "load_in_4bit" in four_bit.text, four_bit.text

    response = client.post("/api/runs", json={**spec, "queue": "gpu-1", "backend": "unsloth"})
    assert response.status_code == 201, response.text
    run = response.json()
    assert (run["queue"], run["requested_backend"], run["backend"]) == ("gpu-1", "unsloth", None)
    client.post(f"/api/runs/{run['id']}/cancel")  # no worker listens on gpu-1 here


def test_new_run_form_offers_backend_and_queue(client):
    upload(client)
    page = client.get("/runs/new?backend=trl&queue=gpu-0").text
    assert 'id="field-backend"' in page and 'id="field-queue"' in page
    assert '<option value="trl" selected>' in page
    assert 'value="gpu-0"' in page


@pytest.mark.slow
def test_unsloth_on_a_cpu_worker_fails_fast_and_says_why(live_server):
    with live_server.client() as client:
        dataset_id = upload(client)
        response = client.post("/api/runs", json={
            "dataset_id": dataset_id, "base_model": "tiny-random-llama", "backend": "unsloth",
            "hyperparameters": {"max_steps": 2, "max_length": 64},  # prompts ~36 tokens templated
        })
        assert response.status_code == 201, response.text
        run = live_server.wait_for_run(response.json()["id"], timeout=120)
    assert run["status"] == "failed"
    assert "unsloth backend requested but this worker has no CUDA GPU" in run["error"]
    assert run["step"] == 0
