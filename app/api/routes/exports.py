"""Exports of a run's checkpoint (merged model, GGUF + Ollama Modelfile, adapter GGUF): queue,
list, download (one file, or all of them as a zip), delete."""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Iterator

from fastapi import APIRouter, BackgroundTasks, Response
from fastapi.responses import FileResponse, StreamingResponse

from app.api.deps import RunDep, SessionDep, StoreDep
from app.api.export_schemas import ExportCreate, ExportPublic
from app.core.storage import ArtifactStore
from app.domain import exports as service
from app.domain.models import Export

router = APIRouter(tags=["exports"])
CHUNK = 1 << 20


def public(export: Export) -> ExportPublic:
    base = f"/api/exports/{export.id}"
    done = export.status == "completed"
    fields = {name: getattr(export, name) for name in ExportPublic.model_fields
              if name not in ("files", "download_url", "ollama_command")}
    files = [{**f, "url": f"{base}/files/{f['name']}"} for f in export.files or []] if done else []
    return ExportPublic(**fields, files=files, download_url=f"{base}/download" if done else None,
                        ollama_command=service.ollama_command(export))


@router.post("/api/runs/{run_id}/exports", status_code=201, response_model=ExportPublic)
def create_export(run: RunDep, body: ExportCreate, session: SessionDep) -> ExportPublic:
    """Queue an export of a checkpoint (a step or "best"); poll GET /api/exports/{id}."""
    return public(service.create_export(session, run=run, **body.model_dump()))


@router.get("/api/runs/{run_id}/exports", response_model=list[ExportPublic])
def list_exports(run: RunDep, session: SessionDep) -> list[ExportPublic]:
    """A run's exports, newest first."""
    return [public(e) for e in service.list_exports(session, run_id=run.id)]


@router.get("/api/exports/{export_id}", response_model=ExportPublic)
def get_export(export_id: int, session: SessionDep) -> ExportPublic:
    """Status, phase and progress; the files and their download links once completed."""
    return public(service.get_export(session, export_id))


def _stream(store: ArtifactStore, key: str) -> Iterator[bytes]:
    with store.open(key) as handle:
        while block := handle.read(CHUNK):
            yield block


@router.get("/api/exports/{export_id}/files/{name:path}", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download_file(export_id: int, name: str, session: SessionDep, store: StoreDep) -> Response:
    """One of a completed export's files (the GGUF, the Modelfile, …)."""
    export = service.get_export(session, export_id)
    entry = service.stored_file(export, name)
    filename = entry["name"].rsplit("/", 1)[-1]
    return StreamingResponse(
        _stream(store, f"{export.storage_key}/{entry['name']}"),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"',
                 "Content-Length": str(entry["size"])})


@router.get("/api/exports/{export_id}/download", response_class=Response,
            responses={200: {"content": {"application/zip": {}}}})
def download_export(export_id: int, session: SessionDep, store: StoreDep,
                    background: BackgroundTasks) -> Response:
    """All of a completed export's files as one zip (a merged model's folder, say)."""
    export = service.get_export(session, export_id)
    service.require_completed(export)
    entries = [service.stored_file(export, f["name"]) for f in export.files or []]
    handle, path = tempfile.mkstemp(prefix=f"tunedeck-export-{export.id}-", suffix=".zip")
    os.close(handle)
    try:
        # Weights do not compress: stored, so the zip costs a copy and no CPU.
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
            for entry in entries:
                with store.open(f"{export.storage_key}/{entry['name']}") as source, \
                        archive.open(entry["name"], "w", force_zip64=True) as target:
                    while block := source.read(CHUNK):
                        target.write(block)
    except BaseException:
        os.unlink(path)
        raise
    background.add_task(os.unlink, path)
    name = export.details.get("model_name", f"export-{export.id}")
    return FileResponse(path, media_type="application/zip", filename=f"tunedeck-{name}.zip")


@router.delete("/api/exports/{export_id}", status_code=204,
               responses={404: {"description": "no such export"},
                          409: {"description": "still queued or running"}})
def delete_export(export_id: int, session: SessionDep, store: StoreDep) -> Response:
    """Delete a finished export with its files."""
    service.delete_export(session, export=service.get_export(session, export_id), store=store)
    return Response(status_code=204)
