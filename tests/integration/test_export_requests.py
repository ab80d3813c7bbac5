"""Export and deployment requests through the in-process app and its database (no worker): what is
refused with which 4xx, what the run page and the playground show, and that a deployment no worker
took yet stops at once."""

from __future__ import annotations

from app.core.db import SessionLocal
from app.domain.models import Deployment, Export, RunStatus
from tests.factories import add_checkpoint, add_run


def completed_run(name: str) -> int:
    with SessionLocal() as session:
        run = add_run(session, name=name, status=RunStatus.completed,
                      base_model="tiny-random-llama")
        add_checkpoint(session, run=run, step=2)
        add_checkpoint(session, run=run, step=4, is_best=True)
        session.commit()
        return run.id


def test_export_requests(client) -> None:
    run_id = completed_run("export-requests")
    base = f"/api/runs/{run_id}/exports"
    assert client.get(base).json() == []
    bad = client.post(base, json={"kind": "gguf", "quantization": "q2_K"})
    assert bad.status_code == 422
    assert "choose one of q8_0, f16, bf16, q4_K_M" in bad.json()["detail"]
    created = client.post(base, json={"checkpoint": "best", "kind": "gguf"})
    assert created.status_code == 201, created.text
    export = created.json()
    assert (export["status"], export["checkpoint_step"], export["quantization"]) == (
        "queued", 4, "q8_0")
    assert export["files"] == [] and export["download_url"] is None
    assert export["ollama_command"].startswith("ollama create export-requests-run")
    again = client.post(base, json={"kind": "gguf"})
    assert again.status_code == 409 and "already queued" in again.json()["detail"]
    # Queued: no files to fetch yet, and not deletable until it finishes.
    assert client.get(f"/api/exports/{export['id']}/download").status_code == 409
    assert client.delete(f"/api/exports/{export['id']}").status_code == 409
    busy = client.delete(f"/api/runs/{run_id}")
    assert busy.status_code == 409 and f"export {export['id']}" in busy.json()["detail"]
    with SessionLocal() as session:
        session.get(Export, export["id"]).status = "failed"
        session.commit()
    assert client.delete(f"/api/exports/{export['id']}").status_code == 204

    page = client.get(f"/runs/{run_id}")
    assert 'id="run-exports"' in page.text and 'id="run-deployments"' in page.text
    assert "/static/run_exports.js" in page.text and "/static/run_deployments.js" in page.text
    playground = client.get(f"/playground?run_id={run_id}")
    assert "/static/playground_deployments.js" in playground.text


def test_deployment_requests(client) -> None:
    run_id = completed_run("deployment-requests")
    base = f"/api/runs/{run_id}/deployments"
    for body, status, message in [
        ({"engine": "tgi"}, 422, "unknown engine 'tgi'"),
        ({"port": 80}, 422, "port 80 is out of range"),
        ({"checkpoint": 3}, 422, "no checkpoint at step 3"),
    ]:
        response = client.post(base, json=body)
        assert response.status_code == status and message in response.json()["detail"], body
    created = client.post(base, json={"port": 18123})
    assert created.status_code == 201, created.text
    deployment = created.json()
    assert deployment["status"] == "starting" and deployment["api_key"] is None  # no token
    assert not deployment["requires_api_key"] and deployment["base_url"] is None
    second = client.post(base, json={})
    assert second.status_code == 409 and "already serves step 4" in second.json()["detail"]
    same_port = client.post(base, json={"checkpoint": 2, "port": 18123})
    assert same_port.status_code == 409 and "port 18123 is already used" in same_port.text
    # No worker took it yet: stopping is immediate.
    stopped = client.post(f"/api/deployments/{deployment['id']}/stop").json()
    assert stopped["status"] == "stopped"
    with SessionLocal() as session:
        assert session.get(Deployment, deployment["id"]).finished_at is not None
    assert client.post(base, json={"port": 18123}).status_code == 201
    assert client.get("/api/deployments/999999").status_code == 404


def test_reaper_fails_a_deployment_whose_supervisor_went_silent(client) -> None:
    from datetime import timedelta

    from app.domain.deployments import reap_lost_deployments
    from app.domain.models import DeploymentStatus, utcnow

    run_id = completed_run("deployment-reaper")
    now = utcnow()
    with SessionLocal() as session:
        rows = [Deployment(run_id=run_id, checkpoint_step=step, model_name=f"m{step}",
                           status=status, worker=worker, heartbeat_at=beat)
                for step, status, worker, beat in [
                    (2, DeploymentStatus.serving, "lost-host:1", now - timedelta(seconds=60)),
                    (4, DeploymentStatus.serving, "live-host:2", now),
                    (4, DeploymentStatus.starting, None, None),  # no worker took it yet
                    (2, DeploymentStatus.stopped, "old-host:3", now - timedelta(hours=1)),
                ]]
        session.add_all(rows)
        session.commit()
        ids = [row.id for row in rows]
        # The app's own reaper thread may get there first: either way exactly that one is failed.
        assert reap_lost_deployments(session, lost_after_s=45) in ([ids[0]], [])
        session.expire_all()
        statuses = [session.get(Deployment, i).status for i in ids]
        assert statuses == ["failed", "serving", "starting", "stopped"]
        lost = session.get(Deployment, ids[0])
        assert lost.error.startswith("worker lost: no heartbeat from lost-host:1")
        assert lost.finished_at is not None
        assert reap_lost_deployments(session, lost_after_s=45) == []


def test_deleting_a_run_deletes_its_exports_files(client, tmp_path) -> None:
    from app.core.storage import store
    from app.domain.exports import export_key

    run_id = completed_run("export-files")
    with SessionLocal() as session:
        export = Export(run_id=run_id, checkpoint_step=4, kind="gguf", quantization="q8_0",
                        status="completed", details={})
        session.add(export)
        session.commit()
        key = export_key(export)
        (tmp_path / "m.gguf").write_bytes(b"GGUF")
        store.put_file(tmp_path / "m.gguf", f"{key}/m.gguf")
        export.storage_key, export.files = key, [{"name": "m.gguf", "size": 4}]
        session.commit()
        export_id = export.id
    assert client.get(f"/api/exports/{export_id}/files/m.gguf").content == b"GGUF"
    assert client.get(f"/api/exports/{export_id}/files/other.gguf").status_code == 404
    assert client.get(f"/api/exports/{export_id}/files/..%2Fx").status_code == 404
    assert client.delete(f"/api/runs/{run_id}").status_code == 204
    assert not store.exists(key)
    assert client.get(f"/api/exports/{export_id}").status_code == 404


def test_odd_ids_are_4xx(client) -> None:
    huge = "9" * 30
    run_id = completed_run("export-odd-ids")
    for method, path, body in [
        ("GET", f"/api/exports/{huge}", None), ("GET", f"/api/deployments/{huge}", None),
        ("GET", f"/api/exports/{huge}/files/x", None),
        ("GET", f"/api/exports/{huge}/download", None),
        ("DELETE", f"/api/exports/{huge}", None), ("POST", f"/api/deployments/{huge}/stop", None),
        ("POST", f"/api/runs/{huge}/exports", {}), ("GET", f"/api/runs/{huge}/deployments", None),
        ("POST", f"/api/runs/{run_id}/exports", {"checkpoint": int(huge)}),
        ("POST", f"/api/runs/{run_id}/deployments", {"checkpoint": int(huge)}),
        ("POST", f"/api/runs/{run_id}/deployments", {"port": int(huge)}),
        ("POST", f"/api/runs/{run_id}/exports", {"kind": "gguf", "quantization": "ü" * 40}),
    ]:
        response = client.request(method, path, json=body)
        assert 400 <= response.status_code < 500, (path, body, response.status_code, response.text)
