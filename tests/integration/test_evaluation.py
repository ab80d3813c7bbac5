"""Evaluation and playground through real parts: a 2-step SFT run of tiny-random-llama with an
eval split, evaluated (adapter vs base) by a real Celery worker, per-example rows stored; the
playground answers from base and adapter; requests that cannot work get clear 4xx answers."""

from __future__ import annotations

import time

import pytest

from tests.integration.test_sft_run import ROWS, upload_jsonl


def wait_for(client, url: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if body["status"] in ("completed", "failed"):
            return body
        time.sleep(0.5)
    raise AssertionError(f"{url} did not finish: {body}")


@pytest.fixture(scope="module")
def sft_run(live_server):
    with live_server.client() as client:
        dataset = upload_jsonl(client, ROWS, name="eval-rows.jsonl")
        response = client.post("/api/runs", json={
            "dataset_id": dataset["id"], "strategy": "sft", "base_model": "tiny-random-llama",
            "name": "eval-sft", "hyperparameters": {
                "max_steps": 2, "save_steps": 2, "eval_split": 0.25, "seed": 3,
                "per_device_train_batch_size": 2, "learning_rate": 1e-3, "max_length": 64}})
        assert response.status_code == 201, response.text
    run = live_server.wait_for_run(response.json()["id"])
    assert run["status"] == "completed", f"{run['error']}\n{live_server.logs()}"
    return run


@pytest.mark.slow
def test_evaluation_of_adapter_against_base(live_server, sft_run):
    run_id = sft_run["id"]
    with live_server.client() as client:
        response = client.post(f"/api/runs/{run_id}/evaluations",
                               json={"checkpoint": 2, "limit": 50, "max_new_tokens": 8})
        assert response.status_code == 201, response.text
        evaluation = wait_for(client, f"/api/evaluations/{response.json()['id']}")
        assert evaluation["status"] == "completed", f"{evaluation['error']}\n{live_server.logs()}"
        assert evaluation["split"] == "eval" and evaluation["checkpoint_step"] == 2
        scores = {s["name"]: s for s in evaluation["results"]["scores"]}
        assert set(scores) == {"exact_match", "normalized_match", "loss"}
        loss = scores["loss"]
        assert loss["n"] == 6 and loss["base_mean"] > 0 and loss["tuned_mean"] > 0
        assert loss["ci_low"] <= loss["diff"] <= loss["ci_high"]
        assert loss["verdict"] in ("better", "worse", "no difference") and loss["summary"]

        # The held-out rows are exactly the rows the run did not train on (seeded split).
        from app.domain.training_rows import split_rows

        _, held_out = split_rows(ROWS, eval_split=0.25, seed=3)
        examples = client.get(f"/api/evaluations/{evaluation['id']}/examples").json()
        assert examples["total"] == 6 and examples["primary"] == "loss"
        assert [e["prompt"] for e in examples["examples"]] == [r["prompt"] for r in held_out]
        assert [e["reference"] for e in examples["examples"]] == [r["completion"] for r in held_out]
        for example in examples["examples"]:
            assert isinstance(example["base_output"], str)
            assert isinstance(example["tuned_output"], str)
            assert set(example["tuned_scores"]) == {"exact_match", "normalized_match", "loss"}
        worse = client.get(f"/api/evaluations/{evaluation['id']}/examples?filter=tuned_worse")
        assert all(e["tuned_vs_base"] == "worse" for e in worse.json()["examples"])
        ordered = client.get(f"/api/evaluations/{evaluation['id']}/examples?sort=diff").json()
        gains = [e["base_scores"]["loss"] - e["tuned_scores"]["loss"]
                 for e in ordered["examples"]]
        assert gains == sorted(gains)

        # Completing the run queued an automatic evaluation of its best checkpoint.
        listed = client.get(f"/api/runs/{run_id}/evaluations").json()
        assert any(e["params"].get("reason") == "automatic" for e in listed)
        both = client.get(f"/api/evaluations?run_ids={run_id},999999").json()
        assert {e["id"] for e in both} == {e["id"] for e in listed}

        best = client.post(f"/api/runs/{run_id}/checkpoints/best", json={"score": "loss"})
        assert best.status_code == 200 and best.json()["step"] == 2 and best.json()["is_best"]
        page = client.get(f"/evaluations/{evaluation['id']}")
        assert page.status_code == 200 and "Tuned − base" in page.text


@pytest.mark.slow
def test_playground_answers_from_base_and_adapter(live_server, sft_run):
    with live_server.client() as client:
        response = client.post("/api/playground", json={
            "run_id": sft_run["id"], "checkpoint": "best", "prompt": "Say the word number 5.",
            "temperature": 0, "max_new_tokens": 6})
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "queued"
        generation = wait_for(client, f"/api/playground/{response.json()['id']}")
        assert generation["status"] == "completed", f"{generation['error']}\n{live_server.logs()}"
        assert isinstance(generation["base_output"], str)
        assert isinstance(generation["tuned_output"], str)
        prompts = client.get(f"/api/runs/{sft_run['id']}/prompts?limit=3").json()
        assert prompts == [r["prompt"] for r in ROWS[:3]]
        assert client.get("/playground").status_code == 200


@pytest.mark.slow
@pytest.mark.parametrize("body, status, message", [
    ({"checkpoint": 99}, 422, "no checkpoint at step 99"),
    ({"dataset_id": 999999}, 404, "dataset 999999 not found"),
    ({"scorers": ["margin"]}, 422, "applies to dpo runs only"),
    ({"samples": 4}, 422, "GRPO runs only"),
    ({"limit": 0}, 422, "limit"),
])
def test_evaluation_requests_that_cannot_work(live_server, sft_run, body, status, message):
    with live_server.client() as client:
        response = client.post(f"/api/runs/{sft_run['id']}/evaluations", json=body)
        assert response.status_code == status and message in response.json()["detail"]
        assert client.post("/api/runs/999999/evaluations", json={}).status_code == 404
        empty = client.post("/api/playground", json={"run_id": sft_run["id"], "prompt": "  "})
        assert empty.status_code == 422 and "prompt is empty" in empty.json()["detail"]
        assert client.get("/api/evaluations/999999").status_code == 404
