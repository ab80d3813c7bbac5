"""Odd and hostile input through the real app (in process): the bad-dataset corpus over HTTP,
ids and limits out of range, unicode, and schemathesis across the OpenAPI schema. The rule: a
4xx that says what is wrong, never a 5xx, and nothing stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from app.core.config import settings

BAD_INPUTS = sorted(p for p in (Path(__file__).parents[1] / "fixtures" / "bad_inputs").iterdir()
                    if p.is_file())
HUGE = "9" * 30


def stored_files() -> set[Path]:
    return {p for p in settings.resolved_data_dir.rglob("*") if p.is_file()
            and "broker" not in p.parts and p.suffix not in (".db", ".db-wal", ".db-shm")}


def test_corpus_is_large_enough():
    assert len(BAD_INPUTS) >= 20


@pytest.mark.parametrize("path", BAD_INPUTS, ids=lambda p: p.name)
def test_bad_input_is_refused_and_stores_nothing(client, path):
    before_rows, before_files = client.get("/api/datasets").json(), stored_files()
    response = client.post("/api/datasets", files={"file": (path.name, path.read_bytes())})
    assert 400 <= response.status_code < 500, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and len(detail) > 10
    assert client.get("/api/datasets").json() == before_rows
    assert stored_files() == before_files


@pytest.mark.parametrize("filename", ["../../x.jsonl", "..\\..\\x.jsonl", "/etc/x.jsonl",
                                      "x.jsonl\x00.csv", "ü n i c o d e ✓.jsonl", "", "."])
def test_hostile_filenames_store_inside_the_data_dir_only(client, filename):
    good = json.dumps({"prompt": "a", "completion": "b"}).encode()
    outside = [settings.resolved_data_dir.parent / "x.jsonl",
               settings.resolved_data_dir.parent.parent / "x.jsonl", Path("/etc/x.jsonl")]
    response = client.post("/api/datasets", files={"file": (filename, good)})
    assert response.status_code < 500, response.text
    if response.status_code == 201:
        assert "/" not in response.json()["original_filename"]
    broken = client.post("/api/datasets", files={"file": (filename, b"{oops")})
    assert 400 <= broken.status_code < 500
    assert not any(p.exists() for p in outside)


@pytest.mark.parametrize("method,path", [
    ("GET", f"/api/runs/{HUGE}"), ("GET", f"/api/datasets/{HUGE}"),
    ("GET", f"/api/datasets/{HUGE}/preview"), ("GET", f"/api/runs?dataset_id={HUGE}"),
    ("GET", f"/api/runs/{HUGE}/checkpoints/{HUGE}/download"),
    ("GET", "/api/runs/1/checkpoints/²/download"), ("GET", "/api/runs/-1"),
    ("GET", "/api/runs/0/metrics"), ("GET", "/api/runs/1/samples?limit=-5"),
    ("GET", "/api/datasets/1/preview?limit=-1"), ("GET", "/api/runs?status=🙂"),
    ("POST", f"/api/runs/{HUGE}/cancel"), ("POST", f"/api/runs/{HUGE}/resume"),
    ("GET", f"/runs/{HUGE}"), ("GET", f"/datasets/{HUGE}"), ("GET", "/runs/-3"),
    ("GET", "/api/runs/987654/metrics?names=" + "ü," * 300),
])
def test_odd_ids_and_limits_are_4xx(client, method, path):
    response = client.request(method, path)
    assert 400 <= response.status_code < 500, (path, response.status_code, response.text[:300])


@pytest.mark.parametrize("body", [
    {"dataset_id": int(HUGE), "strategy": "sft", "base_model": "tiny-random-llama"},
    {"dataset_id": -1, "strategy": "sft", "base_model": "tiny-random-llama"},
    {"dataset_id": 1, "strategy": "sft", "base_model": "tiny-random-llama",
     "name": "名前 🚀 \u202e"},
    {"dataset_id": 1, "strategy": "sft", "base_model": "x",
     "hyperparameters": {"max_steps": 1e308}},
    {"dataset_id": 1, "strategy": "sft", "base_model": "x",
     "hyperparameters": {"max_steps": HUGE}},
    [], "text", None,
])
def test_odd_run_bodies_are_never_5xx(client, body):
    response = client.post("/api/runs", json=body)
    assert response.status_code < 500, response.text[:300]


def test_resume_of_unresumable_runs_is_409(client):
    good = json.dumps({"prompt": "a", "completion": "b"}).encode()
    dataset = client.post("/api/datasets", files={"file": ("d.jsonl", good)}).json()
    run = client.post("/api/runs", json={"dataset_id": dataset["id"], "strategy": "sft",
                                         "base_model": "tiny-random-llama"}).json()
    queued = client.post(f"/api/runs/{run['id']}/resume")
    assert queued.status_code == 409 and "only failed or cancelled" in queued.json()["detail"]
    assert client.post(f"/api/runs/{run['id']}/cancel").json()["status"] == "cancelled"
    no_checkpoint = client.post(f"/api/runs/{run['id']}/resume")
    assert no_checkpoint.status_code == 409 and "checkpoint" in no_checkpoint.json()["detail"]
    assert client.post(f"/api/runs/{run['id']}/cancel").status_code == 409


@pytest.fixture
def api_schema(migrated_app):
    return schemathesis.openapi.from_asgi("/openapi.json", migrated_app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis_settings(max_examples=15, deadline=None, derandomize=True,
                     suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    case.call_and_validate(checks=[schemathesis.checks.not_a_server_error])
