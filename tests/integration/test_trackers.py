"""Tracker settings through the API (in-process app, real SQLite): a run's own mirrors or the
server's defaults are fixed at launch, travel in its run file, show on the launch form and the
run page; a failing tracker is a health warning; no TensorBoard files is a clear 404."""

from __future__ import annotations

import json

import yaml

from app.core.config import settings
from app.core.db import session_scope
from app.domain import trackers
from app.domain.models import Run

ROWS = [{"prompt": f"Say {i}.", "completion": f" {i}."} for i in range(8)]


def dataset_id(client) -> int:
    body = "\n".join(json.dumps(r) for r in ROWS).encode()
    response = client.post("/api/datasets", files={"file": ("t.jsonl", body)})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def launch(client, **extra) -> dict:
    response = client.post("/api/runs", json={"dataset_id": dataset_id(client),
                                              "queue": "nobody-listens", **extra})
    assert response.status_code == 201, response.text
    return response.json()


def test_own_trackers_are_kept_and_travel_in_the_run_file(client):
    mine = {"mlflow": {"tracking_uri": "http://mlflow.internal:5000", "experiment": "exp-a"},
            "tensorboard": True,
            "wandb": {"project": "lora-runs", "entity": "my-team", "mode": "offline"},
            "trackio": {"project": "lora-runs"}}
    run = launch(client, trackers=mine)
    assert run["trackers"] == mine
    assert client.get(f"/api/runs/{run['id']}/trackers").json()["trackers"] == mine
    request = yaml.safe_load(client.get(f"/api/runs/{run['id']}/run.yaml").text)
    assert request["trackers"] == mine
    page = client.get(f"/runs/{run['id']}").text
    assert "http://mlflow.internal:5000" in page and "waiting for the run" in page
    assert "my-team/lora-runs" in page and 'data-tracker="trackio"' in page
    # Left out, W&B's project is "tunedeck" and its mode the worker's (WANDB_MODE).
    run = launch(client, trackers={"wandb": {}})
    assert run["trackers"]["wandb"] == {"project": "tunedeck", "entity": None, "mode": None}
    missing = client.get(f"/api/runs/{run['id']}/tensorboard.zip")
    assert missing.status_code == 404
    assert "no TensorBoard files" in missing.json()["detail"]


def test_server_defaults_apply_when_the_request_names_none(client, monkeypatch):
    monkeypatch.setattr(settings, "mlflow_tracking_uri", "http://default-mlflow:5000")
    monkeypatch.setattr(settings, "tensorboard", True)
    monkeypatch.setattr(settings, "wandb_project", "team-runs")
    monkeypatch.setattr(settings, "trackio_project", "local-runs")
    run = launch(client)
    assert run["trackers"] == {"mlflow": {"tracking_uri": "http://default-mlflow:5000",
                                          "experiment": "tunedeck"}, "tensorboard": True,
                               "wandb": {"project": "team-runs", "entity": None, "mode": None},
                               "trackio": {"project": "local-runs"}}
    form = client.get("/runs/new").text
    assert 'value="http://default-mlflow:5000"' in form
    assert 'value="team-runs"' in form and 'value="local-runs"' in form
    assert launch(client, trackers={})["trackers"] == {"mlflow": None, "tensorboard": False,
                                                       "wandb": None, "trackio": None}


def test_a_failing_tracker_is_a_health_warning_on_the_run(client):
    run = launch(client, trackers={"mlflow": {"tracking_uri": "http://127.0.0.1:9"}})
    assert not [f for f in client.get(f"/api/runs/{run['id']}/health").json()
                if f["code"].startswith("tracker_")]
    with session_scope() as session:
        trackers.record_status(session, run["id"], "mlflow", state="failing", points=12,
                               error="ConnectionError: refused", failed_at_step=7)
        assert session.get(Run, run["id"]).tracker_status["mlflow"]["points"] == 12
    flags = client.get(f"/api/runs/{run['id']}/health").json()
    warning = [f for f in flags if f["code"] == "tracker_unreachable:mlflow"]
    assert warning == [{
        "code": "tracker_unreachable:mlflow", "severity": "warning", "step": 7,
        "message": "MLflow mirror failed at step 7: ConnectionError: refused",
        "explanation": warning[0]["explanation"]}]
    assert "after 12 values" in warning[0]["explanation"]
    page = client.get(f"/runs/{run['id']}").text
    assert 'data-state="failing"' in page and "ConnectionError: refused" in page


def test_bad_tracker_settings_are_refused_with_the_field_path(client):
    dataset = {"id": dataset_id(client)}
    for mirrors, field in [({"mlflow": {"tracking_uri": "file:///etc"}}, "tracking_uri"),
                            ({"neptune": True}, "neptune"),
                            ({"mlflow": {}}, "tracking_uri"),
                            ({"wandb": {"project": "a/b"}}, "wandb.project"),
                            ({"wandb": {"mode": "disabled"}}, "wandb.mode"),
                            ({"wandb": {"api_key": "k"}}, "wandb.api_key"),
                            ({"trackio": {"project": ""}}, "trackio.project")]:
        response = client.post("/api/runs", json={"dataset_id": dataset["id"],
                                                  "trackers": mirrors})
        assert response.status_code == 422, response.text
        assert field in json.dumps(response.json()["detail"]), response.text
