"""Which queues live workers consume: each worker refreshes its row every PRESENCE_INTERVAL_S
(worker/tasks.py), and a launch on a queue no fresh row lists is warned about."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.domain.models import WorkerPresence, utcnow

PRESENCE_INTERVAL_S = 15.0
# A row older than this belongs to a worker that stopped or died.
PRESENCE_STALE_S = 4 * PRESENCE_INTERVAL_S


def record_presence(session: Session, name: str, queues: list[str]) -> None:
    row = session.get(WorkerPresence, name)
    if row is None:
        session.add(WorkerPresence(name=name, queues=sorted(queues), seen_at=utcnow()))
    else:
        row.queues, row.seen_at = sorted(queues), utcnow()
    stale = utcnow() - timedelta(seconds=10 * PRESENCE_STALE_S)
    session.execute(delete(WorkerPresence).where(WorkerPresence.seen_at < stale))
    session.commit()


def forget_presence(session: Session, name: str) -> None:
    session.execute(delete(WorkerPresence).where(WorkerPresence.name == name))
    session.commit()


def live_queues(session: Session) -> set[str]:
    fresh = utcnow() - timedelta(seconds=PRESENCE_STALE_S)
    rows = session.scalars(select(WorkerPresence.queues).where(WorkerPresence.seen_at >= fresh))
    return {queue for queues in rows for queue in queues}


def no_worker_warning(session: Session, queue: str, command: str) -> str | None:
    """What to tell the user launching on ``queue`` when no live worker consumes it."""
    if queue in live_queues(session):
        return None
    return (f"no worker is listening on queue {queue!r} right now: the run waits until one "
            f"starts (start one with `{command}`)")
