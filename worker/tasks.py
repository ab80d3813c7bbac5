"""Celery tasks. The run row owns the state: a task claims its run atomically and trains it in a
child process (so unsloth can be imported first, memory is freed after each run, and a crash in
training never takes the worker down), heartbeating while it waits."""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable

from celery.signals import worker_ready, worker_shutdown
from sqlalchemy import select

from app.core.config import settings
from app.core.db import session_scope
from app.domain import gang, placement, run_health, sweeps
from app.domain.models import Run, RunStatus
from app.domain.notify import notify_run_finished
from app.domain.progress import record_progress
from app.domain.reaper import HEARTBEATING, Live, dead_on_this_host, heartbeat_interval, reap_lost
from app.domain.runs import stopped_status, transition
from worker import children, distributed
from worker.celery_app import celery_app
from worker.claims import (
    Claim,
    claim_best,
    note_waiting_while_busy,
    offered_devices,
    worker_identity,
)

log = logging.getLogger(__name__)
# Kept well under the reaper's threshold (see app/domain/reaper.py).
HEARTBEAT_INTERVAL_S = heartbeat_interval(settings.worker_lost_after_s)
# After SIGTERM, how long a training process gets before SIGKILL.
KILL_AFTER_TERM_S = 10
# Held while this worker trains (a task's run, or its host's node of a run over several hosts,
# worker/gang.py): one training at a time per worker process.
TRAINING = threading.Lock()


def _log_tail(path, lines: int = 15) -> str:  # type: ignore[no-untyped-def]
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:]).strip()
    except OSError:
        return ""


def _log_since(path, offset: int, limit: int = 50_000) -> str:  # type: ignore[no-untyped-def]
    """This attempt's end of the log (the log file spans every attempt of the run)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(offset, path.stat().st_size - limit))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


@celery_app.task(name="tunedeck.train_run", ignore_result=True, bind=True, max_retries=None)
def train_run(self, run_id: int) -> str:  # type: ignore[no-untyped-def]
    # The message says a run is waiting on its queue: take the best one waiting there now
    # (priority, then age), which may be another run than the message's (app/domain/queue.py),
    # with its devices reserved first (all or none), so that no two runs of this host share one.
    if not TRAINING.acquire(blocking=False):  # this worker trains its host's node of a run
        with session_scope() as session:
            note_waiting_while_busy(session, run_id)
        raise self.retry(countdown=DEVICE_RETRY_S)
    try:
        with session_scope() as session:
            run = session.get(Run, run_id)
            claim = claim_best(session, queue=run.queue) if run is not None else None
        if claim is None:
            log.info("nothing to claim for run %s's message (its queue is empty or paused)",
                     run_id)
            return "skipped"
        if claim.devices is None:  # back to the queue: this or another worker tries again soon
            raise self.retry(countdown=DEVICE_RETRY_S)
        if claim.run_id != run_id:
            log.info("run %s's message claimed run %s, first in its queue", run_id, claim.run_id)
        try:
            return _train(claim)
        finally:  # whatever happened; a run that stopped running no longer holds them anyway
            with session_scope() as session:  # every host's, for a run over several hosts
                placement.release_devices(session, run_id=claim.run_id)
    finally:
        TRAINING.release()


def _train(claim: Claim) -> str:
    if claim.node is not None:  # node 0 of a run over several hosts
        from worker import gang as gang_nodes  # builds on this module

        gang_nodes.run_node(claim.node, log_name="train.log")
    else:
        _train_on_this_host(claim.run_id, num_processes=claim.num_processes,
                            devices=claim.devices or [])
    notify_run_finished(claim.run_id)  # in the background: never delays the next run
    _advance_sweep(claim.run_id)
    _record_health(claim.run_id)
    return "done"


def _record_health(run_id: int) -> None:
    """Keep the finished run's health flags, so opening it in compare reads no series for them."""
    try:
        with session_scope() as session:
            run_health.record(session, run_id=run_id)
    except Exception:  # the first page that needs them computes them instead
        log.exception("recording the health of run %s failed", run_id)


def _train_on_this_host(run_id: int, *, num_processes: int, devices: list[str]) -> None:
    log_path = settings.checkpoints_dir / str(run_id) / "train.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    distributed.clear_rank_errors(log_path.parent)
    attempt_starts_at = log_path.stat().st_size if log_path.exists() else 0
    child = children.start(distributed.training_command(run_id, num_processes=num_processes),
                           log_path=log_path, env=children.environment(devices))
    code = wait_heartbeating(child, Run, run_id, cancelled=lambda: _cancel_requested(run_id))

    if child.returncode != 0 and not _cancelled_after_kill(run_id, code):
        reason = (
            f"training process killed by signal {-child.returncode}"
            + (" (out of memory?)" if child.returncode == -signal.SIGKILL else "")
            if child.returncode < 0
            else f"training process exited with code {child.returncode}"
        )
        tail = _log_tail(log_path)
        error = f"{reason}\n{tail}" if tail else reason
        if num_processes > 1:  # name the rank that failed first, in its own words if it could
            error = distributed.explain_failure(
                _log_since(log_path, attempt_starts_at), log_path.parent, world_size=num_processes
            ) or error
        with session_scope() as session:
            transition(session, run_id=run_id, to=RunStatus.failed, error=error)


def _cancelled_after_kill(run_id: int, code: int) -> bool:
    """Whether the child ended badly after a cancel: then the run is cancelled as asked."""
    if code == 0 or not _checked(lambda: _cancel_requested(run_id)):
        return False
    # The child never reached a step boundary to stop at (stuck in a reward, a data loader,
    # a hung collective, ranks still starting) and was terminated, or it failed on its way
    # out (torchrun answers a SIGTERM with exit code 1): the run is cancelled as asked, its
    # checkpoints so far kept.
    how = (f"had not stopped {settings.cancel_grace_s:g} s after the cancel and was terminated"
           if code in (-signal.SIGTERM, -signal.SIGKILL)
           else f"exited with code {code} while stopping after the cancel")
    with session_scope() as session:
        status = stopped_status(session, run_id)  # cancelled, or pruned by its sweep
        transition(session, run_id=run_id, to=status,
                   error=f"{status.value}: the training process {how} "
                         "(its checkpoints so far are kept)")
    return True


def _advance_sweep(run_id: int) -> None:
    """A sweep's run ended: launch its next trial now rather than at the reaper's next pass."""
    try:
        with session_scope() as session:
            run = session.get(Run, run_id)
            if run is not None and run.sweep_id is not None:
                sweeps.advance(session, run.sweep_id)
    except Exception:  # the reaper's pass launches it instead
        log.exception("advancing the sweep of run %s failed", run_id)


DEVICE_RETRY_S = 5


def wait_heartbeating(
    child: children.Child,
    model: type[Live] | None,
    row_id: int,
    *,
    cancelled: Callable[[], bool] | None = None,
    stop: Callable[[], bool] | None = None,
) -> int:
    """Heartbeat the row ``child`` works on (none when ``model`` is None) at the usual cadence
    until the child exits.

    With ``cancelled``: once it answers True, the child has ``settings.cancel_grace_s`` to exit by
    itself; then its process group gets SIGTERM, and SIGKILL ``KILL_AFTER_TERM_S`` later, whatever
    it is doing. ``stop``, asked at every beat, answering True: SIGTERM now, then SIGKILL.
    Returns the child's exit code."""
    cancel_seen = terminated = None
    while True:
        if model is not None:
            _heartbeat(model, row_id)
        now = time.monotonic()
        if stop is not None and terminated is None and _checked(stop):
            log.warning("%s %s: stopping pid %s", model.__tablename__ if model else "node",
                        row_id, child.pid)
            _signal_group(child, signal.SIGTERM)
            terminated = cancel_seen = now
        if cancelled is not None and cancel_seen is None and _checked(cancelled):
            cancel_seen = now
            log.info("%s %s: cancel requested, waiting %g s for it to stop",
                     model.__tablename__ if model else "node", row_id, settings.cancel_grace_s)
        if cancel_seen is not None and terminated is None \
                and now - cancel_seen >= settings.cancel_grace_s:
            log.warning("%s %s did not stop after its cancel: terminating pid %s",
                        model.__tablename__ if model else "node", row_id, child.pid)
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


def _signal_group(child: children.Child, signum: int) -> None:
    # The child leads its own session (children.die_with_parent): its helpers and sandboxes go too.
    children.signal_group(child, signum)


def _heartbeat(model: type[Live], row_id: int) -> None:
    try:
        with session_scope() as session:
            record_progress(session, model, row_id)
    except Exception:  # a database blip must not abandon the child; retry next beat
        log.exception("heartbeat for %s %s failed", model.__tablename__, row_id)


@worker_ready.connect
def warm_up(sender=None, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    """A worker that trains, evaluates or exports starts its warm process now, so that its first
    child forks with the imports done too (worker/children.py)."""
    if set(_consumed_queues(sender)) - {settings.dataset_queue}:
        children.prewarm()


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
                    only=dead_on_this_host(gang.this_host()),
                )
    except Exception:
        log.exception("reaping lost jobs at worker start failed")


_registration_stop = threading.Event()


@worker_ready.connect
def register_at_start(sender=None, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    """Tell the web app which devices this worker can give a run (domain/placement.py), and keep
    saying it while the worker lives."""
    queues = sorted(_consumed_queues(sender))
    offered = offered_devices()
    name, host = worker_identity(), gang.this_host()

    def beat() -> None:
        while True:
            try:
                with session_scope() as session:
                    placement.register_worker(session, name=name, host=host, queues=queues,
                                              devices=offered)
            except Exception:
                log.exception("registering worker %s failed", name)
            if _registration_stop.wait(HEARTBEAT_INTERVAL_S):
                return

    threading.Thread(target=beat, name="tunedeck-worker-registration", daemon=True).start()


@worker_shutdown.connect
def unregister_at_shutdown(**_kwargs) -> None:  # type: ignore[no-untyped-def]
    _registration_stop.set()
    try:
        with session_scope() as session:
            placement.unregister_worker(session, name=worker_identity())
    except Exception:
        log.exception("unregistering worker failed")


def _consumed_queues(consumer) -> set[str]:  # type: ignore[no-untyped-def]
    try:
        return {queue.name for queue in consumer.task_consumer.queues}
    except AttributeError:
        return set(celery_app.amqp.queues.consume_from or {settings.default_queue: None})
