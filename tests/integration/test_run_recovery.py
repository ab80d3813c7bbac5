"""Recovery paths in process against the migrated SQLite: a redelivered task for a claimed or
finished run does nothing, and the web process's reaper thread fails runs of dead workers."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from app.core.db import SessionLocal
from app.domain.models import Run, RunStatus, utcnow

ROWS = b"\n".join(json.dumps({"prompt": f"p{i}", "completion": f"c{i}"}).encode()
                  for i in range(4))


@pytest.fixture
def run_id(client) -> int:
    dataset = client.post("/api/datasets", files={"file": ("d.jsonl", ROWS)}).json()
    run = client.post("/api/runs", json={"dataset_id": dataset["id"], "strategy": "sft",
                                         "base_model": "tiny-random-llama"})
    assert run.status_code == 201, run.text
    return run.json()["id"]


def set_run(run_id: int, **values) -> None:
    with SessionLocal() as session:
        session.execute(update(Run).where(Run.id == run_id).values(**values))
        session.commit()


@pytest.mark.parametrize("status", [RunStatus.running, RunStatus.completed, RunStatus.cancelled])
def test_redelivered_task_does_nothing(client, run_id, status):
    from worker.tasks import train_run

    # On a queue of its own: a message claims the best run waiting on its run's queue
    # (app/domain/queue.py), and other tests leave runs waiting on the default one.
    set_run(run_id, status=status, worker="first-worker:1", attempt=1,
            queue=f"redelivery-{run_id}")
    assert train_run(run_id) == "skipped"  # the task body, run here as a redelivery would
    assert client.get(f"/api/runs/{run_id}").json()["status"] == status.value
    with SessionLocal() as session:
        row = session.get(Run, run_id)
        assert row.worker == "first-worker:1" and row.attempt == 1


def test_task_for_a_deleted_run_does_nothing():
    from worker.tasks import train_run

    assert train_run(10**9) == "skipped"


def test_web_app_runs_a_reaper_thread(client):
    assert any(t.name == "tunedeck-reaper" and t.is_alive() for t in threading.enumerate())


def test_reaper_thread_fails_a_silent_run(client, run_id):
    from app.domain.reaper import ReaperThread

    set_run(run_id, status=RunStatus.running, worker="gone:1", started_at=utcnow(),
            heartbeat_at=utcnow() - timedelta(seconds=30))
    reaper = ReaperThread(SessionLocal, lost_after_s=6)  # looks every 2 s
    reaper.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            run = client.get(f"/api/runs/{run_id}").json()
            if run["status"] != "running":
                break
            time.sleep(0.2)
    finally:
        reaper.stop()
    assert run["status"] == "failed" and run["error"].startswith("worker lost"), run
    resumed = client.post(f"/api/runs/{run_id}/resume")
    assert resumed.status_code == 409 and "checkpoint" in resumed.json()["detail"]


def test_run_page_offers_resume_only_when_possible(client, run_id):
    from app.domain.models import Checkpoint

    def resume_button() -> str:
        html = client.get(f"/runs/{run_id}").text
        return next(line for line in html.splitlines() if 'id="resume-button"' in line)

    assert " hidden" in resume_button()  # queued
    set_run(run_id, status=RunStatus.failed, error="worker lost: gone")
    assert " hidden" in resume_button()  # no checkpoint to continue from
    with SessionLocal() as session:
        session.add(Checkpoint(run_id=run_id, step=2, storage_key=f"runs/{run_id}/checkpoint-2"))
        session.commit()
    assert " hidden" not in resume_button()
