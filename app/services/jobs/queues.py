"""The queue page's model: per worker queue, what runs where and what waits in which order;
priorities, moving a waiting run up or down, pausing a queue."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.config import settings
from app.domain import queue as order
from app.domain.errors import Invalid
from app.domain.models import TERMINAL_STATUSES, QueueState, Run, RunStatus, utcnow
from app.domain.runs import RunStateError, enqueue

QUEUE_NAME = r"^[A-Za-z0-9_.:-]{1,64}$"


@dataclass
class QueueView:
    name: str
    paused: bool = False
    running: list[Run] = field(default_factory=list)
    waiting: list[Run] = field(default_factory=list)


def overview(session: Session, *, waiting_limit: int = 200) -> list[QueueView]:
    """Every queue with something running or waiting, paused ones and the default queue."""
    queues: dict[str, QueueView] = {settings.default_queue: QueueView(settings.default_queue)}
    for state in session.scalars(select(QueueState).where(QueueState.paused.is_(True))):
        queues[state.name] = QueueView(state.name, paused=True)
    running = session.scalars(select(Run).where(Run.status == RunStatus.running)
                              .order_by(Run.worker, Run.device, Run.id))
    for run in running:
        queues.setdefault(run.queue, QueueView(run.queue)).running.append(run)
    for run in order.waiting(session):
        view = queues.setdefault(run.queue, QueueView(run.queue))
        if len(view.waiting) < waiting_limit:
            view.waiting.append(run)
    return sorted(queues.values(), key=lambda v: (v.name != settings.default_queue, v.name))


def set_priority(session: Session, *, run: Run, priority: int) -> Run:
    if run.status in TERMINAL_STATUSES:
        raise RunStateError(f"run {run.id} is {run.status.value}: only a waiting or running run "
                            "has a priority that matters")
    session.execute(update(Run).where(Run.id == run.id).values(priority=priority))
    session.commit()
    session.refresh(run)
    return run


def move(session: Session, *, run: Run, direction: str) -> Run:
    """Swap a waiting run's place with its neighbour ahead (up) or behind (down) in its queue:
    their priorities and queue positions are exchanged, nothing else moves."""
    if direction not in ("up", "down"):
        raise Invalid("direction: must be 'up' or 'down'")
    if run.status != RunStatus.queued:
        raise RunStateError(f"run {run.id} is {run.status.value}: only waiting runs move")
    line = order.waiting(session, queue=run.queue)
    index = next(i for i, r in enumerate(line) if r.id == run.id)
    other_index = index - 1 if direction == "up" else index + 1
    if not 0 <= other_index < len(line):
        return run  # already first (or last)
    other = line[other_index]
    mine = (run.priority, run.queue_position if run.queue_position is not None else run.id)
    theirs = (other.priority,
              other.queue_position if other.queue_position is not None else other.id)
    run.priority, run.queue_position = theirs
    other.priority, other.queue_position = mine
    session.commit()
    session.refresh(run)
    return run


def set_paused(session: Session, *, name: str, paused: bool) -> QueueState:
    """Pause or resume a queue. Resuming publishes one message per run waiting there: the
    messages a worker consumed while it was paused claimed nothing."""
    state = session.get(QueueState, name)
    if state is None:
        state = QueueState(name=name, paused=paused)
        session.add(state)
    else:
        state.paused = paused
        state.updated_at = utcnow()
    session.commit()
    if not paused:
        for run in order.waiting(session, queue=name):
            enqueue(run)
    return state
