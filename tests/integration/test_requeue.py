"""Lost broker messages, through real parts: a run whose task message vanished while it waited
(no worker yet) is published again by the web process's reaper and then trained, on the
filesystem broker; on Redis, a purged queue gets the run's task back."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from app.cli import worker_command
from tests.conftest import ROOT, start_server, stop_server
from tests.integration.test_faults import launch, upload, wait_until

REQUEUE_ENV = {"TUNEDECK_REQUEUE_AFTER_S": "1"}


@pytest.fixture
def server_without_worker():
    server = start_server("requeue-fs", extra_env=REQUEUE_ENV, worker=False)
    yield server
    stop_server(server)


def test_lost_message_is_republished_and_the_run_trains_once(server_without_worker):
    server = server_without_worker
    broker = server.data_dir / "broker"
    with server.client() as client:
        run_id = launch(client, upload(client), max_steps=2)["id"]
        # The broker loses the message: its folder is wiped while the run waits.
        for message in broker.glob("*.training.msg"):
            message.unlink()
        republished = wait_until(lambda: list(broker.glob("*.training.msg")), timeout=30,
                                 what="the reaper to publish the run's task again")
        body = json.loads(republished[0].read_text())
        assert body["headers"]["task"] == "tunedeck.train_run"
        assert body["headers"]["argsrepr"] == f"[{run_id}]"
        assert client.get(f"/api/runs/{run_id}").json()["status"] == "queued"

        log = open(server.data_dir / "worker.log", "wb")  # noqa: SIM115 (closed by the OS)
        server.processes.append(subprocess.Popen(worker_command("training", "requeue"),
                                                 cwd=ROOT, env=server.env, stdout=log,
                                                 stderr=subprocess.STDOUT))
        done = server.wait_for_run(run_id, timeout=120)
        assert done["status"] == "completed", f"{done['error']}\n{server.logs()}"
        # Spare messages (one per re-publish) found the run claimed: it trained exactly once.
        assert done["attempt"] == 1 and done["step"] == 2


@pytest.mark.postgres
def test_purged_redis_queue_gets_the_run_back():
    import redis

    url = "redis://127.0.0.1:6379/13"
    queue = f"requeue-{uuid.uuid4().hex[:8]}"  # no worker listens on it
    broker = redis.Redis.from_url(url)
    server = start_server("requeue-redis", extra_env={**REQUEUE_ENV, "TUNEDECK_BROKER_URL": url},
                          worker=False)
    try:
        with server.client() as client:
            dataset_id = upload(client)
            response = client.post("/api/runs", json={
                "dataset_id": dataset_id, "strategy": "sft", "base_model": "tiny-random-llama",
                "queue": queue, "hyperparameters": {"max_steps": 2}})
            assert response.status_code == 201, response.text
            run_id = response.json()["id"]
            assert broker.llen(queue) >= 1
            broker.delete(queue)  # what a restart without persistence leaves
            wait_until(lambda: broker.llen(queue) >= 1, timeout=30,
                       what="the reaper to publish the run's task again")
            message = json.loads(broker.lindex(queue, 0))
            assert message["headers"]["argsrepr"] == f"[{run_id}]"
            assert client.post(f"/api/runs/{run_id}/cancel").json()["status"] == "cancelled"
    finally:
        stop_server(server)
        broker.delete(queue)
