"""GRPO end to end through real parts: upload prompt + answer rows → queued GRPO run → Celery
worker trains tiny-random-llama → reward and per-function metrics, scored samples and ranked
checkpoints in the database; and a custom reward failing mid-training fails the run with its
own message."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app.core.config import settings
from tests.conftest import ROOT

ROWS = [{"prompt": f"What is {i} + {i + 1}?", "answer": str(2 * i + 1)} for i in range(8)]
FUNCTIONS = ("exact_answer", "soft_format")


def upload_jsonl(client, rows, name="sums.jsonl") -> dict:
    body = "\n".join(json.dumps(r) for r in rows).encode()
    response = client.post("/api/datasets", files={"file": (name, body, "application/json")})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.slow
def test_grpo_run_end_to_end(live_server):
    server = live_server
    with server.client() as client:
        dataset = upload_jsonl(client, ROWS)
        assert dataset["format"] == "prompt_only" and "answer" in dataset["columns"]
        response = client.post("/api/runs", json={
            "dataset_id": dataset["id"], "strategy": "grpo", "base_model": "tiny-random-llama",
            "name": "e2e-grpo",
            "reward_functions": [{"name": "exact_answer", "weight": 1.0},
                                 {"name": "soft_format", "weight": 0.25}],
            "hyperparameters": {"max_steps": 2, "save_steps": 1, "eval_split": 0.25,
                                "per_device_train_batch_size": 2, "num_generations": 2,
                                "max_completion_length": 16, "sample_every_steps": 1,
                                "learning_rate": 1e-3, "system_prompt": "Answer briefly."},
        })
        assert response.status_code == 201, response.text
        run = server.wait_for_run(response.json()["id"])
        assert run["status"] == "completed", f"{run['error']}\n{server.logs()}"
        assert run["step"] == 2
        # Stored with their defaults filled in: the run page lists every setting.
        assert run["reward_functions"] == [
            {"name": "exact_answer", "weight": 1.0, "params": {"column": "answer"}},
            {"name": "soft_format", "weight": 0.25, "params": {}}]

        metrics = client.get(f"/api/runs/{run['id']}/metrics").json()["metrics"]
        for name in ("reward", "reward_std", "kl", "completions/mean_length",
                     *(f"rewards/{fn}/mean" for fn in FUNCTIONS),
                     *(f"rewards/{fn}/std" for fn in FUNCTIONS)):
            assert [step for step, _ in metrics.get(name, [])] == [1, 2], name
        # What TRL 1.16 logs while evaluating: the same keys with an "eval_" prefix.
        for name in ("eval_reward", *(f"eval_rewards/{fn}/mean" for fn in FUNCTIONS)):
            assert [step for step, _ in metrics.get(name, [])] == [1, 2], name
        assert all(0 <= value <= 1.25 for _, value in metrics["reward"])

        samples = client.get(f"/api/runs/{run['id']}/samples").json()
        assert {s["step"] for s in samples} == {1, 2}
        for sample in samples:
            assert sample["prompt"].startswith("What is ")
            assert isinstance(sample["completion"], str)
            assert set(sample["rewards"]) == set(FUNCTIONS)
            assert sample["extra"]["answer"] == str(int(sample["prompt"].split()[2]) * 2 + 1)

        checkpoints = client.get(f"/api/runs/{run['id']}/checkpoints").json()
        assert [c["step"] for c in checkpoints] == [1, 2]
        assert all(c["metric_name"] == "eval_reward" and c["metric_mode"] == "higher"
                   for c in checkpoints)
        best = [c for c in checkpoints if c["is_best"]]
        assert len(best) == 1
        eval_reward = dict(metrics["eval_reward"])
        assert best[0]["metric_value"] == pytest.approx(max(eval_reward.values()))
        assert run["best_checkpoint"]["step"] == best[0]["step"]


def train_in_child(run_id: int, **env) -> None:
    """The worker's training child, as worker.tasks starts it, on the in-process database."""
    from app.core.db import session_scope
    from app.domain.models import RunStatus
    from app.domain.runs import transition

    with session_scope() as session:
        assert transition(session, run_id=run_id, to=RunStatus.running)
    subprocess.run([sys.executable, "-m", "worker.train_process", str(run_id)], cwd=ROOT,
                   env={**os.environ, **env}, check=True, timeout=300, capture_output=True)


@pytest.mark.slow
def test_custom_reward_failing_mid_training_fails_the_run_with_its_message(client, monkeypatch):
    monkeypatch.setattr(settings, "allow_custom_rewards", True)
    dataset = upload_jsonl(client, ROWS)
    # The dry run's completions are the dataset answers, so it passes; the model's do not.
    code = ("def reward(completions, answer, **kwargs):\n"
            "    if completions != answer:\n"
            "        raise ValueError('cannot read ' + repr(completions[0][:0]))\n"
            "    return [1.0] * len(completions)\n")

    def launch() -> dict:
        response = client.post("/api/runs", json={
            "dataset_id": dataset["id"], "strategy": "grpo", "base_model": "tiny-random-llama",
            "queue": "nobody-listens",
            "reward_functions": [{"name": "soft_format", "weight": 0.5},
                                 {"name": "custom", "params": {"code": code}}],
            "hyperparameters": {"max_steps": 1, "per_device_train_batch_size": 2,
                                "num_generations": 2, "max_completion_length": 8}})
        assert response.status_code == 201, response.text
        return response.json()

    run = launch()
    train_in_child(run["id"], TUNEDECK_ALLOW_CUSTOM_REWARDS="true")
    failed = client.get(f"/api/runs/{run['id']}").json()
    assert failed["status"] == "failed"
    assert failed["error"] == "custom reward raised ValueError: cannot read '' at line 3"

    # Turned off after queueing: the worker refuses the code instead of running it.
    run = launch()
    train_in_child(run["id"], TUNEDECK_ALLOW_CUSTOM_REWARDS="false")
    refused = client.get(f"/api/runs/{run['id']}").json()
    assert refused["status"] == "failed"
    assert refused["error"].startswith("custom reward functions are disabled on this server")
