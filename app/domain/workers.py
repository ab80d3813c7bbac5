"""Which queues live workers consume, read from the worker registry that placement keeps
(domain/placement.py: each worker refreshes its row with its heartbeat, worker/tasks.py); a
launch on a queue no live worker lists is warned about."""

from __future__ import annotations

import socket

from sqlalchemy.orm import Session

from app.core.config import settings
from app.domain import placement


def record_presence(session: Session, name: str, queues: list[str]) -> None:
    """Register (or refresh) worker ``name`` as consuming ``queues`` on this host; commits."""
    placement.register_worker(session, name=name, host=socket.gethostname(),
                              queues=sorted(queues), devices=placement.local_devices())
    session.commit()


def forget_presence(session: Session, name: str) -> None:
    placement.unregister_worker(session, name=name)
    session.commit()


def live_queues(session: Session) -> set[str]:
    rows = placement.live_workers(session, lost_after_s=settings.worker_lost_after_s)
    return {queue for row in rows for queue in (row.queues or [])}


def no_worker_warning(session: Session, queue: str, command: str) -> str | None:
    """What to tell the user launching on ``queue`` when no live worker consumes it."""
    if queue in live_queues(session):
        return None
    return (f"no worker is listening on queue {queue!r} right now: the run waits until one "
            f"starts (start one with `{command}`)")
