"""Checkpoints: list a run's checkpoints, download any of them as a LoRA adapter zip, delete
those other than the best."""

from __future__ import annotations

from fastapi import APIRouter, Path, Response
from sqlalchemy import select

from app.api.deps import RunDep, SessionDep, StoreDep
from app.domain import checkpoints as service
from app.domain.errors import BadRequest, NotFound
from app.domain.models import Checkpoint, Dataset
from app.schemas import CheckpointPublic
from app.services.jobs import adapter_card, deletion

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
    best = service.best_checkpoint(session, run_id=run.id)
    data = service.adapter_zip(
        store, checkpoint, base_model=adapter_card.public_base_model(run.base_model),
        readme=adapter_card.adapter_readme(run, checkpoint, session.get(Dataset, run.dataset_id),
                                           best))
    filename = f"tunedeck-run{run.id}-step{checkpoint.step}-adapter.zip"
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.delete("/{step}", status_code=204,
               responses={404: {"description": "no such checkpoint"},
                          409: {"description": "the best checkpoint, or in use"}})
def delete_checkpoint(run: RunDep, session: SessionDep, store: StoreDep,
                      step: int = Path(ge=0, le=2_000_000_000)) -> Response:
    """Delete a checkpoint other than the best one, with its files."""
    checkpoint = session.scalar(
        select(Checkpoint).where(Checkpoint.run_id == run.id, Checkpoint.step == step))
    if checkpoint is None:
        raise NotFound(f"run {run.id} has no checkpoint at step {step}")
    deletion.delete_checkpoint(session, run=run, checkpoint=checkpoint, store=store)
    return Response(status_code=204)
