"""Checkpoints: list a run's checkpoints and download any of them as a LoRA adapter zip."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import select

from app.api.deps import RunDep, SessionDep, StoreDep
from app.domain import checkpoints as service
from app.domain.errors import BadRequest, NotFound
from app.domain.models import Checkpoint
from app.schemas import CheckpointPublic

router = APIRouter(prefix="/api/runs/{run_id}/checkpoints", tags=["checkpoints"])


@router.get("", response_model=list[CheckpointPublic])
def list_checkpoints(run: RunDep, session: SessionDep) -> list[CheckpointPublic]:
    """A run's checkpoints by step, with the metric that ranks them."""
    rows = session.scalars(
        select(Checkpoint).where(Checkpoint.run_id == run.id).order_by(Checkpoint.step)
    )
    return [CheckpointPublic.model_validate(c) for c in rows]


@router.get(
    "/{which}/download",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
def download_checkpoint(which: str, run: RunDep, session: SessionDep, store: StoreDep) -> Response:
    """Download a checkpoint (`best` or a step number) as a zip PEFT loads."""
    if which == "best":
        checkpoint = service.best_checkpoint(session, run_id=run.id)
        if checkpoint is None:
            raise NotFound(f"run {run.id} has no checkpoint yet")
    elif which.isascii() and which.isdigit() and len(which) <= 9:  # "²" is a digit too
        checkpoint = session.scalar(
            select(Checkpoint).where(Checkpoint.run_id == run.id, Checkpoint.step == int(which))
        )
        if checkpoint is None:
            raise NotFound(f"run {run.id} has no checkpoint at step {which}")
    else:
        raise BadRequest("use 'best' or a step number")
    data = service.adapter_zip(store, checkpoint)
    filename = f"tunedeck-run{run.id}-step{checkpoint.step}-adapter.zip"
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
