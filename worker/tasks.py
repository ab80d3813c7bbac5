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
import time
from collections.abc import Callable

from celery.signals import worker_ready, worker_shutdown
from sqlalchemy import select

from app.core.config import settings
from app.core.db import session_scope
from app.domain.models import Run, RunStatus, utcnow
from app.domain.progress import record_progress
from app.domain.reaper import HEARTBEATING, Live, dead_on_this_host, heartbeat_interval, reap_lost
from app.domain.runs import transition
from app.domain.workers import PRESENCE_INTERVAL_S, forget_presence, record_presence
from worker.celery_app import celery_app

log = logging.getLogger(__name__)
# Kept well under the reaper's threshold (see app/domain/reaper.py).
HEARTBEAT_INTERVAL_S = heartbeat_interval(settings.worker_lost_after_s)
PR_SET_PDEATHSIG = 1
# After SIGTERM, how long a training process gets before SIGKILL.
KILL_AFTER_TERM_S = 10


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
    with session_scope() as session:
        run = session.get(Run, run_id)
        attempt = (run.attempt if run else 0) + 1
        claimed = run is not None and transition(
            session,
            run_id=run_id,
            to=RunStatus.running,
            worker=worker_identity(),
            heartbeat_at=utcnow(),
            attempt=attempt,
            error=None,
        )
    if not claimed:
        log.info("run %s is not queued (cancelled, or already claimed): skipping", run_id)
        return "skipped"

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
        code = wait_heartbeating(child, Run, run_id, cancelled=lambda: _cancel_requested(run_id))

    if code in (-signal.SIGTERM, -signal.SIGKILL) and _checked(lambda: _cancel_requested(run_id)):
        # The child never reached a step boundary to stop at (stuck in a reward, a data loader,
        # a hung collective): the run is cancelled as asked, its checkpoints so far kept.
        with session_scope() as session:
            transition(session, run_id=run_id, to=RunStatus.cancelled,
                       error=f"cancelled: the training process had not stopped "
                             f"{settings.cancel_grace_s:g} s after the cancel and was terminated "
                             "(its checkpoints so far are kept)")
    elif child.returncode != 0:
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
    return "done"


def worker_identity() -> str:
    """"host:pid" of this worker, stored on what it claims (see reaper.dead_on_this_host)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def wait_heartbeating(
    child: subprocess.Popen[bytes],
    model: type[Live],
    row_id: int,
    *,
    cancelled: Callable[[], bool] | None = None,
) -> int:
    """Heartbeat the row ``child`` works on at the usual cadence until the child exits.

    With ``cancelled``: once it answers True, the child has ``settings.cancel_grace_s`` to exit by
    itself; then its process group gets SIGTERM, and SIGKILL ``KILL_AFTER_TERM_S`` later, whatever
    it is doing. Returns the child's exit code."""
    cancel_seen = terminated = None
    while True:
        _heartbeat(model, row_id)
        now = time.monotonic()
        if cancelled is not None and cancel_seen is None and _checked(cancelled):
            cancel_seen = now
            log.info("%s %s: cancel requested, waiting %g s for it to stop",
                     model.__tablename__, row_id, settings.cancel_grace_s)
        if cancel_seen is not None and terminated is None \
                and now - cancel_seen >= settings.cancel_grace_s:
            log.warning("%s %s did not stop after its cancel: terminating pid %s",
                        model.__tablename__, row_id, child.pid)
            _signal_group(child, signal.SIGTERM)
            terminated = now
        if terminated is not None and now - terminated >= KILL_AFTER_TERM_S:
            _signal_group(child, signal.SIGKILL)
        wait_s = HEARTBEAT_INTERVAL_S
        if cancel_seen is not None:  # wake up in time for the next step of the stop
            due = (cancel_seen + settings.cancel_grace_s if terminated is None
                   else terminated + KILL_AFTER_TERM_S)
            wait_s = min(wait_s, max(0.05, due - now))
        try:
            return child.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue


def _checked(cancelled: Callable[[], bool]) -> bool:
    try:
        return cancelled()
    except Exception:  # a database blip: ask again next beat
        log.exception("reading the cancel flag failed")
        return False


def _cancel_requested(run_id: int) -> bool:
    with session_scope() as session:
        return bool(session.scalar(select(Run.cancel_requested).where(Run.id == run_id)))


def _signal_group(child: subprocess.Popen[bytes], signum: int) -> None:
    # The child leads its own session (_die_with_parent): its helpers and sandboxes go too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signum)


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


_presence: dict = {}


@worker_ready.connect
def announce_presence(sender=None, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    """Record this worker and its queues every PRESENCE_INTERVAL_S while it runs, so that a launch
    on a queue nobody consumes is warned about (domain/workers.py)."""
    import threading

    name = getattr(sender, "hostname", None) or worker_identity()
    queues = sorted(sender.app.amqp.queues.consume_from) if sender is not None else []
    stop = threading.Event()

    def beat() -> None:
        while True:
            try:
                with session_scope() as session:
                    record_presence(session, name, queues)
            except Exception:
                log.exception("recording this worker's presence failed")
            if stop.wait(PRESENCE_INTERVAL_S):
                return

    thread = threading.Thread(target=beat, name="tunedeck-presence", daemon=True)
    thread.start()
    _presence.update(name=name, stop=stop)


@worker_shutdown.connect
def withdraw_presence(**_kwargs) -> None:  # type: ignore[no-untyped-def]
    if "stop" in _presence:
        _presence["stop"].set()
        with contextlib.suppress(Exception), session_scope() as session:
            forget_presence(session, _presence["name"])
