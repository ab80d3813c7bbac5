"""Dead workers: a running run, evaluation or playground generation whose worker stopped
heartbeating becomes ``failed`` ("worker lost"). A run's metrics and checkpoints stay, so it can be
resumed; an evaluation or a generation is simply requested again.

Every web process runs ``ReaperThread``; each worker reaps once at start. Several reapers at once
are harmless: the status change is one conditional UPDATE, so exactly one of them wins.

Timing (settings.worker_lost_after_s = T): workers heartbeat every ``heartbeat_interval(T)``
seconds (at most T/4, so one slow write never looks like a death) and reapers look every
``reap_interval(T)`` seconds, so a dead worker's job is failed at most T + T/3 (≤ T + 10 s) after
its last heartbeat: 55 s with the default T = 45.

Lost messages: a queued run whose task message vanished (Redis restarted without persistence, the
filesystem broker's folder wiped) would wait forever, so the same passes publish a run's task
again to its queue once it has waited ``settings.requeue_after_s`` (R) since its last publish.
A duplicate is harmless: the task's claim is one conditional UPDATE, so the spare message finds
the run no longer queued and does nothing. The wait doubles after each re-publish, up to an hour
(R, 2R, 4R …), so a legitimate backlog (one worker busy on a 2-hour run, ten runs waiting) costs
each waiting run about log2(2 h / R) spare messages, not one per pass. We do not look into the
queue for the run's message instead: that differs per broker, and a message a worker has
prefetched (Redis keeps it "unacked" outside the list) would look lost. Several web processes agree
through ``run.publish_count``: the one whose ``UPDATE … WHERE publish_count = seen`` matches
publishes, the others skip that interval. Evaluations are re-published the same way (their task
claims them with the same conditional UPDATE).

Playground generations are not re-published: someone is watching the page, and after R seconds
without a worker they would rather read why and try again than keep waiting behind a two-hour
training run on the same queue. A generation still queued R seconds after it was created fails
("no worker took it"); a message that turns up later finds it no longer queued and does nothing.
R = 0 turns both off.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import settings
from app.models import Evaluation, Generation, JobStatus, Run, RunStatus, utcnow
from app.services.evaluations import publish_evaluation
from app.services.runs import as_utc, enqueue, transition

log = logging.getLogger(__name__)
WORKER_LOST = "worker lost"


def heartbeat_interval(lost_after_s: float) -> float:
    return min(5.0, lost_after_s / 4)


def reap_interval(lost_after_s: float) -> float:
    return min(10.0, lost_after_s / 3)


Live = Run | Evaluation | Generation  # rows a worker heartbeats while it runs them
HEARTBEATING: tuple[type[Run], type[Evaluation], type[Generation]] = (Run, Evaluation, Generation)


def _stale(model: type[Live], cutoff: datetime) -> ColumnElement[bool]:
    # A claimed row always has a heartbeat; started_at covers rows written by older versions.
    return or_(
        model.heartbeat_at < cutoff,
        and_(model.heartbeat_at.is_(None),
             or_(model.started_at.is_(None), model.started_at < cutoff)),
    )


def reap_lost(
    session: Session, model: type[Live], *, lost_after_s: float, now: datetime | None = None,
    only: Callable[[Live], bool] | None = None,
) -> list[int]:
    """Fail every running row of ``model`` (runs, evaluations, playground generations) whose last
    heartbeat is older than ``lost_after_s``; returns ids.

    ``only`` narrows the candidates further (the worker's start-up check).
    """
    cutoff = (now or utcnow()) - timedelta(seconds=lost_after_s)
    stale = _stale(model, cutoff)
    candidates: list[Live] = list(session.scalars(
        select(model).where(model.status == "running", stale).order_by(model.id)))
    reaped = []
    for row in candidates:
        if only is not None and not only(row):
            continue
        error = (f"{WORKER_LOST}: no heartbeat from {row.worker or 'its worker'} "
                 f"for {lost_after_s:g} s")
        # Re-checked in the UPDATE itself: a heartbeat that lands meanwhile keeps the row alive.
        if _fail(session, model, row.id, only_if=stale, error=error):
            reaped.append(row.id)
    if reaped:
        log.warning("marked %s %s failed: worker lost", model.__tablename__, reaped)
    return reaped


def _fail(session: Session, model: type[Live], row_id: int, *, only_if: ColumnElement[bool],
          error: str) -> bool:
    if model is Run:  # its state machine lives in services.runs
        return transition(session, run_id=row_id, to=RunStatus.failed, only_if=only_if,
                          error=error)
    result = cast("CursorResult[Any]", session.execute(
        update(model).where(model.id == row_id, model.status == JobStatus.running, only_if)
        .values(status=JobStatus.failed, finished_at=utcnow(), error=error)
        .execution_options(synchronize_session=False)
    ))
    session.commit()
    return result.rowcount == 1


def reap_lost_runs(
    session: Session, *, lost_after_s: float, now: datetime | None = None,
    only: Callable[[Live], bool] | None = None,
) -> list[int]:
    """``reap_lost`` for runs: a failed run keeps its metrics and checkpoints (resumable)."""
    return reap_lost(session, Run, lost_after_s=lost_after_s, now=now, only=only)


REQUEUE_CAP_S = 3600.0
Queued = Run | Evaluation  # rows that carry published_at and publish_count


def requeue_interval(requeue_after_s: float, publish_count: int) -> float:
    """Seconds a queued run waits after its ``publish_count``-th publish before the next one."""
    doublings = min(max(publish_count - 1, 0), 30)
    return min(requeue_after_s * 2**doublings, max(requeue_after_s, REQUEUE_CAP_S))


def requeue_due(run: Queued, *, now: datetime, requeue_after_s: float) -> bool:
    """Whether ``run`` (or an evaluation) has waited queued long enough since its last publish to
    publish again."""
    if run.status != "queued" or requeue_after_s <= 0:
        return False
    # Rows queued before published_at existed count from their creation.
    last = as_utc(run.published_at or run.created_at)
    waited = (now - last).total_seconds() if last else 0.0
    return waited >= requeue_interval(requeue_after_s, run.publish_count)


def requeue_lost(
    session: Session, model: type[Run] | type[Evaluation],
    publish: Callable[[Session, Any], None], *, requeue_after_s: float,
    now: datetime | None = None,
) -> list[int]:
    """Call ``publish`` again for every queued row of ``model`` that is due (``requeue_due``);
    returns their ids."""
    if requeue_after_s <= 0:
        return []
    now = now or utcnow()
    # The shortest wait narrows the rows in SQL; requeue_due applies each row's back-off.
    earliest = now - timedelta(seconds=requeue_after_s)
    candidates: list[Queued] = list(session.scalars(select(model).where(
        model.status == "queued",
        func.coalesce(model.published_at, model.created_at) <= earliest,
    ).order_by(model.id)))
    requeued = []
    for row in candidates:
        if not requeue_due(row, now=now, requeue_after_s=requeue_after_s):
            continue
        row_id, seen = row.id, row.publish_count
        result = cast("CursorResult[Any]", session.execute(
            update(model)
            .where(model.id == row_id, model.status == "queued", model.publish_count == seen)
            .values(published_at=now, publish_count=seen + 1)
            .execution_options(synchronize_session=False)
        ))
        session.commit()
        if result.rowcount != 1:  # claimed, cancelled, or another web process published it
            continue
        try:
            publish(session, row)
        except Exception:  # broker down: the next interval tries again
            log.exception("re-publishing %s %s failed", model.__tablename__, row_id)
            continue
        requeued.append(row_id)
    if requeued:
        log.warning("re-published %s %s: queued longer than their re-publish interval",
                    model.__tablename__, requeued)
    return requeued


def requeue_lost_runs(
    session: Session, *, requeue_after_s: float, now: datetime | None = None
) -> list[int]:
    """Publish the task of every due queued run again (``train_run`` on the run's queue)."""
    return requeue_lost(session, Run, lambda _session, run: enqueue(run),
                        requeue_after_s=requeue_after_s, now=now)


def requeue_lost_evaluations(
    session: Session, *, requeue_after_s: float, now: datetime | None = None
) -> list[int]:
    """Publish the task of every due queued evaluation again (to its run's queue)."""
    return requeue_lost(session, Evaluation, publish_evaluation,
                        requeue_after_s=requeue_after_s, now=now)


def expire_lost_generations(
    session: Session, *, after_s: float, now: datetime | None = None
) -> list[int]:
    """Fail every playground generation queued for ``after_s`` or longer; returns ids."""
    if after_s <= 0:
        return []
    now = now or utcnow()
    cutoff = now - timedelta(seconds=after_s)
    waiting = [Generation.status == JobStatus.queued, Generation.created_at <= cutoff]
    expired = []
    ids = list(session.scalars(select(Generation.id).where(*waiting).order_by(Generation.id)))
    for generation_id in ids:
        # Re-checked in the UPDATE: a worker that claims it meanwhile wins.
        result = cast("CursorResult[Any]", session.execute(
            update(Generation).where(Generation.id == generation_id, *waiting)
            .values(status=JobStatus.failed, finished_at=now,
                    error=f"no worker took this request within {after_s:g} s: the workers on "
                          "its queue are busy (e.g. training) or not running; try again later")
            .execution_options(synchronize_session=False)
        ))
        session.commit()
        if result.rowcount == 1:
            expired.append(generation_id)
    if expired:
        log.warning("failed playground generations %s: no worker took them", expired)
    return expired


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def dead_on_this_host(hostname: str, alive: Callable[[int], bool] = pid_alive
                      ) -> Callable[[Live], bool]:
    """Rows claimed by a worker process ("host:pid") of this host that no longer exists."""
    def check(row: Live) -> bool:
        host, _, pid = (row.worker or "").rpartition(":")
        return host == hostname and pid.isdigit() and not alive(int(pid))

    return check


class ReaperThread(threading.Thread):
    """Calls ``reap_lost`` (runs, evaluations, generations) and the ``requeue_*``/``expire_*``
    passes every ``reap_interval`` seconds (or every R/2 when the re-publish wait R is shorter)
    until ``stop()``."""

    def __init__(self, session_factory: sessionmaker, *, lost_after_s: float,
                 requeue_after_s: float | None = None) -> None:
        super().__init__(name="tunedeck-reaper", daemon=True)
        self.session_factory = session_factory
        self.lost_after_s = lost_after_s
        self.requeue_after_s = (
            settings.requeue_after_s if requeue_after_s is None else requeue_after_s
        )
        self.interval = reap_interval(lost_after_s)
        if self.requeue_after_s > 0:
            self.interval = min(self.interval, max(0.5, self.requeue_after_s / 2))
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:  # a database hiccup must not end the thread
                with self.session_factory() as session:
                    for model in HEARTBEATING:
                        reap_lost(session, model, lost_after_s=self.lost_after_s)
                    requeue_lost_runs(session, requeue_after_s=self.requeue_after_s)
                    requeue_lost_evaluations(session, requeue_after_s=self.requeue_after_s)
                    expire_lost_generations(session, after_s=self.requeue_after_s)
            except Exception:
                log.exception("reaper pass failed; retrying")

    def stop(self) -> None:
        self._stopped.set()
