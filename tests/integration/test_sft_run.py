"""End to end through real parts: upload → queued SFT run → Celery worker trains tiny-random-llama
→ metrics and checkpoints in the database → the best adapter downloads and PEFT loads it.
Runs on SQLite + the embedded broker and on PostgreSQL + Redis."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

ROWS = [
    {"prompt": f"Say the word number {i}.", "completion": f" Word {i % 3}: {'abc'[i % 3] * 3}."}
    for i in range(24)
]


def upload_jsonl(client, rows, name="sft-rows.jsonl") -> dict:
    body = "\n".join(json.dumps(r) for r in rows).encode()
    response = client.post("/api/datasets", files={"file": (name, body, "application/json")})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.slow
def test_sft_run_end_to_end(any_live_server, tmp_path):
    server = any_live_server
    with server.client() as client:
        dataset = upload_jsonl(client, ROWS)
        assert dataset["num_rows"] == 24
        assert dataset["format"] == "prompt_completion"

        response = client.post(
            "/api/runs",
            json={
                "dataset_id": dataset["id"],
                "strategy": "sft",
                "base_model": "tiny-random-llama",
                "name": "e2e-sft",
                "hyperparameters": {
                    "max_steps": 6,
                    "save_steps": 3,
                    "eval_steps": 3,
                    "eval_split": 0.25,
                    "per_device_train_batch_size": 2,
                    "learning_rate": 1e-3,
                    "max_length": 64,
                },
            },
        )
        assert response.status_code == 201, response.text
        run = response.json()
        assert run["status"] == "queued"

        run = server.wait_for_run(run["id"])
        assert run["status"] == "completed", f"{run['error']}\n{server.logs()}"
        assert run["step"] == 6 and run["max_steps"] == 6
        assert run["backend"] == "trl" and run["device"] == "cpu"

        metrics = client.get(f"/api/runs/{run['id']}/metrics").json()["metrics"]
        assert [step for step, _ in metrics["loss"]] == [1, 2, 3, 4, 5, 6]
        assert all(value is not None and value > 0 for _, value in metrics["loss"])
        assert {"grad_norm", "learning_rate", "eval_loss"} <= set(metrics)
        assert [step for step, _ in metrics["eval_loss"]] == [3, 6]
        only_loss = client.get(f"/api/runs/{run['id']}/metrics?names=loss").json()["metrics"]
        assert set(only_loss) == {"loss"}

        checkpoints = client.get(f"/api/runs/{run['id']}/checkpoints").json()
        assert [c["step"] for c in checkpoints] == [3, 6]
        assert sum(c["is_best"] for c in checkpoints) == 1
        best = next(c for c in checkpoints if c["is_best"])
        assert best["metric_name"] == "eval_loss"
        eval_by_step = dict(metrics["eval_loss"])
        assert best["metric_value"] == pytest.approx(min(eval_by_step.values()))

        download = client.get(f"/api/runs/{run['id']}/checkpoints/best/download")
        assert download.status_code == 200
        assert download.headers["content-type"] == "application/zip"
        by_step = client.get(f"/api/runs/{run['id']}/checkpoints/3/download")
        assert by_step.status_code == 200
        assert client.get(f"/api/runs/{run['id']}/checkpoints/99/download").status_code == 404

    folder = tmp_path / "adapter"
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        names = set(archive.namelist())
        archive.extractall(folder)
    assert {"adapter_model.safetensors", "adapter_config.json"} <= names
    assert "tokenizer_config.json" in names
    assert not any(n.startswith("optimizer") for n in names)

    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.conftest import MODEL_CACHE
    from worker.training.models import resolve_model

    base = AutoModelForCausalLM.from_pretrained(resolve_model("tiny-random-llama", MODEL_CACHE))
    model = PeftModel.from_pretrained(base, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    out = model.generate(**tokenizer("Say the word", return_tensors="pt"), max_new_tokens=2)
    assert out.shape[1] >= 3
