"""Faults injected into real parts (uvicorn + Celery worker + training child, 127.0.0.1 only):
a worker SIGKILLed mid-run, cancelling queued and running runs, Redis restarting mid-run, and
many clients at once. Each test is bounded in time and in the number of requests."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.cli import worker_command
from tests.conftest import ROOT, free_port, start_server, stop_server

ROWS = [{"prompt": f"Say the word number {i}.", "completion": f" Word {i % 3}."} for i in range(24)]
FAST = {"per_device_train_batch_size": 2, "learning_rate": 1e-3, "max_length": 48,
        "eval_split": 0}


def upload(client: httpx.Client, name: str = "rows.jsonl") -> int:
    body = "\n".join(json.dumps(r) for r in ROWS).encode()
    response = client.post("/api/datasets", files={"file": (name, body)})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def launch(client: httpx.Client, dataset_id: int, **hyperparameters) -> dict:
    response = client.post("/api/runs", json={
        "dataset_id": dataset_id, "strategy": "sft", "base_model": "tiny-random-llama",
        "hyperparameters": {**FAST, **hyperparameters}})
    assert response.status_code == 201, response.text
    return response.json()


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def loss_steps(client: httpx.Client, run_id: int) -> list[int]:
    series = client.get(f"/api/runs/{run_id}/metrics?names=loss").json()["metrics"]
    return [step for step, _ in series.get("loss", [])]


STEPS = 60


@pytest.fixture
def fault_server():
    server = start_server("faults-sigkill", extra_env={"TUNEDECK_WORKER_LOST_AFTER_S": "10"})
    yield server
    stop_server(server)


@pytest.mark.slow
def test_killed_worker_fails_run_then_resume_completes(fault_server):
    server = fault_server
    with server.client() as client:
        dataset_id = upload(client)
        # Long enough that a quiet machine cannot finish before the kill.
        run = launch(client, dataset_id, max_steps=STEPS, save_steps=2)
        run_id = run["id"]

        def checkpointed():
            current = client.get(f"/api/runs/{run_id}").json()
            assert current["status"] in ("queued", "running"), current
            return current["status"] == "running" and current["best_checkpoint"] and current
        wait_until(checkpointed, timeout=120, what="a first checkpoint")
        server.processes[1].kill()  # SIGKILL the Celery worker; its training child follows
        server.processes[1].wait(timeout=10)
        killed_at = time.monotonic()
        step_at_kill = client.get(f"/api/runs/{run_id}").json()["step"]
        assert step_at_kill < STEPS, "the run finished before the worker could be killed"

        failed = server.wait_for_run(run_id, timeout=60)
        assert time.monotonic() - killed_at < 60
        assert failed["status"] == "failed" and failed["error"].startswith("worker lost"), failed
        steps_before = loss_steps(client, run_id)
        assert steps_before and steps_before == list(range(1, steps_before[-1] + 1))

        # With no worker alive a queued run stays queued; cancelled, it never starts.
        queued = launch(client, dataset_id, max_steps=2)
        cancelled = client.post(f"/api/runs/{queued['id']}/cancel").json()
        assert cancelled["status"] == "cancelled"

        log = open(server.data_dir / "worker2.log", "wb")  # noqa: SIM115 (closed by the OS)
        server.processes.append(subprocess.Popen(worker_command("training", "faults-second"),
                                                 cwd=ROOT, env=server.env, stdout=log,
                                                 stderr=subprocess.STDOUT))
        resumed = client.post(f"/api/runs/{run_id}/resume")
        assert resumed.status_code == 200, resumed.text
        resumed = resumed.json()
        assert resumed["status"] in ("queued", "running") and resumed["error"] is None
        checkpoint_step = resumed["best_checkpoint"]["step"]

        done = server.wait_for_run(run_id, timeout=150)
        assert done["status"] == "completed", f"{done['error']}\n{server.logs()}"
        assert done["step"] == STEPS
        # The curve continues from the checkpoint: every step once, no gap, no duplicate.
        assert loss_steps(client, run_id) == list(range(1, STEPS + 1))
        steps = [c["step"] for c in client.get(f"/api/runs/{run_id}/checkpoints").json()]
        assert checkpoint_step in steps and steps[-1] == STEPS
        assert client.post(f"/api/runs/{run_id}/resume").status_code == 409  # completed is final

        never = client.get(f"/api/runs/{queued['id']}").json()
        assert never["status"] == "cancelled" and never["started_at"] is None


@pytest.mark.slow
def test_cancel_running_run_stops_promptly_and_keeps_checkpoints(live_server):
    with live_server.client() as client:
        run_id = launch(client, upload(client), max_steps=300, save_steps=2)["id"]
        wait_until(lambda: client.get(f"/api/runs/{run_id}").json()["step"] >= 3,
                   timeout=120, what="step 3")
        response = client.post(f"/api/runs/{run_id}/cancel")
        asked_at = time.monotonic()
        assert response.status_code == 200 and response.json()["cancel_requested"]
        done = live_server.wait_for_run(run_id, timeout=60)
        # The callback polls the flag about once a second and stops at the end of that step.
        assert time.monotonic() - asked_at < 15
        assert done["status"] == "cancelled" and done["step"] < 300, done
        steps = [c["step"] for c in client.get(f"/api/runs/{run_id}/checkpoints").json()]
        assert steps and steps[-1] == done["step"]  # the stopping step is saved too
        assert loss_steps(client, run_id) == list(range(1, done["step"] + 1))
        assert client.post(f"/api/runs/{run_id}/cancel").status_code == 409


@pytest.fixture
def own_redis():
    """A Redis of this test's own (the shared one at 6379 serves the rest of the suite)."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--daemonize", "no"]
    state = {}

    def start():
        state["proc"] = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        import redis

        wait_until(lambda: _pings(redis.Redis(port=port)), timeout=20, what="redis")

    def stop():
        state["proc"].terminate()
        state["proc"].wait(timeout=10)

    start()
    yield port, start, stop
    if state["proc"].poll() is None:
        stop()


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


@pytest.mark.slow
def test_redis_restart_mid_run_does_not_fail_it(own_redis):
    port, start_redis, stop_redis = own_redis
    server = start_server("faults-redis",
                          extra_env={"TUNEDECK_BROKER_URL": f"redis://127.0.0.1:{port}/0"})
    try:
        with server.client() as client:
            dataset_id = upload(client)
            run_id = launch(client, dataset_id, max_steps=8, save_steps=4)["id"]
            wait_until(lambda: client.get(f"/api/runs/{run_id}").json()["step"] >= 1,
                       timeout=120, what="the first training step")
            stop_redis()
            health = client.get("/healthz")
            assert health.status_code == 503 and health.json()["broker"].startswith("down")
            time.sleep(2)
            start_redis()
            done = server.wait_for_run(run_id, timeout=120)
            assert done["status"] == "completed", f"{done['error']}\n{server.logs()}"
            assert loss_steps(client, run_id) == list(range(1, 9))
            assert client.get("/healthz").status_code == 200
            # The worker reconnected: it takes a task published after the restart (a run
            # cancelled while queued, so the task only logs that it skips it).
            second = launch(client, dataset_id, max_steps=2)["id"]
            assert client.post(f"/api/runs/{second}/cancel").json()["status"] == "cancelled"
            worker_log = server.data_dir / "worker.log"
            skipped = f"nothing to claim for run {second}'s message"
            wait_until(lambda: skipped in worker_log.read_text(),
                       timeout=90, what="the worker to take a task after the restart")
    finally:
        stop_server(server)


@pytest.mark.slow
def test_many_clients_at_once(any_live_server):
    """4 runs launched (the first training, the others queued or training after it), 20 uploads
    and 50 clients polling run pages at once: no 5xx and no "database is locked" on SQLite (WAL)
    or PostgreSQL. The load lasts while the first run trains; the rest are then cancelled, as
    one worker trains them one after another and more training adds time, not contention."""
    server = any_live_server
    with server.client() as client:
        dataset_id = upload(client)
        run_ids = [launch(client, dataset_id, max_steps=2, save_steps=2)["id"] for _ in range(4)]
    statuses: list[int] = []
    lock = threading.Lock()
    finished = threading.Event()

    def record(response: httpx.Response) -> None:
        with lock:
            statuses.append(response.status_code)

    def uploader(i: int) -> None:
        with server.client() as own:
            body = "\n".join(json.dumps(r) for r in ROWS).encode()
            response = own.post("/api/datasets", files={"file": (f"c{i}.jsonl", body)})
            record(response)
            assert response.status_code == 201, response.text

    def poller(i: int) -> None:
        run_id = run_ids[i % 4]
        with server.client() as own:
            for n in range(40):  # until the runs end, at most 40 rounds
                for path in (f"/runs/{run_id}", f"/api/runs/{run_id}",
                             f"/api/runs/{run_id}/metrics"):
                    record(own.get(path))
                if finished.is_set() and n >= 2:
                    return
                time.sleep(0.5)

    with ThreadPoolExecutor(max_workers=70) as pool:
        futures = [pool.submit(uploader, i) for i in range(20)]
        futures += [pool.submit(poller, i) for i in range(50)]
        try:
            first = server.wait_for_run(run_ids[0], timeout=240)
            assert first["status"] == "completed", f"{first['error']}\n{server.logs()}"
        finally:
            finished.set()
        with server.client() as client:
            for run_id in run_ids[1:]:
                client.post(f"/api/runs/{run_id}/cancel")  # 409 if it already ended
            for run_id in run_ids[1:]:
                assert server.wait_for_run(run_id, timeout=120)["status"] != "failed"
        for future in futures:
            future.result(timeout=120)
    assert len(statuses) >= 20 + 50 * 3 * 3
    assert not [s for s in statuses if s >= 500], sorted(set(statuses))
    for log in [*server.data_dir.glob("*.log"), *server.data_dir.rglob("train.log")]:
        assert "database is locked" not in log.read_text(errors="replace"), log
