"""Priorities honoured by real workers: three runs wait before any worker is up; a Celery worker
then trains them highest priority first, on SQLite + the filesystem broker with one worker, and on
PostgreSQL + Redis with two workers racing for the same queue."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime

import pytest

from tests.conftest import (
    REDIS_URL,
    reset_redis,
    scratch_postgres,
    start_server,
    stop_server,
)

ROWS = "\n".join(json.dumps({"prompt": f"Say {i}.", "completion": f" {i}"}) for i in range(8))
TINY = {"max_steps": 2, "save_steps": 2, "eval_split": 0, "per_device_train_batch_size": 2,
        "max_length": 64}


def _start_worker(server, index: int) -> subprocess.Popen:
    from app.cli import worker_command

    log = open(server.data_dir / f"worker-{index}.log", "wb")  # noqa: SIM115 (closed with it)
    worker = subprocess.Popen(worker_command("training", f"prio{index}"), env=server.env,
                              stdout=log, stderr=subprocess.STDOUT)
    server.processes.append(worker)
    return worker


def _three_runs_in_priority_order(server, workers: int) -> None:
    with server.client() as client:
        dataset = client.post("/api/datasets", files={"file": ("prio.jsonl", ROWS.encode())})
        assert dataset.status_code == 201, dataset.text
        ids = {}
        for name, priority in (("low", 0), ("high", 5), ("middle", 1)):
            response = client.post("/api/runs", json={
                "dataset_id": dataset.json()["id"], "base_model": "tiny-random-llama",
                "name": name, "priority": priority, "hyperparameters": TINY})
            assert response.status_code == 201, response.text
            ids[name] = response.json()["id"]
        waiting = next(q for q in client.get("/api/queues").json() if q["name"] == "training")
        assert [r["id"] for r in waiting["waiting"]] == [ids["high"], ids["middle"], ids["low"]]
    for index in range(workers):
        _start_worker(server, index)
    runs = {name: server.wait_for_run(run_id, timeout=600) for name, run_id in ids.items()}
    for name, run in runs.items():
        assert run["status"] == "completed", f"{name}: {run['error']}\n{server.logs()}"
    started = {name: datetime.fromisoformat(run["started_at"]) for name, run in runs.items()}
    finished = {name: datetime.fromisoformat(run["finished_at"]) for name, run in runs.items()}
    if workers == 1:
        assert started["high"] < started["middle"] < started["low"], started
    else:
        # Two workers take the two best at once; the lowest waits for one of them to finish.
        assert started["low"] >= min(finished["high"], finished["middle"]), (started, finished)
        # Both workers trained (each row keeps the "host:pid" of the worker that claimed it).
        from sqlalchemy import create_engine, text

        engine = create_engine(server.env["TUNEDECK_DATABASE_URL"])
        with engine.connect() as conn:
            claimed_by = conn.execute(text("SELECT DISTINCT worker FROM run")).scalars().all()
        engine.dispose()
        assert len(claimed_by) == 2, claimed_by


@pytest.mark.slow
def test_one_worker_takes_three_waiting_runs_by_priority():
    server = start_server("priority-sqlite", worker=False)
    try:
        _three_runs_in_priority_order(server, workers=1)
    finally:
        stop_server(server)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_on_redis_take_the_best_runs_first():
    # A database and a Redis db of its own: a session-wide live server's worker on the shared
    # ones would claim the first run before this test's workers start.
    database = scratch_postgres("priority")
    redis_url = REDIS_URL.rsplit("/", 1)[0] + "/" + str((int(REDIS_URL.rsplit("/", 1)[1]) + 1) % 16)
    reset_redis(redis_url)
    server = start_server("priority-postgres", worker=False, extra_env={
        "TUNEDECK_DATABASE_URL": database, "TUNEDECK_BROKER_URL": redis_url})
    try:
        _three_runs_in_priority_order(server, workers=2)
    finally:
        stop_server(server)
