"""A run's history as the API reports it (issue 17): the cancel checkpoint never ranked with an
older step's score (item 4), training and wall time kept across a resume with the resume points
listed (item 5), and the phase a worker is in with its elapsed time (item 8). Real transitions
and checkpoint ranking on the migrated SQLite; the worker's side is test_training_backend."""

from __future__ import annotations

import json
from datetime import timedelta

from app.core.db import SessionLocal
from app.core.storage import store
from app.domain.checkpoints import record_checkpoint
from app.domain.models import Dataset, Run, RunStatus
from app.domain.run_phases import set_phase
from app.domain.runs import transition
from app.services.jobs.runs import resume_run
from tests.factories import add_run

ROWS = b"\n".join(json.dumps({"prompt": f"p{i}", "completion": f"c{i}"}).encode()
                  for i in range(4))


def new_run(client, tmp_path, **fields) -> int:
    dataset_id = client.post("/api/datasets", files={"file": ("h.jsonl", ROWS)}).json()["id"]
    with SessionLocal() as session:
        run = add_run(session, dataset=session.get(Dataset, dataset_id), max_steps=24,
                      hyperparameters={"eval_split": 0.25, "max_steps": 24}, **fields)
        return run.id


def save_checkpoint(tmp_path, run_id: int, step: int, series: dict) -> None:
    key = f"runs/{run_id}/checkpoint-{step}"
    for name in ("adapter_config.json", "trainer_state.json"):
        (tmp_path / name).write_text("{}")
        store.put_file(tmp_path / name, f"{key}/{name}")
    with SessionLocal() as session:
        record_checkpoint(session, run=session.get(Run, run_id), step=step, storage_key=key,
                          series=series)
        session.commit()


def test_cancel_checkpoint_is_unranked_and_best_keeps_its_own_score(client, tmp_path):
    run_id = new_run(client, tmp_path, status=RunStatus.cancelled, step=7)
    series = {"loss": [(s, 2.0 - s / 10) for s in range(1, 8)], "eval_loss": [(4, 1.3)]}
    save_checkpoint(tmp_path, run_id, 4, series)
    save_checkpoint(tmp_path, run_id, 7, series)  # the cancel point: no evaluation there

    listed = {c["step"]: c for c in client.get(f"/api/runs/{run_id}/checkpoints").json()}
    assert listed[7]["metric_value"] is None and listed[7]["metric_name"] is None
    assert (listed[4]["metric_name"], listed[4]["metric_value"], listed[4]["is_best"]) == (
        "eval_loss", 1.3, True)
    best = client.get(f"/api/runs/{run_id}").json()["best_checkpoint"]
    assert (best["step"], best["metric_value"]) == (4, 1.3)
    download = client.get(f"/api/runs/{run_id}/checkpoints/best/download")
    assert "step4" in download.headers["content-disposition"]


def test_phase_and_times_across_a_resume(client, tmp_path):
    run_id = new_run(client, tmp_path)
    queued = client.get(f"/api/runs/{run_id}").json()
    assert (queued["phase"], queued["phase_label"]) == ("waiting_for_worker",
                                                        "waiting for a worker")
    with SessionLocal() as session:
        assert transition(session, run_id=run_id, to=RunStatus.running)
        running = client.get(f"/api/runs/{run_id}").json()
        assert running["phase"] == "starting"
        set_phase(session, run_id, "preparing_model")
        session.commit()
        shown = client.get(f"/api/runs/{run_id}").json()
        assert shown["phase"] == "preparing_model" and "converts" in shown["phase_label"]
        assert shown["phase_seconds"] >= 0
        # Pretend the first attempt began 60 s ago, then cancel it at step 7.
        run = session.get(Run, run_id)
        first_start = run.started_at - timedelta(seconds=60)
        run.started_at = run.attempt_started_at = first_start
        run.step = 7
        session.commit()
        assert transition(session, run_id=run_id, to=RunStatus.cancelled)
    save_checkpoint(tmp_path, run_id, 7, {"eval_loss": [(7, 1.0)]})

    cancelled = client.get(f"/api/runs/{run_id}").json()
    assert cancelled["phase"] is None
    assert 60 <= cancelled["training_seconds"] < 70
    with SessionLocal() as session:
        resume_run(session, run=session.get(Run, run_id), store=store)
        assert transition(session, run_id=run_id, to=RunStatus.running)
    resumed = client.get(f"/api/runs/{run_id}").json()
    # The start time is the first attempt's; training time adds the attempts up.
    with SessionLocal() as session:
        assert session.get(Run, run_id).started_at.replace(tzinfo=None) == first_start.replace(
            tzinfo=None)
    assert resumed["wall_seconds"] >= 60 and resumed["training_seconds"] >= 60
    assert [p["step"] for p in resumed["resume_points"]] == [7]
    assert resumed["progress"] == 7 / 24
