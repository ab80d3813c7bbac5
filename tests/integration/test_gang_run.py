"""A run over two hosts: two workers of this machine act as two hosts (TUNEDECK_WORKER_HOST_NAME),
each giving one CPU core, with a c10d rendezvous on 127.0.0.1 and gloo between the ranks, as real
hosts would (sharing the server's data directory as real ones share artifact storage)."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest
from sqlalchemy import create_engine, text

from app.cli import worker_command
from tests.conftest import POSTGRES_URL, ROOT
from tests.integration.test_distributed_run import _ranks, _wait, upload

HOSTS = ("gang-a", "gang-b")
pytestmark = [pytest.mark.slow, pytest.mark.postgres]


class Hosts:
    """The two "hosts": one worker process each, on queue ``gang``."""

    def __init__(self, server) -> None:
        self.server = server
        self.workers: dict[str, subprocess.Popen] = {}
        self.engine = create_engine(POSTGRES_URL)

    def start(self, host: str) -> None:
        env = {**self.server.env, "TUNEDECK_WORKER_HOST_NAME": host,
               "TUNEDECK_WORKER_ADDRESS": "127.0.0.1", "TUNEDECK_WORKER_DEVICES": "cpu:1",
               "TUNEDECK_GANG_JOIN_TIMEOUT_S": "60", "TUNEDECK_AUTO_EVALUATE": "false",
               # Heartbeats every 2.5 s: a host is lost after 7.5 s without one.
               "TUNEDECK_WORKER_LOST_AFTER_S": "10"}
        log = open(self.server.data_dir / f"worker-{host}.log", "ab")  # noqa: SIM115
        self.workers[host] = subprocess.Popen(worker_command("gang", host), cwd=ROOT, env=env,
                                              stdout=log, stderr=subprocess.STDOUT)
        log.close()  # the child has its own copy
        pid = self.workers[host].pid
        _wait(lambda: self.scalar("SELECT count(*) FROM worker_host WHERE name = :name",
                                  name=f"{host}:{pid}"), 60, f"worker of {host} to register")

    def kill(self, host: str) -> None:
        worker = self.workers.pop(host)
        worker.kill()
        worker.wait(timeout=30)

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def reservations(self, run_id: int) -> int:
        return self.scalar("SELECT count(*) FROM device_reservation WHERE run_id = :id", id=run_id)

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.terminate()
        for worker in self.workers.values():
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        self.engine.dispose()


@pytest.fixture(scope="module")
def hosts(live_server_postgres):
    started = Hosts(live_server_postgres)
    # A fresh web process's first upload loads the tokenizer for its statistics (seconds; more
    # than a request's 30 s on a loaded machine): done here, whichever test comes first.
    with httpx.Client(base_url=live_server_postgres.url, timeout=180) as client:
        upload(client)
    try:
        for host in HOSTS:
            started.start(host)
        yield started
    finally:
        started.stop()


def _launch(client, **hyperparameters) -> int:
    response = client.post("/api/runs", json={
        "dataset_id": upload(client), "base_model": "tiny-random-llama", "queue": "gang",
        "hyperparameters": {"learning_rate": 1e-3, "max_length": 64, "num_hosts": 2,
                            "num_processes": 1, "per_device_train_batch_size": 2,
                            **hyperparameters}})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_killing_one_hosts_worker_fails_the_run_naming_it_and_resume_completes(hosts):
    server = hosts.server
    with server.client() as client:
        run_id = _launch(client, max_steps=10, save_steps=2)
        _wait(lambda: client.get(f"/api/runs/{run_id}/checkpoints").json(), 120,
              "a first checkpoint")
        run = client.get(f"/api/runs/{run_id}").json()
        assert run["status"] == "running", run
        node_0 = run["worker"].rpartition(":")[0]
        other = next(host for host in HOSTS if host != node_0)
        assert hosts.reservations(run_id) == 2
        started = time.monotonic()
        hosts.kill(other)

        run = server.wait_for_run(run_id, timeout=90)
        assert run["status"] == "failed", run
        assert f"host {other} (node 1 of 2)" in run["error"], run["error"]
        print(f"failed {time.monotonic() - started:.0f} s after the kill: {run['error']}")
        _wait(lambda: hosts.reservations(run_id) == 0, 30, "both reservations released")
        _wait(lambda: not _ranks(run_id), 60, "every rank of both hosts to stop")

        hosts.start(other)  # the host comes back; the resumed run waits for both hosts again
        assert client.post(f"/api/runs/{run_id}/resume").status_code == 200
        run = server.wait_for_run(run_id, timeout=180)
        assert run["status"] == "completed", f"{run['error']}\n{server.logs()}"
        losses = client.get(f"/api/runs/{run_id}/metrics?names=loss").json()["metrics"]["loss"]
        steps = [step for step, _ in losses]
        assert steps[-1] == 10 and len(steps) == len(set(steps)) == 10, steps
    _wait(lambda: hosts.reservations(run_id) == 0, 30, "the reservations released")


def _assert_trained_on_both_hosts(hosts, client, run_id: int) -> None:
    """What a two-host run of 4 steps (a checkpoint every 2) shows once it completed."""
    server = hosts.server
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "completed", f"{run['error']}\n{server.logs()}"
    assert sorted(node["host"] for node in run["hosts"]) == list(HOSTS), run["hosts"]
    assert all(node["devices"] == ["cpu:0"] for node in run["hosts"])
    assert run["rendezvous_endpoint"].startswith("127.0.0.1:")
    # Global rank 0 alone reports: one row per step and metric, one checkpoint per save.
    metrics = client.get(f"/api/runs/{run_id}/metrics").json()["metrics"]
    for name in ("loss", "learning_rate"):
        assert [step for step, _ in metrics[name]] == [1, 2, 3, 4], (name, metrics[name])
    assert [c["step"] for c in client.get(f"/api/runs/{run_id}/checkpoints").json()] == [2, 4]
    page = client.get(f"/runs/{run_id}").text
    assert 'id="run-hosts"' in page and all(f"{host} (cpu:0)" in page for host in HOSTS)
    _wait(lambda: hosts.reservations(run_id) == 0, 30, "both hosts' reservations released")
    node_log = server.data_dir / "runs" / str(run_id) / "train-node-1.log"
    assert "rank" in node_log.read_text(), node_log.read_text()[-3000:]


def test_a_gang_run_waits_for_busy_hosts_saying_why_then_takes_them_and_trains(hosts):
    """The waiting run, once it has both hosts, is also the suite's two-host run trained to
    completion (one training fewer than a test of its own)."""
    server = hosts.server
    with server.client() as client:
        blocker = _launch(client, max_steps=2000, save_steps=1000)
        _wait(lambda: client.get(f"/api/runs/{blocker}").json()["status"] == "running", 120,
              "the first run to start")
        waiting = _launch(client, max_steps=4, save_steps=2)
        run = _wait(lambda: (found := client.get(f"/api/runs/{waiting}").json())["phase"]
                    == "waiting_for_devices" and found, 120, "the waiting reason")
        assert run["status"] == "queued"
        assert "waiting for hosts: 2 hosts × 1 devices needed; queue 'gang' has 2 live hosts" \
            in run["phase_label"], run
        assert f"devices held by run {blocker}" in run["phase_label"], run
        page = client.get(f"/runs/{waiting}").text
        assert 'id="waiting-reason"' in page and f"devices held by run {blocker}" in page
        # Cancelling the first stops its ranks on both hosts (once they train: they stop at a
        # step); the second then takes them both.
        _wait(lambda: client.get(f"/api/runs/{blocker}").json()["step"] >= 1, 180,
              "the first run's first step")
        client.post(f"/api/runs/{blocker}/cancel")
        stopped = server.wait_for_run(blocker, timeout=90)
        assert stopped["status"] == "cancelled", (stopped, server.logs())
        _wait(lambda: not _ranks(blocker), 60, "the first run's ranks to stop")
        _wait(lambda: hosts.reservations(blocker) == 0, 30, "its reservations released")
        done = server.wait_for_run(waiting, timeout=240)
        assert done["status"] == "completed", (done, server.logs())
        assert sorted(host["host"] for host in done["hosts"]) == ["gang-a", "gang-b"], done
        _assert_trained_on_both_hosts(hosts, client, waiting)
