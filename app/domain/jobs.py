"""An evaluation's, a playground generation's or an export's status changes: every one goes through
``transition`` (the worker's claim and outcome, the reaper, the requeue's expiry), so the allowed
transitions below hold and a finished job never changes again."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from app.core.sql import transition_row
from app.domain.models import Evaluation, Export, Generation, JobStatus, utcnow

Job = Evaluation | Generation | Export
ALLOWED_JOB_TRANSITIONS: dict[JobStatus, set[JobStatus]] = {
    JobStatus.queued: {JobStatus.running, JobStatus.failed},
    JobStatus.running: {JobStatus.completed, JobStatus.failed},
    JobStatus.completed: set(),
    JobStatus.failed: set(),
}


def transition(
    session: Session,
    model: type[Job],
    *,
    job_id: int,
    to: JobStatus,
    only_if: ColumnElement[bool] | None = None,
    **fields: Any,
) -> bool:
    """Atomically move the job to ``to`` if its status allows it; False otherwise (another
    worker, the reaper or a redelivered task got there first). Commits."""
    if to == JobStatus.running:
        fields.setdefault("started_at", utcnow())
        fields.setdefault("heartbeat_at", utcnow())
    if not ALLOWED_JOB_TRANSITIONS[to]:
        fields.setdefault("finished_at", utcnow())
    return transition_row(session, model, row_id=job_id, to=to, allowed=ALLOWED_JOB_TRANSITIONS,
                          only_if=only_if, **fields)
