"""Uploads whose processing stopped: claimed once, re-published when the worker holding them stops
heartbeating or the message was lost, failed after two dead workers (domain/datasets/recovery.py),
on the in-process app's database; then end to end with a frozen worker and a second one."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from datetime import timedelta

import pytest

from app.domain.datasets import recovery
from app.domain.models import Dataset, DatasetStatus, utcnow
from tests.factories import add_dataset


@pytest.fixture
def db(client):
    from app.core.db import SessionLocal

    with SessionLocal() as session:
        yield session


def processing(db, **fields) -> Dataset:
    fields.setdefault("upload_key", "uploads/none.jsonl")
    dataset = add_dataset(db, status=DatasetStatus.processing, **fields)
    db.commit()
    return dataset


def test_a_dataset_is_claimed_by_one_worker_at_a_time(db):
    dataset = processing(db)
    assert recovery.claim(db, dataset_id=dataset.id, worker="a:1", lost_after_s=45)
    assert not recovery.claim(db, dataset_id=dataset.id, worker="b:2", lost_after_s=45)
    assert recovery.heartbeat(db, dataset_id=dataset.id, worker="a:1")
    assert not recovery.heartbeat(db, dataset_id=dataset.id, worker="b:2")
    db.refresh(dataset)
    assert (dataset.worker, dataset.attempts) == ("a:1", 1)


def test_a_dead_workers_dataset_is_published_again_then_failed(db):
    stale = utcnow() - timedelta(seconds=120)
    dataset = processing(db, worker="gone:1", heartbeat_at=stale, attempts=1, publish_count=1)
    alive = processing(db, worker="here:2", heartbeat_at=utcnow(), attempts=1, publish_count=1)

    acted = recovery.recover_lost_datasets(db, lost_after_s=45, requeue_after_s=120)
    assert dataset.id in acted and alive.id not in acted
    db.refresh(dataset)
    db.refresh(alive)
    assert dataset.status == DatasetStatus.processing and dataset.heartbeat_at is None
    assert (dataset.worker, dataset.publish_count) == (None, 2)
    assert alive.heartbeat_at is not None and alive.publish_count == 1  # left alone

    # The second worker claims it and dies too: the file may be what kills them.
    assert recovery.claim(db, dataset_id=dataset.id, worker="gone:3", lost_after_s=45)
    db.query(Dataset).filter_by(id=dataset.id).update({"heartbeat_at": stale})
    db.commit()
    assert dataset.id in recovery.recover_lost_datasets(db, lost_after_s=45, requeue_after_s=120)
    db.refresh(dataset)
    assert dataset.status == DatasetStatus.failed and dataset.upload_key is None
    assert "processing stopped 2 times" in dataset.error and "gone:3" in dataset.error


def test_a_never_claimed_dataset_is_published_again_with_back_off(db):
    now = utcnow()
    dataset = processing(db, published_at=now - timedelta(seconds=130), publish_count=1)
    assert dataset.id in recovery.recover_lost_datasets(db, lost_after_s=45,
                                                        requeue_after_s=120, now=now)
    db.refresh(dataset)
    assert dataset.publish_count == 2
    # The next wait is twice as long: 130 s later is too early, 250 s is due.
    later = now + timedelta(seconds=130)
    assert dataset.id not in recovery.recover_lost_datasets(db, lost_after_s=45,
                                                            requeue_after_s=120, now=later)
    assert dataset.id in recovery.recover_lost_datasets(
        db, lost_after_s=45, requeue_after_s=120, now=now + timedelta(seconds=250))


@pytest.mark.slow
def test_an_upload_whose_worker_freezes_is_finished_by_another():
    from app.cli import worker_command
    from tests.conftest import ROOT, start_server, stop_server

    server = start_server("dataset-recovery", worker=False, extra_env={
        "TUNEDECK_WORKER_LOST_AFTER_S": "5", "TUNEDECK_REQUEUE_AFTER_S": "2"})
    workers: list[subprocess.Popen] = []

    def start_worker(name: str) -> subprocess.Popen:
        log = open(server.data_dir / f"{name}.log", "wb")  # noqa: SIM115 (closed with it)
        proc = subprocess.Popen(worker_command("datasets", name), cwd=ROOT, env=server.env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        workers.append(proc)
        return proc

    def holder(dataset_id: int) -> str | None:
        with sqlite3.connect(server.data_dir / "tunedeck.db") as conn:
            return conn.execute("select worker from dataset where id = ?",
                                (dataset_id,)).fetchone()[0]

    try:
        # Two datasets workers from the start (a start costs seconds): whichever takes the
        # upload is frozen mid-file, and the other must finish it.
        start_worker("one")
        start_worker("two")
        rows = [{"prompt": f"Question {i}: " + "how many? " * 20, "completion": f"{i}."}
                for i in range(20_000)]
        body = "\n".join(json.dumps(row) for row in rows).encode()
        with server.client() as client:
            response = client.post("/api/datasets", files={"file": ("big.jsonl", body)})
            assert response.status_code == 202, response.text
            dataset_id = response.json()["id"]
            deadline = time.monotonic() + 120
            while holder(dataset_id) is None and time.monotonic() < deadline:
                time.sleep(0.02)
            frozen = holder(dataset_id)
            assert frozen, server.logs()
            group = os.getpgid(int(frozen.rpartition(":")[2]))
            assert group in [proc.pid for proc in workers]
            os.killpg(group, signal.SIGSTOP)  # mid-file: no more heartbeats, no progress
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                dataset = client.get(f"/api/datasets/{dataset_id}").json()
                if dataset["status"] != "processing":
                    break
                time.sleep(0.5)
        assert dataset["status"] == "ready", (dataset, server.logs())
        assert dataset["num_rows"] == 20_000
        assert holder(dataset_id) not in (None, frozen)  # the second worker finished it
    finally:
        for proc in workers:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        stop_server(server)
