"""A worker SIGKILLed while it evaluates, through real parts (uvicorn, the filesystem broker, a
Celery worker and its evaluation child): the evaluation stops heartbeating, the web process's
reaper fails it ("worker lost") instead of leaving it running forever, and it can be requested
again."""

from __future__ import annotations

import pytest

from tests.conftest import start_server, stop_server
from tests.integration.test_faults import launch, upload, wait_until

LOST_AFTER_S = 8  # heartbeat every 2 s, reaper pass every 2.7 s


@pytest.fixture
def server():
    server = start_server("reap-jobs",
                          extra_env={"TUNEDECK_WORKER_LOST_AFTER_S": str(LOST_AFTER_S)})
    yield server
    stop_server(server)


def test_killed_worker_fails_running_evaluation(server):
    with server.client() as client:
        dataset_id = upload(client)
        run_id = launch(client, dataset_id, max_steps=2, save_steps=2)["id"]
        run = server.wait_for_run(run_id, timeout=120)
        assert run["status"] == "completed", f"{run['error']}\n{server.logs()}"

        request = {"checkpoint": 2, "dataset_id": dataset_id, "limit": 24,
                   "max_new_tokens": 768}
        response = client.post(f"/api/runs/{run_id}/evaluations", json=request)
        assert response.status_code == 201, response.text
        evaluation_id = response.json()["id"]

        def running():
            evaluation = client.get(f"/api/evaluations/{evaluation_id}").json()
            assert evaluation["status"] in ("queued", "running"), evaluation
            return evaluation["status"] == "running"
        wait_until(running, timeout=60, what="the worker to claim the evaluation")
        worker = server.processes[1]
        worker.kill()  # SIGKILL; its evaluation child follows (PR_SET_PDEATHSIG)
        worker.wait(timeout=10)

        failed = wait_until(
            lambda: (e := client.get(f"/api/evaluations/{evaluation_id}").json())["status"]
            != "running" and e, timeout=LOST_AFTER_S + 20, what="the reaper to fail it")
        assert failed["status"] == "failed", failed
        assert failed["error"].startswith("worker lost: no heartbeat from "), failed
        assert failed["finished_at"] is not None and failed["progress"] < 1
        listed = client.get(f"/api/runs/{run_id}/evaluations").json()
        assert any(e["id"] == evaluation_id and e["error"] == failed["error"] for e in listed)

        again = client.post(f"/api/runs/{run_id}/evaluations", json=request)
        assert again.status_code == 201, again.text
        assert again.json()["status"] == "queued" and again.json()["id"] != evaluation_id
