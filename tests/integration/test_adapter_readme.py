"""The downloaded adapter zip explains itself: its README names the base model (catalogue name and
Hub id, never the worker's path), the strategy, dataset, hyperparameters, rewards, the ranking
metric and a loading snippet; adapter_config.json names the base model the same way."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from app.core.db import SessionLocal
from app.core.storage import store
from app.domain.checkpoints import record_checkpoint
from app.domain.models import Dataset, RunStatus
from tests.factories import add_run

PEFT_TEMPLATE = "---\nbase_model: /srv/tunedeck/models/smollm2\n---\n# Model Card for Model ID\n"
SERVER_PATH = "/srv/tunedeck/data/models/smollm2-135m-instruct-f32"


def download(client, tmp_path, *, base_model: str, strategy: str = "grpo"
             ) -> tuple[dict, zipfile.ZipFile]:
    dataset = client.post("/api/datasets", files={"file": (
        "arith.jsonl", b'{"prompt": "1+1?", "answer": "2"}\n{"prompt": "2+2?", "answer": "4"}\n')})
    assert dataset.status_code == 201, dataset.text
    with SessionLocal() as session:
        run = add_run(session, dataset=session.get(Dataset, dataset.json()["id"]), step=4,
                      status=RunStatus.completed, strategy=strategy, base_model=base_model,
                      name="arith-grpo",
                      hyperparameters={"learning_rate": 5e-5, "lora_r": 16, "num_generations": 4},
                      reward_functions=[{"name": "exact_answer", "weight": 1.0}])
        key = f"runs/{run.id}/checkpoint-4"
        files = {"adapter_config.json": json.dumps({"base_model_name_or_path": SERVER_PATH,
                                                    "r": 16, "peft_type": "LORA"}),
                 "README.md": PEFT_TEMPLATE, "adapter_model.safetensors": "weights",
                 "optimizer.pt": "resume only"}
        for name, text in files.items():
            (tmp_path / name).write_text(text)
            store.put_file(tmp_path / name, f"{key}/{name}")
        record_checkpoint(session, run=run, step=4, storage_key=key,
                          series={"reward": [(2, 0.25), (4, 0.75)]})
        session.commit()
        run_id = run.id
    response = client.get(f"/api/runs/{run_id}/checkpoints/best/download")
    assert response.status_code == 200, response.text
    return {"id": run_id}, zipfile.ZipFile(io.BytesIO(response.content))


@pytest.mark.parametrize(("base_model", "loaded_as"), [
    ("smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"),
    ("tiny-random-llama", "tiny-random-llama"),
    ("/models/my-local-llama", "my-local-llama"),
])
def test_adapter_zip_readme_and_config(client, tmp_path, base_model, loaded_as):
    run, archive = download(client, tmp_path, base_model=base_model)
    names = set(archive.namelist())
    assert {"README.md", "adapter_config.json", "adapter_model.safetensors"} <= names
    config = json.loads(archive.read("adapter_config.json"))
    assert config["base_model_name_or_path"] == loaded_as and config["r"] == 16
    readme = archive.read("README.md").decode()
    assert "Model Card for Model ID" not in readme and "/srv/" not in readme
    assert f'base_model: "{loaded_as}"' in readme
    assert "# arith-grpo: LoRA adapter, step 4" in readme
    assert f"run #{run['id']}" in readme
    assert "GRPO" in readme and "| Dataset | arith (#" in readme and "2 rows" in readme
    assert "| `learning_rate` | 5e-05 |" in readme and "| `lora_r` | 16 |" in readme
    assert "| `exact_answer` | 1.0 |" in readme
    assert ("`reward (moving average of 5)` = 0.5 (higher is better); the run's best checkpoint"
            in readme)
    assert f'AutoModelForCausalLM.from_pretrained("{loaded_as}")' in readme
    assert "PeftModel.from_pretrained(base, adapter)" in readme
    if base_model == "smollm2-135m-instruct":
        assert "SmolLM2 135M Instruct" in readme
    if base_model == "tiny-random-llama":
        assert "not on the Hugging Face Hub" in readme
