"""GRPO through the REST API in process: the reward library, and configurations refused with 422
before anything is queued (divisibility, unknown rewards, custom rewards off or failing)."""

from __future__ import annotations

import json

import pytest

from app.core.config import settings

ROWS = [{"prompt": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(6)]
RAISES = "def reward(completions, **kwargs):\n    return [1 / 0 for c in completions]\n"
WRONG_LENGTH = "def reward(completions, **kwargs):\n    return [1.0]\n"
# Reads the dataset column as training would: fails the dry run if "answer" does not arrive.
GOOD = ("def reward(completions, answer, **kwargs):\n"
        "    return [float(a in c) for c, a in zip(completions, answer)]\n")


@pytest.fixture
def dataset(client):
    body = "\n".join(json.dumps(row) for row in ROWS).encode()
    response = client.post("/api/datasets", files={"file": ("sums.jsonl", body)})
    assert response.status_code == 201, response.text
    return response.json()


def launch(client, dataset, rewards, **hyperparameters):
    return client.post("/api/runs", json={
        "dataset_id": dataset["id"], "strategy": "grpo", "base_model": "tiny-random-llama",
        "queue": "nobody-listens", "reward_functions": rewards,
        "hyperparameters": {"per_device_train_batch_size": 2, "num_generations": 2,
                            **hyperparameters}})


def run_count(client) -> int:
    return len(client.get("/api/runs").json())


def custom(code):
    return {"name": "custom", "weight": 1.0, "params": {"code": code}}


def test_reward_library_lists_builtins_preset_and_custom_state(client, monkeypatch):
    body = client.get("/api/reward-functions").json()
    by_name = {r["name"]: r for r in body["reward_functions"]}
    assert by_name["exact_answer"]["defaults"] == {"column": "answer"}
    assert by_name["length_target"]["defaults"] == {"min_chars": 100, "max_chars": 800}
    assert "<reasoning>" in body["reasoning_system_prompt"]
    assert body["custom_rewards"]["enabled"] is False
    assert "TUNEDECK_ALLOW_CUSTOM_REWARDS=true" in body["custom_rewards"]["how_to_enable"]

    tagged = client.get("/api/reward-functions?reasoning_tag=think&answer_tag=final").json()
    assert "<think>" in tagged["reasoning_system_prompt"]
    assert "</final>" in tagged["reasoning_system_prompt"]
    bad = client.get("/api/reward-functions?reasoning_tag=<think>")
    assert bad.status_code == 422 and "not a valid tag name" in bad.json()["detail"]

    monkeypatch.setattr(settings, "allow_custom_rewards", True)
    enabled = client.get("/api/reward-functions").json()["custom_rewards"]
    assert enabled["enabled"] is True and "def reward(completions" in enabled["template"]


@pytest.mark.parametrize(("rewards", "hyperparameters", "fragment"), [
    ([{"name": "exact_answer"}], {"num_generations": 3},
     "per_device_train_batch_size × gradient_accumulation_steps = 2 is not divisible by "
     "num_generations = 3: use 3"),
    ([{"name": "exact_anwser"}], {}, "unknown reward function 'exact_anwser'"),
    ([], {}, "needs at least one reward function"),
    ([{"name": "exact_answer", "params": {"column": "solution"}}], {},
     "reads column 'solution'"),
    ([{"name": "soft_format"}], {"reasoning_tag": "<think>"}, "hyperparameters.reasoning_tag"),
    ([{"name": "exact_answer"}, custom(GOOD)], {},
     "custom reward functions are disabled on this server: an administrator can enable them "
     "with TUNEDECK_ALLOW_CUSTOM_REWARDS=true"),
])
def test_bad_grpo_configurations_are_422_and_queue_nothing(
        client, dataset, rewards, hyperparameters, fragment):
    before = run_count(client)
    response = launch(client, dataset, rewards, **hyperparameters)
    assert response.status_code == 422, response.text
    assert fragment in response.json()["detail"]
    assert run_count(client) == before


@pytest.mark.parametrize(("code", "fragment"), [
    (RAISES, "custom reward raised ZeroDivisionError: division by zero at line 2"),
    (WRONG_LENGTH, "custom reward returned 1 values for 2 completions"),
    ("def reward(completions):\n    return [0.0] * len(completions)\n", "TypeError"),
    ("def reward(completions, **kwargs)\n    return []\n", "syntax error at line 1"),
])
def test_custom_reward_dry_run_failure_is_422_with_the_sandbox_message(
        client, dataset, monkeypatch, code, fragment):
    monkeypatch.setattr(settings, "allow_custom_rewards", True)
    before = run_count(client)
    response = launch(client, dataset, [custom(code)])
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("reward_functions: custom: ") and fragment in detail
    assert run_count(client) == before


def test_a_custom_reward_that_passes_its_dry_run_is_queued_in_place(client, dataset, monkeypatch):
    monkeypatch.setattr(settings, "allow_custom_rewards", True)
    rewards = [{"name": "soft_format", "weight": 0.25}, custom(GOOD)]
    response = launch(client, dataset, rewards, reasoning_tag="think")
    assert response.status_code == 201, response.text
    run = response.json()
    assert [(r["name"], r["weight"]) for r in run["reward_functions"]] == [
        ("soft_format", 0.25), ("custom", 1.0)]
    assert run["reward_functions"][1]["params"] == {"code": GOOD}
    assert run["hyperparameters"]["reasoning_tag"] == "think"
    client.post(f"/api/runs/{run['id']}/cancel")


def test_grpo_run_page_lists_rewards_with_settings_escaped(client, dataset, monkeypatch):
    monkeypatch.setattr(settings, "allow_custom_rewards", True)
    code = GOOD + "# <script>alert(1)</script>\n"
    rewards = [{"name": "exact_answer", "weight": 2}, custom(code)]
    run = launch(client, dataset, rewards).json()
    page = client.get(f"/runs/{run['id']}")
    assert page.status_code == 200
    html = page.text
    assert 'id="chart-reward"' in html and 'id="samples"' in html
    assert "/static/run_grpo.js" in html
    table = html[html.index('id="reward-functions"'):html.index('id="prompt-format-title"')]
    assert 'data-reward="exact_answer"' in table and '"answer"' in table, table  # column param
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    client.post(f"/api/runs/{run['id']}/cancel")
    form = client.get("/runs/new?strategy=grpo&rewards=exact_answer:1").text
    assert 'id="reward-rows"' in form and "exact_answer:1" in form


def test_a_hostile_dry_run_is_contained_and_answers_within_a_deadline(client, dataset, monkeypatch):
    """The dry run at launch: code that reached the web process's secrets, database and PID
    before gets nothing, and a daemon holding the reply open does not hang the request."""
    import os
    import time

    monkeypatch.setattr(settings, "allow_custom_rewards", True)
    database = settings.resolved_data_dir / "tunedeck.db"
    code = f"""
import os, signal, socket
def reward(completions, **kwargs):
    escaped = []
    for path in ["/etc/shadow", "/proc/{os.getpid()}/environ", {str(database)!r}]:
        try:
            open(path, "rb").read(1)
            escaped.append(path)
        except OSError:
            pass
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
        escaped.append("socket")
    except OSError:
        pass
    try:
        os.kill({os.getpid()}, signal.SIGSTOP)
        escaped.append("signal")
    except OSError:
        pass
    if os.fork() == 0:
        os.setsid()
        os.execvp("sleep", ["sleep", "615.25"])
    raise ValueError(f"escaped={{escaped}}")
"""
    before = run_count(client)
    started = time.monotonic()
    response = launch(client, dataset, [custom(code)])
    assert time.monotonic() - started < 60
    assert response.status_code == 422, response.text
    assert "custom reward raised ValueError: escaped=[]" in response.json()["detail"]
    assert run_count(client) == before

    hanging = "import time\ndef reward(completions, **kwargs):\n    time.sleep(600)\n"
    started = time.monotonic()
    response = launch(client, dataset, [custom(hanging)])
    assert time.monotonic() - started < 60
    assert response.status_code == 422 and "timed out" in response.json()["detail"]
