"""Celery tasks. The run row owns the state: a task claims its run atomically and trains it in a
child process (so unsloth can be imported first, memory is freed after each run, and a crash in
training never takes the worker down), heartbeating while it waits."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys

from celery.signals import worker_ready

from app.core.config import settings
from app.core.db import session_scope
from app.domain import sweeps
from app.domain.models import Run, RunStatus, utcnow
from app.domain.progress import record_progress
from app.domain.queue import claim_next
from app.domain.reaper import HEARTBEATING, Live, dead_on_this_host, heartbeat_interval, reap_lost
from app.domain.runs import transition
from worker.celery_app import celery_app

log = logging.getLogger(__name__)
# Kept well under the reaper's threshold (see app/domain/reaper.py).
HEARTBEAT_INTERVAL_S = heartbeat_interval(settings.worker_lost_after_s)
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # If the worker is SIGKILLed, its training child must not train on as an orphan.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setsid()


def _log_tail(path, lines: int = 15) -> str:  # type: ignore[no-untyped-def]
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:]).strip()
    except OSError:
        return ""


@celery_app.task(name="tunedeck.train_run", ignore_result=True)
def train_run(run_id: int) -> str:
    # The message says a run is waiting on its queue: take the best one waiting there now
    # (priority, then age), which may be another run than the message's (app/domain/queue.py).
    with session_scope() as session:
        run = session.get(Run, run_id)
        claimed = run is not None and claim_next(
            session,
            queue=run.queue,
            worker=worker_identity(),
            heartbeat_at=utcnow(),
            attempt=Run.attempt + 1,
            error=None,
        )
    if not claimed:
        log.info("nothing to claim for run %s's message (its queue is empty or paused)", run_id)
        return "skipped"
    if claimed != run_id:
        log.info("run %s's message claimed run %s, first in its queue", run_id, claimed)
    run_id = claimed

    log_path = settings.checkpoints_dir / str(run_id) / "train.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        child = subprocess.Popen(
            [sys.executable, "-m", "worker.train_process", str(run_id)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"},
        )
        wait_heartbeating(child, Run, run_id)

    if child.returncode != 0:
        reason = (
            f"training process killed by signal {-child.returncode}"
            + (" (out of memory?)" if child.returncode == -signal.SIGKILL else "")
            if child.returncode < 0
            else f"training process exited with code {child.returncode}"
        )
        tail = _log_tail(log_path)
        with session_scope() as session:
            transition(
                session,
                run_id=run_id,
                to=RunStatus.failed,
                error=f"{reason}\n{tail}" if tail else reason,
            )
    _advance_sweep(run_id)
    return "done"


def _advance_sweep(run_id: int) -> None:
    """A sweep's run ended: launch its next trial now rather than at the reaper's next pass."""
    try:
        with session_scope() as session:
            run = session.get(Run, run_id)
            if run is not None and run.sweep_id is not None:
                sweeps.advance(session, run.sweep_id)
    except Exception:  # the reaper's pass launches it instead
        log.exception("advancing the sweep of run %s failed", run_id)


def worker_identity() -> str:
    """"host:pid" of this worker, stored on what it claims (see reaper.dead_on_this_host)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def wait_heartbeating(child: subprocess.Popen[bytes], model: type[Live], row_id: int) -> int:
    """Heartbeat the row ``child`` works on at the usual cadence, but return the child's exit code
    the moment it exits."""
    while True:
        _heartbeat(model, row_id)
        try:
            return child.wait(timeout=HEARTBEAT_INTERVAL_S)
        except subprocess.TimeoutExpired:
            continue


def _heartbeat(model: type[Live], row_id: int) -> None:
    try:
        with session_scope() as session:
            record_progress(session, model, row_id)
    except Exception:  # a database blip must not abandon the child; retry next beat
        log.exception("heartbeat for %s %s failed", model.__tablename__, row_id)


@worker_ready.connect
def reap_at_start(**_kwargs) -> None:  # type: ignore[no-untyped-def]
    """Runs, evaluations and generations whose worker died are failed now rather than left
    "running" until a web reaper looks.

    A worker of this host that no longer exists is known dead after a few missed heartbeats; any
    other worker only after the full threshold (it may be alive on another machine).
    """
    try:
        with session_scope() as session:
            for model in HEARTBEATING:
                reap_lost(session, model, lost_after_s=settings.worker_lost_after_s)
                reap_lost(
                    session,
                    model,
                    lost_after_s=3 * HEARTBEAT_INTERVAL_S,
                    only=dead_on_this_host(socket.gethostname()),
                )
    except Exception:
        log.exception("reaping lost jobs at worker start failed")
