"""The queue's order and the worker's claim. A task message only says "a run is waiting on this
queue": the worker that takes it claims the best waiting run of that queue (highest priority,
then lowest queue position, i.e. oldest), which need not be the message's own run. Publish order
cannot express priority on either broker (the filesystem broker and Redis both deliver in
publish order, and a priority changed after publishing would need the message moved), so the
order lives in the run rows, and the claim is one conditional UPDATE per candidate
(``transition``): with many workers, exactly one wins each run and the others try the next.

Every queued run has had a message published, and each message claims at most one run, so no
waiting run is left without one; the spare message of a run another message claimed finds
nothing better, or the next run, waiting. A paused queue's runs are never claimed: the check is
part of the same UPDATE. Resuming the queue publishes one message per waiting run again."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from app.domain.models import QueueState, Run, RunStatus
from app.domain.runs import transition

CLAIM_ATTEMPTS = 20


def waiting_order() -> tuple[ColumnElement[Any], ...]:
    """Run order in a queue: higher priority first, then by queue position (launch order)."""
    return (Run.priority.desc(), func.coalesce(Run.queue_position, Run.id).asc(), Run.id.asc())


def not_paused() -> ColumnElement[bool]:
    return Run.queue.not_in(select(QueueState.name).where(QueueState.paused.is_(True)))


def waiting(session: Session, *, queue: str | None = None, limit: int | None = None) -> list[Run]:
    """Queued runs in the order workers take them (of one queue, or of every queue)."""
    query = select(Run).where(Run.status == RunStatus.queued)
    if queue is not None:
        query = query.where(Run.queue == queue)
    return list(session.scalars(query.order_by(*waiting_order()).limit(limit)))


def claim_next(session: Session, *, queue: str, **fields: Any) -> int | None:
    """Claim the best waiting run of ``queue`` for this worker (``fields`` are set with the move
    to running); returns its id, or None when nothing there can be claimed (empty or paused)."""
    tried: set[int] = set()
    for _ in range(CLAIM_ATTEMPTS):
        query = (select(Run.id)
                 .where(Run.status == RunStatus.queued, Run.queue == queue, not_paused(),
                        Run.cancel_requested.is_(False))
                 .order_by(*waiting_order()).limit(1))
        if tried:
            query = query.where(Run.id.not_in(tried))
        candidate = session.scalar(query)
        session.commit()  # end the read: the claim below is its own statement
        if candidate is None:
            return None
        if transition(session, run_id=candidate, to=RunStatus.running, only_if=not_paused(),
                      **fields):
            return candidate
        tried.add(candidate)  # another worker took it (or it was cancelled or paused): next
    return None


def is_paused(session: Session, queue: str) -> bool:
    state = session.get(QueueState, queue)
    return bool(state and state.paused)
