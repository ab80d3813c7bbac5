"""Dead workers: a running run whose worker stopped heartbeating becomes ``failed`` ("worker
lost"). Its metrics and checkpoints stay, so it can be resumed.

Every web process runs ``ReaperThread``; each worker reaps once at start. Several reapers at once
are harmless: the status change is one conditional UPDATE, so exactly one of them wins.

Timing (settings.worker_lost_after_s = T): workers heartbeat every ``heartbeat_interval(T)``
seconds (at most T/4, so one slow write never looks like a death) and reapers look every
``reap_interval(T)`` seconds, so a dead worker's run is failed at most T + T/3 (≤ T + 10 s) after
its last heartbeat: 55 s with the default T = 45.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from app.models import Run, RunStatus, utcnow
from app.services.runs import transition

log = logging.getLogger(__name__)
WORKER_LOST = "worker lost"


def heartbeat_interval(lost_after_s: float) -> float:
    return min(5.0, lost_after_s / 4)


def reap_interval(lost_after_s: float) -> float:
    return min(10.0, lost_after_s / 3)


def _stale(cutoff: datetime) -> ColumnElement[bool]:
    # A claimed run always has a heartbeat; started_at covers rows written by older versions.
    return or_(
        Run.heartbeat_at < cutoff,
        and_(Run.heartbeat_at.is_(None), or_(Run.started_at.is_(None), Run.started_at < cutoff)),
    )


def reap_lost_runs(
    session: Session, *, lost_after_s: float, now: datetime | None = None,
    only: Callable[[Run], bool] | None = None,
) -> list[int]:
    """Fail every running run whose last heartbeat is older than ``lost_after_s``; returns ids.

    ``only`` narrows the candidates further (the worker's start-up check).
    """
    cutoff = (now or utcnow()) - timedelta(seconds=lost_after_s)
    stale = _stale(cutoff)
    candidates = list(session.scalars(select(Run).where(Run.status == RunStatus.running, stale)))
    reaped = []
    for run in candidates:
        if only is not None and not only(run):
            continue
        # Re-checked in the UPDATE itself: a heartbeat that lands meanwhile keeps the run alive.
        if transition(session, run_id=run.id, to=RunStatus.failed, only_if=stale,
                      error=f"{WORKER_LOST}: no heartbeat from {run.worker or 'its worker'} "
                            f"for {lost_after_s:g} s"):
            reaped.append(run.id)
    if reaped:
        log.warning("marked runs %s failed: worker lost", reaped)
    return reaped


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def dead_on_this_host(hostname: str, alive: Callable[[int], bool] = pid_alive
                      ) -> Callable[[Run], bool]:
    """Runs claimed by a worker process ("host:pid") of this host that no longer exists."""
    def check(run: Run) -> bool:
        host, _, pid = (run.worker or "").rpartition(":")
        return host == hostname and pid.isdigit() and not alive(int(pid))

    return check


class ReaperThread(threading.Thread):
    """Calls ``reap_lost_runs`` every ``reap_interval`` seconds until ``stop()``."""

    def __init__(self, session_factory: sessionmaker, *, lost_after_s: float) -> None:
        super().__init__(name="tunedeck-reaper", daemon=True)
        self.session_factory = session_factory
        self.lost_after_s = lost_after_s
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(reap_interval(self.lost_after_s)):
            try:
                with self.session_factory() as session:
                    reap_lost_runs(session, lost_after_s=self.lost_after_s)
            except Exception:  # a database hiccup must not end the thread
                log.exception("reaper pass failed; retrying")

    def stop(self) -> None:
        self._stopped.set()
