"""The REST API's answers to good and bad requests, in process against a migrated SQLite."""

from __future__ import annotations

import json

import pytest

from app.core.config import settings

GOOD = "\n".join(json.dumps({"prompt": f"p{i}", "completion": f"c{i}"}) for i in range(5)).encode()


def upload(client, body: bytes, filename: str = "data.jsonl", **data):
    return client.post("/api/datasets", files={"file": (filename, body)}, data=data)


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_upload_list_preview(client):
    created = upload(client, GOOD, filename="../../evil.jsonl").json()
    assert created["num_rows"] == 5 and created["columns"] == ["prompt", "completion"]
    assert created["original_filename"] == "evil.jsonl"
    ids = [d["id"] for d in client.get("/api/datasets").json()]
    assert created["id"] in ids
    preview = client.get(f"/api/datasets/{created['id']}/preview?limit=2").json()
    assert [row["prompt"] for row in preview["rows"]] == ["p0", "p1"]
    # The stored file sits under a generated name inside the data directory.
    stored = list((settings.resolved_data_dir / "artifacts" / "datasets").glob("*.jsonl"))
    assert stored and all(".." not in p.name and "evil" not in p.name for p in stored)


def test_upload_named(client):
    assert upload(client, GOOD, filename="x.jsonl", name="My set").json()["name"] == "My set"


@pytest.mark.parametrize(
    "body,name,fragment",
    [
        (b"", "empty.jsonl", "empty"),
        (b'{"completion": "b"}\n', "missing.jsonl", "prompt"),
        (b'{"prompt": "a", "completion": "b"}\n{oops\n', "broken.jsonl", "line 2"),
    ],
)
def test_bad_uploads_are_422_and_store_nothing(client, body, name, fragment):
    before = len(client.get("/api/datasets").json())
    response = upload(client, body, filename=name)
    assert response.status_code == 422
    assert fragment in response.json()["detail"]
    assert len(client.get("/api/datasets").json()) == before


def test_upload_over_limit_is_413(client, monkeypatch):
    monkeypatch.setattr(settings, "max_upload_mb", 1)
    before = len(client.get("/api/datasets").json())
    response = upload(client, GOOD + b"\n" + b" " * (2 * 1024 * 1024))
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert len(client.get("/api/datasets").json()) == before
    assert not list((settings.resolved_data_dir / "tmp").glob("*.upload"))


def test_upload_without_multipart_is_400(client):
    response = client.post("/api/datasets", content=b"x", headers={"content-type": "text/plain"})
    assert response.status_code == 400
    assert "multipart" in response.json()["detail"]


def test_unknown_ids_are_404(client):
    for path in (
        "/api/datasets/999999",
        "/api/datasets/999999/preview",
        "/api/runs/999999",
        "/api/runs/999999/metrics",
        "/api/runs/999999/checkpoints",
        "/api/runs/999999/checkpoints/best/download",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "not found" in response.json()["detail"]


@pytest.fixture
def dataset_id(client):
    return upload(client, GOOD).json()["id"]


@pytest.mark.parametrize(
    "body,fragment",
    [
        ({"hyperparameters": {"max_stepz": 5}}, "did you mean 'max_steps'"),
        ({"hyperparameters": {"learning_rate": -1}}, "hyperparameters.learning_rate"),
        ({"base_model": "../../etc"}, "base_model"),
        ({"strategy": "dpo"}, "chosen"),
        ({"strategy": "ppo"}, "strategy"),
        ({"reward_functions": [{"name": "exact_answer"}]}, "GRPO"),
        ({"dataset_id": 999999}, "dataset 999999 not found"),
    ],
)
def test_bad_run_requests_say_what_to_fix(client, dataset_id, body, fragment):
    response = client.post(
        "/api/runs", json={"dataset_id": dataset_id, "base_model": "tiny-random-llama", **body}
    )
    assert response.status_code in (404, 422), response.text
    assert fragment in response.json()["detail"]


def test_queued_run_can_be_cancelled_once(client, dataset_id):
    run = client.post(
        "/api/runs",
        json={
            "dataset_id": dataset_id,
            "base_model": "tiny-random-llama",
            "hyperparameters": {"max_steps": 2},
        },
    ).json()
    assert run["status"] == "queued"
    cancelled = client.post(f"/api/runs/{run['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/runs/{run['id']}/cancel")
    assert again.status_code == 409
    assert "already cancelled" in again.json()["detail"]
