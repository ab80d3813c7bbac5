"""Lost messages of evaluations and playground generations, through real parts (uvicorn, the
filesystem broker, Celery workers): while no worker runs, an evaluation whose message vanished is
published again by the web process's reaper and a playground request no worker took fails with a
reason; a worker started then evaluates once and leaves the failed request alone."""

from __future__ import annotations

import json
import subprocess

import pytest

from app.cli import worker_command
from tests.conftest import ROOT, LiveServer, start_server, stop_server
from tests.integration.test_faults import launch, upload, wait_until
from tests.integration.test_requeue import REQUEUE_ENV


@pytest.fixture
def server_without_worker():
    server = start_server("requeue-jobs", extra_env=REQUEUE_ENV, worker=False)
    yield server
    stop_server(server)


def start_worker(server: LiveServer, log_name: str) -> subprocess.Popen:
    log = open(server.data_dir / log_name, "wb")  # noqa: SIM115 (closed by the OS)
    worker = subprocess.Popen(worker_command("training", log_name), cwd=ROOT, env=server.env,
                              stdout=log, stderr=subprocess.STDOUT)
    server.processes.append(worker)
    return worker


def evaluate_messages(broker, evaluation_id: int) -> list:
    found = []
    for path in broker.glob("*.training.msg"):
        try:
            headers = json.loads(path.read_text())["headers"]
        except (FileNotFoundError, ValueError):  # consumed or half-written meanwhile
            continue
        if headers["task"] == "tunedeck.evaluate" and headers["argsrepr"] == f"[{evaluation_id}]":
            found.append(path)
    return found


def test_lost_evaluation_is_republished_and_lost_generation_fails(server_without_worker):
    server = server_without_worker
    broker = server.data_dir / "broker"
    with server.client() as client:
        dataset_id = upload(client)
        run_id = launch(client, dataset_id, max_steps=2, save_steps=2)["id"]
        trainer = start_worker(server, "worker-train.log")
        run = server.wait_for_run(run_id, timeout=120)
        assert run["status"] == "completed", f"{run['error']}\n{server.logs()}"
        trainer.terminate()
        trainer.wait(timeout=30)

        generation = client.post("/api/playground", json={
            "run_id": run_id, "prompt": "Say the word number 1.", "max_new_tokens": 4}).json()
        response = client.post(f"/api/runs/{run_id}/evaluations", json={
            "checkpoint": 2, "dataset_id": dataset_id, "limit": 4, "max_new_tokens": 4})
        assert response.status_code == 201, response.text
        evaluation_id = response.json()["id"]
        # The broker loses the evaluation's message while no worker runs.
        (lost,) = evaluate_messages(broker, evaluation_id)
        lost.unlink()

        # Published again, and again after the doubled wait (1 s, then 2 s).
        wait_until(lambda: len(evaluate_messages(broker, evaluation_id)) >= 2, timeout=30,
                   what="the reaper to publish the evaluation's task twice")
        assert client.get(f"/api/evaluations/{evaluation_id}").json()["status"] == "queued"
        failed = client.get(f"/api/playground/{generation['id']}").json()
        assert failed["status"] == "failed", failed
        assert failed["error"].startswith("no worker took this request within 1 s")

        start_worker(server, "worker-eval.log")
        done = wait_until(
            lambda: (e := client.get(f"/api/evaluations/{evaluation_id}").json())["status"]
            in ("completed", "failed") and e, timeout=120, what="the evaluation to finish")
        assert done["status"] == "completed", f"{done['error']}\n{server.logs()}"
        assert done["results"]["scores"]
        # The spare message found the evaluation claimed, the generation's late one found it
        # failed: each did nothing.
        wait_until(lambda: not list(broker.glob("*.training.msg")), timeout=30,
                   what="the worker to consume the spare messages")
        log = (server.data_dir / "worker-eval.log").read_text()

        def outcomes(task: str) -> list[str]:
            return sorted(line.rsplit(": ", 1)[-1] for line in log.splitlines()
                          if f"Task {task}[" in line and " succeeded in " in line)

        evaluated = outcomes("tunedeck.evaluate")
        assert len(evaluated) >= 2 and evaluated == ["'done'"] + ["'skipped'"] * (
            len(evaluated) - 1), log[-3000:]
        assert outcomes("tunedeck.generate") == ["'skipped'"], log[-3000:]
        assert client.get(f"/api/playground/{generation['id']}").json() == failed
