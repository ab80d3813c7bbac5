"""DPO through the product: upload preference pairs → queued DPO run → the Celery worker trains
tiny-random-llama → preference metrics and a best checkpoint (by eval reward margin) in the API."""

from __future__ import annotations

import pytest

from tests.integration.test_sft_run import upload_jsonl

ROWS = [
    {"prompt": f"What is {i} + {i}?", "chosen": f" {i} + {i} = {2 * i}. Glad to help!",
     "rejected": " Work it out yourself."}
    for i in range(16)
]
PREFERENCE_CURVES = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies")


@pytest.mark.slow
def test_dpo_run_end_to_end(live_server):
    with live_server.client() as client:
        dataset = upload_jsonl(client, ROWS, name="pairs.jsonl")
        assert dataset["format"] == "preference"

        response = client.post("/api/runs", json={
            "dataset_id": dataset["id"], "strategy": "dpo", "base_model": "tiny-random-llama",
            "name": "e2e-dpo",
            "hyperparameters": {"max_steps": 4, "save_steps": 2, "eval_split": 0.25,
                                "per_device_train_batch_size": 2, "learning_rate": 1e-3,
                                "beta": 0.1, "loss_type": "sigmoid", "max_length": 64,
                                # with the chat template (default) a prompt is ~38 tokens
                                "max_prompt_length": 48},
        })
        assert response.status_code == 201, response.text
        run = live_server.wait_for_run(response.json()["id"])
        assert run["status"] == "completed", f"{run['error']}\n{live_server.logs()}"
        assert run["strategy"] == "dpo" and run["step"] == 4
        assert run["hyperparameters"]["beta"] == 0.1

        metrics = client.get(f"/api/runs/{run['id']}/metrics").json()["metrics"]
        for name in ("loss", *PREFERENCE_CURVES):
            assert [step for step, _ in metrics[name]] == [1, 2, 3, 4], name
        for name in ("eval_loss", *(f"eval_{n}" for n in PREFERENCE_CURVES)):
            assert [step for step, _ in metrics[name]] == [2, 4], name
        assert all(0 <= value <= 1 for _, value in metrics["rewards/accuracies"])

        checkpoints = client.get(f"/api/runs/{run['id']}/checkpoints").json()
        assert [c["step"] for c in checkpoints] == [2, 4]
        best = [c for c in checkpoints if c["is_best"]]
        assert len(best) == 1 and best[0]["metric_name"] == "eval_rewards/margins"
        margins = dict(metrics["eval_rewards/margins"])
        assert best[0]["metric_value"] == pytest.approx(max(margins.values()))
        assert run["best_checkpoint"]["step"] == best[0]["step"]
        download = client.get(f"/api/runs/{run['id']}/checkpoints/best/download")
        assert download.status_code == 200 and download.content[:2] == b"PK"

        page = client.get(f"/runs/{run['id']}").text
        assert 'data-strategy="dpo"' in page  # run_detail.js groups the DPO charts by it
