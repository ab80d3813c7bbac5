"""Sweeps through the API against the migrated database: a grid becomes runs at most
`concurrency` at a time, the next launching as one ends; bad sweeps are 4xx naming the field and
queue nothing; a sweep whose every trial failed stops with the common error; the page renders."""

from __future__ import annotations

import json

import pytest

from app.core.db import SessionLocal
from app.domain import sweeps
from app.domain.models import Run, RunStatus, Sweep
from app.domain.runs import transition

ROWS = b"\n".join(json.dumps({"prompt": f"p{i}", "completion": f"c{i}"}).encode()
                  for i in range(8))


@pytest.fixture
def base(client) -> dict:
    dataset = client.post("/api/datasets", files={"file": ("sweep.jsonl", ROWS)}).json()
    return {"dataset_id": dataset["id"], "base_model": "tiny-random-llama",
            "hyperparameters": {"max_steps": 2, "eval_split": 0.25}}


def _finish(run_id: int, to: RunStatus, error: str | None = None) -> None:
    with SessionLocal() as session:
        transition(session, run_id=run_id, to=RunStatus.running, worker="w:1")
        transition(session, run_id=run_id, to=to, error=error)


def _advance(sweep_id: int) -> None:
    with SessionLocal() as session:
        sweeps.advance(session, sweep_id)


def test_grid_sweep_launches_within_its_concurrency(client, base):
    response = client.post("/api/sweeps", json={
        "name": "lr-grid", "run": base, "kind": "grid", "concurrency": 2,
        "space": {"learning_rate": [1e-4, 3e-4, 1e-3], "lora_r": [4, 8]},
        "metric": "eval_loss", "direction": "min"})
    assert response.status_code == 201, response.text
    sweep = response.json()
    assert sweep["total_runs"] == 6 and sweep["launched"] == 2 and sweep["status"] == "running"
    first, second = sweep["runs"]
    assert first["params"] == {"learning_rate": 1e-4, "lora_r": 4}
    assert first["name"] == "lr-grid-1" and first["status"] == "queued"
    listed = client.get(f"/api/runs/{first['id']}").json()
    assert listed["sweep_id"] == sweep["id"] and listed["hyperparameters"]["lora_r"] == 4
    _advance(sweep["id"])  # nothing ended: nothing more launches
    assert client.get(f"/api/sweeps/{sweep['id']}").json()["launched"] == 2

    _finish(first["id"], RunStatus.completed)
    _advance(sweep["id"])
    after = client.get(f"/api/sweeps/{sweep['id']}").json()
    assert after["launched"] == 3 and after["counts"] == {"completed": 1, "queued": 2}

    in_list = client.get(f"/api/runs?sweep_id={sweep['id']}")
    assert in_list.headers["X-Total-Count"] == "3"
    assert {r["sweep_id"] for r in in_list.json()} == {sweep["id"]}
    assert f'href="/sweeps/{sweep["id"]}"' in client.get(f"/runs/{first['id']}").text
    assert "1–3 of 3" in client.get(f"/runs?sweep_id={sweep['id']}").text

    page = client.get(f"/sweeps/{sweep['id']}")
    assert page.status_code == 200 and 'id="sweep-data"' in page.text
    assert client.get("/sweeps/999999").status_code == 404

    cancelled = client.post(f"/api/sweeps/{sweep['id']}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["counts"] == {"completed": 1, "cancelled": 2}
    assert client.post(f"/api/sweeps/{sweep['id']}/cancel").status_code == 409


@pytest.mark.parametrize(("change", "field"), [
    ({"space": {"learning_rate": []}}, "space.learning_rate"),
    ({"kind": "random", "budget": 3, "space": {"learning_rate": {"low": 1e-3, "high": 1e-5}}},
     "space.learning_rate"),
    ({"kind": "random", "budget": 3,
      "space": {"learning_rate": {"low": 0, "high": 1e-3, "scale": "log"}}},
     "space.learning_rate"),
    ({"space": {"beta": [0.1, 0.2]}}, "space.beta"),
    ({"space": {"learning_rate": [1e-5 * i for i in range(1, 66)]}}, "65 runs"),
    ({"metric": "eval_reward"}, "metric"),
    ({"space": {"learning_rate": [1e-4, -1.0]}}, "hyperparameters.learning_rate"),
])
def test_bad_sweeps_are_4xx_naming_the_field_and_queue_nothing(client, base, change, field):
    with SessionLocal() as session:
        runs_before, sweeps_before = session.query(Run).count(), session.query(Sweep).count()
    body = {"run": base, "space": {"learning_rate": [1e-4]}, **change}
    response = client.post("/api/sweeps", json=body)
    assert 400 <= response.status_code < 500, response.text
    assert field in response.json()["detail"], response.text
    with SessionLocal() as session:
        assert session.query(Run).count() == runs_before
        assert session.query(Sweep).count() == sweeps_before


def test_a_sweep_whose_every_trial_fails_stops_with_the_common_error(client, base):
    sweep = client.post("/api/sweeps", json={
        "run": base, "space": {"lora_r": [2, 4]}, "concurrency": 2}).json()
    for run in sweep["runs"]:
        _finish(run["id"], RunStatus.failed, "training process exited with code 1\nTraceback")
    _advance(sweep["id"])
    stopped = client.get(f"/api/sweeps/{sweep['id']}").json()
    assert stopped["status"] == "failed"
    assert stopped["error"] == ("every trial failed; the most common error: training process "
                                "exited with code 1 (2 of 2)")


def test_without_continue_on_error_the_first_failure_stops_the_sweep(client, base):
    sweep = client.post("/api/sweeps", json={
        "run": base, "space": {"lora_r": [2, 4, 8]}, "continue_on_error": False}).json()
    assert sweep["launched"] == 1
    _finish(sweep["runs"][0]["id"], RunStatus.failed, "boom")
    _advance(sweep["id"])
    stopped = client.get(f"/api/sweeps/{sweep['id']}").json()
    assert stopped["status"] == "failed" and "boom" in stopped["error"]
    assert stopped["launched"] == 1


def test_pause_launches_nothing_until_resumed(client, base):
    sweep = client.post("/api/sweeps", json={"run": base, "space": {"lora_r": [2, 4]}}).json()
    assert client.post(f"/api/sweeps/{sweep['id']}/pause").json()["status"] == "paused"
    _finish(sweep["runs"][0]["id"], RunStatus.completed)
    _advance(sweep["id"])
    assert client.get(f"/api/sweeps/{sweep['id']}").json()["launched"] == 1
    resumed = client.post(f"/api/sweeps/{sweep['id']}/resume").json()
    assert resumed["status"] == "running" and resumed["launched"] == 2
    assert client.post(f"/api/sweeps/{sweep['id']}/resume").status_code == 409


def test_optuna_sweep_asks_each_trial_as_a_slot_frees(client, base):
    response = client.post("/api/sweeps", json={
        "name": "tpe", "run": base, "kind": "optuna", "budget": 3, "concurrency": 2, "seed": 5,
        "space": {"learning_rate": {"low": 1e-5, "high": 1e-2, "scale": "log"},
                  "lora_r": [4, 8, 16]}})
    assert response.status_code == 201, response.text
    sweep = response.json()
    assert sweep["kind"] == "optuna" and sweep["pruner"] == "median" and sweep["seed"] == 5
    assert sweep["total_runs"] == 3 and sweep["launched"] == 2
    for run in sweep["runs"]:
        assert 1e-5 <= run["params"]["learning_rate"] <= 1e-2
        assert run["params"]["lora_r"] in (4, 8, 16)
    assert sweep["runs"][0]["params"] != sweep["runs"][1]["params"]
    with SessionLocal() as session:
        row = session.get(Sweep, sweep["id"])
        assert [t["run_id"] for t in row.trials] == [r["id"] for r in sweep["runs"]]
        # Each run trains with its sampled values over the base's validated defaults.
        run = session.get(Run, sweep["runs"][0]["id"])
        assert run.hyperparameters["max_steps"] == 2
        assert run.hyperparameters["learning_rate"] == sweep["runs"][0]["params"]["learning_rate"]

    _finish(sweep["runs"][0]["id"], RunStatus.completed)
    _advance(sweep["id"])
    after = client.get(f"/api/sweeps/{sweep['id']}").json()
    assert after["launched"] == 3 and after["counts"] == {"completed": 1, "queued": 2}
    _advance(sweep["id"])  # the budget is spent: nothing more launches
    assert client.get(f"/api/sweeps/{sweep['id']}").json()["launched"] == 3
    # A trial its pruner stopped: listed under its status, its page says why.
    pruned_id = sweep["runs"][1]["id"]
    with SessionLocal() as session:
        transition(session, run_id=pruned_id, to=RunStatus.running, worker="w:1")
        session.query(Run).filter(Run.id == pruned_id).update(
            {"prune_reason": "pruned by the median pruner at step 2: eval_loss 3 was behind"})
        session.commit()
        transition(session, run_id=pruned_id, to=RunStatus.pruned)
    listed = client.get(f"/api/runs?status=pruned&sweep_id={sweep['id']}").json()
    assert [r["id"] for r in listed] == [pruned_id]
    assert '<option value="pruned"' in client.get("/runs").text
    page = client.get(f"/runs/{pruned_id}").text
    assert "median pruner at step 2" in page and "badge-pruned" in page
    counts = client.get(f"/api/sweeps/{sweep['id']}").json()["counts"]
    assert counts == {"completed": 1, "pruned": 1, "queued": 1}
    assert "Optuna sweep of 3 runs" in client.get(f"/sweeps/{sweep['id']}").text


@pytest.mark.parametrize(("change", "field"), [
    ({"budget": None}, "budget: an optuna sweep needs the number of runs"),
    ({"space": {}}, "space: name at least one field"),
    ({"pruner": "hyperband"}, "pruner: must be one of median, successive_halving, none"),
    ({"pruner_options": {"n_startup": 1}}, "pruner_options.n_startup: the median pruner takes"),
    ({"pruner_options": {"n_warmup_steps": -1}}, "pruner_options.n_warmup_steps"),
    ({"pruner": "successive_halving", "pruner_options": {"reduction_factor": 1}},
     "pruner_options.reduction_factor"),
    ({"kind": "grid", "pruner": "median", "space": {"lora_r": [4, 8]}},
     "pruner: only optuna sweeps prune"),
    ({"space": {"lora_r": [4, -1]}}, "hyperparameters.lora_r"),
    ({"space": {"learning_rate": {"low": 1e-3, "high": 1e-5}}}, "space.learning_rate"),
])
def test_bad_optuna_sweeps_are_4xx_naming_the_field(client, base, change, field):
    with SessionLocal() as session:
        sweeps_before = session.query(Sweep).count()
    body = {"run": base, "kind": "optuna", "budget": 4,
            "space": {"learning_rate": {"low": 1e-5, "high": 1e-3, "scale": "log"}}, **change}
    response = client.post("/api/sweeps", json=body)
    assert 400 <= response.status_code < 500, response.text
    assert field in response.json()["detail"], response.text
    with SessionLocal() as session:
        assert session.query(Sweep).count() == sweeps_before
