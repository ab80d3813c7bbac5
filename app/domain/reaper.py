"""Dead workers: a running run, evaluation or playground generation whose worker stopped
heartbeating becomes ``failed`` ("worker lost"). A run's metrics and checkpoints stay, so it can be
resumed; an evaluation or a generation is simply requested again.

Every web process runs ``ReaperThread``; each worker reaps once at start. Several reapers at once
are harmless: the status change is one conditional UPDATE, so exactly one of them wins.

Timing (settings.worker_lost_after_s = T): workers heartbeat every ``heartbeat_interval(T)``
seconds (at most T/4, so one slow write never looks like a death) and reapers look every
``reap_interval(T)`` seconds, so a dead worker's job is failed at most T + T/3 (≤ T + 10 s) after
its last heartbeat: 55 s with the default T = 45.

The same thread also runs the lost-message passes of domain/requeue.py: queued runs and
evaluations are published again, stale queued playground generations fail.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import settings
from app.domain import jobs, notify, runs, sweeps
from app.domain.datasets.recovery import recover_lost_datasets
from app.domain.deployments import reap_lost_deployments
from app.domain.models import Evaluation, Export, Generation, JobStatus, Run, RunStatus, utcnow
from app.domain.progress import Live
from app.domain.requeue import (
    expire_lost_generations,
    requeue_lost_evaluations,
    requeue_lost_exports,
    requeue_lost_runs,
)

log = logging.getLogger(__name__)
WORKER_LOST = "worker lost"


def heartbeat_interval(lost_after_s: float) -> float:
    return min(5.0, lost_after_s / 4)


def reap_interval(lost_after_s: float) -> float:
    return min(10.0, lost_after_s / 3)


HEARTBEATING: tuple[type[Run], type[Evaluation], type[Generation], type[Export]] = (
    Run, Evaluation, Generation, Export)


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
    if reaped and model is Run:  # tell whoever waits for them (in the background)
        sessions = sessionmaker(bind=session.get_bind(), expire_on_commit=False).begin
        for run_id in reaped:
            notify.notify_run_finished(run_id, sessions=sessions)
    return reaped


def _fail(session: Session, model: type[Live], row_id: int, *, only_if: ColumnElement[bool],
          error: str) -> bool:
    if model is Run:
        return runs.transition(session, run_id=row_id, to=RunStatus.failed, only_if=only_if,
                               error=error)
    return jobs.transition(session, model, job_id=row_id, to=JobStatus.failed, only_if=only_if,
                           error=error)


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
                    requeue_lost_exports(session, requeue_after_s=self.requeue_after_s)
                    reap_lost_deployments(session, lost_after_s=self.lost_after_s)
                    expire_lost_generations(session, after_s=self.requeue_after_s)
                    recover_lost_datasets(session, lost_after_s=self.lost_after_s,
                                          requeue_after_s=self.requeue_after_s)
                    sweeps.advance_all(session)  # launches trials a lost worker call missed
            except Exception:
                log.exception("reaper pass failed; retrying")

    def stop(self) -> None:
        self._stopped.set()
