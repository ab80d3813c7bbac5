"""Metric mirrors through a live server and a real Celery worker training tiny-random-llama,
against a real `mlflow server` (SQLite backend) started here on 127.0.0.1: the run's curves
arrive in MLflow with the same steps and values as TuneDeck's database; with the MLflow server
stopped mid-run the run still completes and its page shows the health warning. The TensorBoard
mirror is read back with TensorBoard's own event reader.

`mlflow server` and TensorBoard's reader run from their own virtual environment (full mlflow
would change the shared environment's pyarrow): `.ci/run` makes it at /opt/tunedeck-mlflow, or
set TUNEDECK_TEST_MLFLOW_VENV."""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import SESSION_DIR, free_port, start_server, stop_server

VENV = Path(os.environ.get("TUNEDECK_TEST_MLFLOW_VENV", "/opt/tunedeck-mlflow"))
MLFLOW = VENV / "bin" / "mlflow"
VENV_PYTHON = VENV / "bin" / "python"
ROWS = [{"prompt": f"Say the word number {i}.", "completion": f" Word {i % 3}."}
        for i in range(16)]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not MLFLOW.exists(), reason=(
        f"no `mlflow server` at {MLFLOW}: python -m venv {VENV} && "
        f"{VENV}/bin/pip install mlflow==3.17.2 tensorboard (what .ci/run does)")),
]

READ_EVENTS = """
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
acc.Reload()
print(json.dumps({tag: [[e.step, e.value] for e in acc.Scalars(tag)]
                  for tag in acc.Tags()["scalars"]}))
"""


class MlflowServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> MlflowServer:
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "mlflow.log", "wb")  # noqa: SIM115 (closed with the process)
        self.proc = subprocess.Popen(
            [str(MLFLOW), "server", "--backend-store-uri", f"sqlite:///{self.root}/mlflow.db",
             "--default-artifact-root", str(self.root / "artifacts"),
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.root / "mlflow.log").read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError("mlflow server did not start:\n"
                           + (self.root / "mlflow.log").read_text()[-3000:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)  # its own session: the server and its workers
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()


@pytest.fixture(scope="module")
def mlflow_server():
    server = MlflowServer(SESSION_DIR / "mlflow").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server():
    live = start_server("trackers")
    yield live
    stop_server(live)


def mlflow_history(url: str, run_id: str, key: str) -> list[list]:
    from mlflow.tracking import MlflowClient

    history = MlflowClient(tracking_uri=url).get_metric_history(run_id, key)
    return sorted([m.step, m.value] for m in history)


def launch(client: httpx.Client, trackers: dict, max_steps: int,
           hyperparameters: dict | None = None) -> dict:
    body = "\n".join(json.dumps(r) for r in ROWS).encode()
    dataset = client.post("/api/datasets", files={"file": ("t.jsonl", body)})
    assert dataset.status_code == 201, dataset.text
    response = client.post("/api/runs", json={
        "dataset_id": dataset.json()["id"], "base_model": "tiny-random-llama",
        "hyperparameters": {"max_steps": max_steps, "save_steps": max_steps,
                            "logging_steps": 1, "per_device_train_batch_size": 2,
                            "max_length": 48, "eval_split": 0.0, **(hyperparameters or {})},
        "trackers": trackers})
    assert response.status_code == 201, response.text
    return response.json()


def test_curves_arrive_in_mlflow_and_tensorboard_as_in_tunedeck(server, mlflow_server):
    with server.client() as client:
        run = launch(client, {"mlflow": {"tracking_uri": mlflow_server.url,
                                         "experiment": "tunedeck-live"},
                              "tensorboard": True}, max_steps=6)
        done = server.wait_for_run(run["id"], timeout=400)
        assert done["status"] == "completed", server.logs()
        ours = client.get(f"/api/runs/{run['id']}/metrics").json()["metrics"]
        assert len(ours["loss"]) == 6
        # Written at the end of the run, after the last value: wait for the thread's "done".
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = client.get(f"/api/runs/{run['id']}/trackers").json()["status"]
            if status.get("mlflow", {}).get("finished") and status.get(
                    "tensorboard", {}).get("finished"):
                break
            time.sleep(0.5)
        assert status["mlflow"]["state"] == "ok", status
        assert status["mlflow"]["points"] == sum(len(points) for points in ours.values())
        health = client.get(f"/api/runs/{run['id']}/health").json()
        assert not [f for f in health if f["code"].startswith("tracker_")]

        mlflow_run_id = status["mlflow"]["mlflow_run_id"]
        from mlflow.tracking import MlflowClient

        mirrored = MlflowClient(tracking_uri=mlflow_server.url).get_run(mlflow_run_id)
        assert mirrored.data.tags["tunedeck.run_id"] == str(run["id"])
        assert mirrored.info.status == "FINISHED"
        assert mirrored.data.params["max_steps"] == "6"
        for name, points in ours.items():  # every curve, same steps, same values
            assert mlflow_history(mlflow_server.url, mlflow_run_id, name) == sorted(points), name

        page = client.get(f"/runs/{run['id']}").text
        assert "Trackers" in page and mlflow_run_id in page
        assert f"/api/runs/{run['id']}/tensorboard.zip" in page

        archive = client.get(f"/api/runs/{run['id']}/tensorboard.zip")
        assert archive.status_code == 200, archive.text
    if not (VENV / "bin" / "tensorboard").exists():
        pytest.skip(f"no tensorboard in {VENV} to read the event files back")
    target = SESSION_DIR / f"tb-{run['id']}"
    zipfile.ZipFile(io.BytesIO(archive.content)).extractall(target)
    events = list(target.rglob("events.out.tfevents.*"))
    assert events, list(target.rglob("*"))
    read = subprocess.run([str(VENV_PYTHON), "-c", READ_EVENTS, str(events[0].parent)],
                          capture_output=True, text=True, timeout=120, check=True)
    scalars = json.loads(read.stdout)
    assert set(scalars) == set(ours)
    for name, points in ours.items():
        steps = [s for s, _ in sorted(scalars[name])]
        assert steps == [s for s, _ in sorted(points)], name
        for (_, theirs), (_, mine) in zip(sorted(scalars[name]), sorted(points), strict=True):
            assert theirs == pytest.approx(mine, rel=1e-6, abs=1e-6), name  # float32 there


def test_mlflow_stopped_mid_run_the_run_completes_with_a_warning(server):
    doomed = MlflowServer(SESSION_DIR / "mlflow-doomed").start()
    try:
        with server.client() as client:
            run = launch(client, {"mlflow": {"tracking_uri": doomed.url}}, max_steps=60)
            # Stop MLflow once it has received part of the curve, while the run still trains.
            deadline = time.monotonic() + 400
            while time.monotonic() < deadline:
                status = client.get(f"/api/runs/{run['id']}/trackers").json()["status"]
                mlflow_run_id = status.get("mlflow", {}).get("mlflow_run_id")
                if mlflow_run_id and mlflow_history(doomed.url, mlflow_run_id, "loss"):
                    break
                time.sleep(0.3)
            else:
                raise AssertionError(f"no loss reached MLflow: {status}\n{server.logs()}")
            doomed.stop()
            stopped_at = client.get(f"/api/runs/{run['id']}").json()
            assert stopped_at["status"] == "running", stopped_at  # else the test proves nothing

            done = server.wait_for_run(run["id"], timeout=600)
            assert done["status"] == "completed", server.logs()
            ours = client.get(f"/api/runs/{run['id']}/metrics").json()["metrics"]
            assert len(ours["loss"]) == 60  # TuneDeck's own curve is whole
            status = client.get(f"/api/runs/{run['id']}/trackers").json()
            assert status["status"]["mlflow"]["state"] == "failing", status
            assert status["status"]["mlflow"]["error"]
            health = client.get(f"/api/runs/{run['id']}/health").json()
            warning = [f for f in health if f["code"] == "tracker_unreachable:mlflow"]
            assert warning and warning[0]["severity"] == "warning", health
            assert "MLflow mirror failed" in warning[0]["message"]
            page = client.get(f"/runs/{run['id']}").text
            assert 'data-state="failing"' in page
    finally:
        doomed.stop()

