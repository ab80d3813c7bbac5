"""DELETE for runs, datasets, evaluations and checkpoints (issue 17, item 9) against the migrated
SQLite and the real artifact store: refused with a 409 that says why while something uses the
thing, files gone from storage once it is deleted."""

from __future__ import annotations

import json

import pytest

from app.core.db import SessionLocal
from app.core.storage import store
from app.domain.checkpoints import record_checkpoint
from app.domain.models import Dataset, Evaluation, JobStatus, Metric, Run, RunStatus
from tests.factories import add_run

ROWS = b"\n".join(json.dumps({"prompt": f"p{i}", "completion": f"c{i}"}).encode()
                  for i in range(4))


@pytest.fixture
def dataset_id(client) -> int:
    response = client.post("/api/datasets", files={"file": ("del.jsonl", ROWS)})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def trained_run(tmp_path, dataset_id: int, *, status: RunStatus = RunStatus.completed) -> int:
    """A run with checkpoints at steps 2 and 4 (4 ranks best), each with a file in storage."""
    with SessionLocal() as session:
        run = add_run(session, dataset=session.get(Dataset, dataset_id), status=status, step=4)
        session.add(Metric(run_id=run.id, step=1, name="loss", value=1.0))
        series = {"eval_loss": [(2, 0.9), (4, 0.5)]}
        for step in (2, 4):
            key = f"runs/{run.id}/checkpoint-{step}"
            (tmp_path / "adapter_config.json").write_text("{}")
            store.put_file(tmp_path / "adapter_config.json", f"{key}/adapter_config.json")
            record_checkpoint(session, run=run, step=step, storage_key=key, series=series)
        session.commit()
        return run.id


def add_evaluation(run_id: int, dataset_id: int, status: JobStatus) -> int:
    with SessionLocal() as session:
        evaluation = Evaluation(run_id=run_id, checkpoint_step=4, base_model="m", strategy="sft",
                                dataset_id=dataset_id, split="dataset", status=status)
        session.add(evaluation)
        session.commit()
        return evaluation.id


def test_checkpoint_delete_keeps_the_best(client, dataset_id, tmp_path):
    run_id = trained_run(tmp_path, dataset_id)
    best = client.delete(f"/api/runs/{run_id}/checkpoints/4")
    assert best.status_code == 409 and "best checkpoint" in best.json()["detail"]
    assert client.delete(f"/api/runs/{run_id}/checkpoints/3").status_code == 404
    assert client.delete(f"/api/runs/{run_id}/checkpoints/2").status_code == 204
    assert not store.exists(f"runs/{run_id}/checkpoint-2")
    assert store.exists(f"runs/{run_id}/checkpoint-4")
    steps = [c["step"] for c in client.get(f"/api/runs/{run_id}/checkpoints").json()]
    assert steps == [4]


def test_run_and_evaluation_delete(client, dataset_id, tmp_path):
    running = trained_run(tmp_path, dataset_id, status=RunStatus.running)
    refused = client.delete(f"/api/runs/{running}")
    assert refused.status_code == 409 and "cancel it" in refused.json()["detail"]

    run_id = trained_run(tmp_path, dataset_id)
    busy = add_evaluation(run_id, dataset_id, JobStatus.running)
    refused = client.delete(f"/api/runs/{run_id}")
    assert refused.status_code == 409 and f"evaluation {busy}" in refused.json()["detail"]
    assert client.delete(f"/api/evaluations/{busy}").status_code == 409

    with SessionLocal() as session:
        session.get(Evaluation, busy).status = JobStatus.completed
        session.commit()
    assert client.delete(f"/api/evaluations/{busy}").status_code == 204
    assert client.get(f"/api/evaluations/{busy}").status_code == 404

    add_evaluation(run_id, dataset_id, JobStatus.failed)
    assert client.delete(f"/api/runs/{run_id}").status_code == 204
    assert client.get(f"/api/runs/{run_id}").status_code == 404
    assert not store.exists(f"runs/{run_id}")
    with SessionLocal() as session:
        assert session.query(Metric).filter_by(run_id=run_id).count() == 0
        assert session.query(Evaluation).filter_by(run_id=run_id).count() == 0
    page = client.get(f"/runs/{run_id}")
    assert page.status_code == 404 and "deleted" in page.text


def test_dataset_delete_refused_while_used_unless_cascade(client, dataset_id, tmp_path):
    run_id = trained_run(tmp_path, dataset_id)
    refused = client.delete(f"/api/datasets/{dataset_id}")
    assert refused.status_code == 409
    assert f"run {run_id}" in refused.json()["detail"] and "cascade" in refused.json()["detail"]

    with SessionLocal() as session:
        session.get(Run, run_id).status = RunStatus.running
        session.commit()
    still_running = client.delete(f"/api/datasets/{dataset_id}?cascade=true")
    assert still_running.status_code == 409 and "cancel it" in still_running.json()["detail"]

    with SessionLocal() as session:
        session.get(Run, run_id).status = RunStatus.cancelled
        session.commit()
    assert client.delete(f"/api/datasets/{dataset_id}?cascade=true").status_code == 204
    assert client.get(f"/api/datasets/{dataset_id}").status_code == 404
    assert client.get(f"/api/runs/{run_id}").status_code == 404
    assert not store.exists(f"runs/{run_id}")


def test_unused_dataset_file_removed(client, dataset_id, tmp_path):
    with SessionLocal() as session:
        storage_key = session.get(Dataset, dataset_id).storage_key
    assert store.exists(storage_key)
    assert client.delete(f"/api/datasets/{dataset_id}").status_code == 204
    assert not store.exists(storage_key)
