"""A run's status changes: every one goes through ``transition`` (web, worker and reaper alike), so
the allowed transitions in ``models.ALLOWED_TRANSITIONS`` hold and terminal states never change.
``enqueue`` hands a queued run to the workers by task name."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from app.core.sql import transition_row
from app.domain.errors import Conflict
from app.domain.models import ALLOWED_TRANSITIONS, TERMINAL_STATUSES, Run, RunStatus, utcnow
from app.domain.publish import TRAIN_RUN, publish


class RunStateError(Conflict):
    """An illegal status change (e.g. cancelling a completed run)."""


def transition(
    session: Session,
    *,
    run_id: int,
    to: RunStatus,
    only_if: ColumnElement[bool] | None = None,
    **fields: Any,
) -> bool:
    """Atomically move a run to ``to`` if its current status allows it. Returns False otherwise.

    ``UPDATE … WHERE status IN (allowed sources)`` makes concurrent claims and redelivered tasks
    harmless: exactly one caller wins. ``only_if`` adds a condition checked in the same statement
    (the reaper: "and its heartbeat is still stale").
    """
    now = utcnow()
    before = session.execute(select(Run.status, Run.started_at, Run.attempt_started_at)
                             .where(Run.id == run_id)).one_or_none()
    if to == RunStatus.running:
        # A resumed run keeps its first start: its wall time spans every attempt.
        fields.setdefault("started_at", (before.started_at if before else None) or now)
        fields.setdefault("attempt_started_at", now)
        fields.setdefault("phase", "starting")
        fields.setdefault("phase_started_at", now)
    if to in TERMINAL_STATUSES:
        fields.setdefault("finished_at", now)
        fields.setdefault("eta_seconds", None)
        attempt_start = as_utc(before.attempt_started_at) if before else None
        if before is not None and before.status == RunStatus.running and attempt_start:
            # Only the caller whose UPDATE matches (status still running) adds this attempt.
            elapsed = max(0.0, (now - attempt_start).total_seconds())
            fields.setdefault("training_seconds", Run.training_seconds + elapsed)
    if to != RunStatus.running:
        fields.setdefault("attempt_started_at", None)
        fields.setdefault("phase", None)
        fields.setdefault("phase_started_at", None)
    return transition_row(session, Run, row_id=run_id, to=to, allowed=ALLOWED_TRANSITIONS,
                          only_if=only_if, **fields)


def stopped_status(session: Session, run_id: int) -> RunStatus:
    """How a run that stopped on its cancel flag ends: pruned when an Optuna sweep's pruner set
    the flag (``prune_reason``), else cancelled."""
    reason = session.scalar(select(Run.prune_reason).where(Run.id == run_id))
    return RunStatus.pruned if reason else RunStatus.cancelled


def enqueue(run: Run) -> None:
    publish(TRAIN_RUN, run.id, queue=run.queue)


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def duration_seconds(run: Run) -> float | None:
    if run.started_at is None:
        return None
    end = run.finished_at or utcnow()
    start = run.started_at
    if start.tzinfo is None:  # SQLite hands back naive datetimes
        end = end.replace(tzinfo=None)
    return max(0.0, (end - start).total_seconds())
