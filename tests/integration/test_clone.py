"""Run again with changes: POST /api/runs/{id}/clone launches the run's whole configuration with
the overrides, and /runs/new?clone={id} opens the launch form pre-filled with it."""

from __future__ import annotations

import html
import json
import re

import pytest

from app.core.db import SessionLocal
from app.domain.models import Run

ROWS = b"\n".join(json.dumps({"prompt": f"{i} + 1 =", "answer": str(i + 1)}).encode()
                  for i in range(6))


@pytest.fixture
def grpo_run(client) -> dict:
    dataset = client.post("/api/datasets", files={"file": ("clone.jsonl", ROWS)}).json()
    body = {"dataset_id": dataset["id"], "strategy": "grpo", "base_model": "tiny-random-llama",
            "name": "original", "backend": "trl", "queue": "clone-q",
            "hyperparameters": {"learning_rate": 3e-4, "lora_r": 4, "max_steps": 3,
                                "num_generations": 2, "per_device_train_batch_size": 2},
            "reward_functions": [{"name": "exact_answer", "weight": 0.5},
                                 {"name": "soft_format", "weight": 0.25}]}
    response = client.post("/api/runs", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_clone_keeps_everything_but_the_overrides(client, grpo_run):
    response = client.post(f"/api/runs/{grpo_run['id']}/clone",
                           json={"hyperparameters": {"learning_rate": 1e-4}, "name": "again"})
    assert response.status_code == 201, response.text
    copy = response.json()
    assert copy["id"] != grpo_run["id"] and copy["status"] == "queued"
    assert copy["name"] == "again"
    for field in ("strategy", "base_model", "dataset_id", "requested_backend", "queue",
                  "reward_functions"):
        assert copy[field] == grpo_run[field], field
    expected = {**grpo_run["hyperparameters"], "learning_rate": 1e-4}
    assert copy["hyperparameters"] == expected
    # Reward functions are replaced as a whole when given.
    rewards = client.post(f"/api/runs/{grpo_run['id']}/clone", json={
        "reward_functions": [{"name": "exact_answer", "weight": 2.0}]}).json()["reward_functions"]
    assert [(r["name"], r["weight"]) for r in rewards] == [("exact_answer", 2.0)]


def test_bad_overrides_are_4xx_naming_the_field(client, grpo_run):
    url = f"/api/runs/{grpo_run['id']}/clone"
    bad_lr = client.post(url, json={"hyperparameters": {"learning_rate": -1}})
    assert bad_lr.status_code == 422 and "learning_rate" in bad_lr.text
    typo = client.post(url, json={"hyperparameters": {"lerning_rate": 1e-4}})
    assert typo.status_code == 422 and "lerning_rate" in typo.text
    unknown = client.post(url, json={"colour": "red"})
    assert unknown.status_code == 422 and "colour" in unknown.text
    assert client.post("/api/runs/999999/clone", json={}).status_code == 404
    with SessionLocal() as session:
        assert session.query(Run).filter(Run.name.like("%lerning%")).count() == 0


def test_run_page_links_to_the_form_prefilled_with_the_whole_configuration(client, grpo_run):
    run_page = client.get(f"/runs/{grpo_run['id']}").text
    assert f'href="/runs/new?clone={grpo_run["id"]}"' in run_page
    form = client.get(f"/runs/new?clone={grpo_run['id']}&lora_r=16").text
    assert 'id="clone-notice"' in form

    def value(name: str) -> str:
        match = re.search(rf'id="hp-grpo-{name}"[^>]*value="([^"]*)"', form)
        assert match, name
        return match.group(1)

    assert value("learning_rate") == "0.0003"
    assert value("max_steps") == "3"
    assert value("lora_r") == "16"  # the query string still wins
    assert re.search(r'<input type="radio" name="strategy" value="grpo" checked>', form)
    assert f'<option value="{grpo_run["dataset_id"]}" selected>' in form
    assert 'value="clone-q"' in form
    assert re.search(r'<option value="trl" selected>', form)
    configs = re.search(r'id="reward-configs">(.*?)</script>', form).group(1)
    rewards = json.loads(json.loads(html.unescape(configs)))
    assert [(r["name"], r["weight"]) for r in rewards] == [("exact_answer", 0.5),
                                                           ("soft_format", 0.25)]
