"""A run's metric mirrors: where its curves are copied (MLflow, TensorBoard, W&B, Trackio), how
that goes, and its TensorBoard event files as a zip (app/domain/trackers.py,
worker/trackers.py)."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from fastapi import APIRouter, Response

from app.api.deps import RunDep, StoreDep
from app.domain import trackers
from app.domain.errors import NotFound

router = APIRouter(tags=["runs"])


@router.get("/api/runs/{run_id}/trackers")
def get_trackers(run: RunDep) -> dict[str, Any]:
    """The run's mirrors (fixed at launch) and, per tracker, its state ("ok" or "failing"),
    the last error and how many values it received."""
    return {"trackers": trackers.run_trackers(run.trackers or {}),
            "status": run.tracker_status or {},
            "warnings": trackers.health_flags(run)}


@router.get("/api/runs/{run_id}/tensorboard.zip", response_class=Response,
            responses={200: {"content": {"application/zip": {}}},
                       404: {"description": "the run wrote no TensorBoard files"}})
def download_tensorboard(run: RunDep, store: StoreDep) -> Response:
    """The run's TensorBoard event files as a zip: unzip and `tensorboard --logdir DIR`."""
    key = trackers.tensorboard_key(run.id)
    names = store.list_files(key) if store.exists(key) else []
    if not names:
        raise NotFound(f"run {run.id} has no TensorBoard files: launch it with "
                       "trackers.tensorboard true (or TUNEDECK_TENSORBOARD=true)")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            with store.open(f"{key}/{name}") as handle:
                archive.writestr(f"run{run.id}/{name}", handle.read())
    return Response(buffer.getvalue(), media_type="application/zip",
                    headers={"Content-Disposition":
                             f'attachment; filename="tunedeck-run{run.id}-tensorboard.zip"'})
