"""POST /api/runs/{id}/evaluations on another dataset refuses, before queueing anything, a GRPO
run whose rewards read a column that dataset does not give them (in process; the run is queued
where nobody listens and its checkpoint row is written straight into the database)."""

from __future__ import annotations

import json

import pytest

from app.domain.models import Checkpoint


def upload(client, rows, name):
    body = "\n".join(json.dumps(row) for row in rows).encode()
    response = client.post("/api/datasets", files={"file": (name, body)})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def grpo_run(client):
    dataset = upload(client, [{"prompt": f"{i} + {i}?", "answer": str(2 * i)} for i in range(6)],
                     "sums-with-answers.jsonl")
    response = client.post("/api/runs", json={
        "dataset_id": dataset["id"], "strategy": "grpo", "base_model": "tiny-random-llama",
        "queue": "nobody-listens", "reward_functions": [{"name": "exact_answer"}],
        "hyperparameters": {"per_device_train_batch_size": 2, "num_generations": 2,
                            "eval_split": 0.25}})
    assert response.status_code == 201, response.text
    run = response.json()
    from app.core.db import SessionLocal

    with SessionLocal() as session:
        session.add(Checkpoint(run_id=run["id"], step=2, storage_key=f"runs/{run['id']}/c2",
                               metric_name="reward", metric_value=0.5, is_best=True))
        session.commit()
    return run


def test_evaluating_on_a_dataset_without_the_reward_column_is_422(client, grpo_run):
    other = upload(client, [{"prompt": "1 + 1?", "solution": "2", "level": 1}],
                   "sums-with-solutions.jsonl")
    url = f"/api/runs/{grpo_run['id']}/evaluations"
    before = len(client.get(url).json())
    response = client.post(url, json={"checkpoint": 2, "dataset_id": other["id"]})
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == (
        f"dataset {other['id']}: reward function 'exact_answer' reads column 'answer', which "
        "dataset 'sums-with-solutions' does not have (columns rewards receive: solution, level): "
        "evaluate on a dataset with that column, or on the run's eval split")
    assert len(client.get(url).json()) == before  # nothing stored, nothing queued

    # A prompt/completion dataset gives the rewards its completion as "answer": accepted.
    completions = upload(client, [{"prompt": "1 + 1?", "completion": "2"}], "sums-pc.jsonl")
    accepted = client.post(url, json={"checkpoint": 2, "dataset_id": completions["id"]})
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["dataset_id"] == completions["id"]
