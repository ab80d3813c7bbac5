"""Celery tasks for evaluations and playground generations. Like ``train_run``, a task claims its
row atomically (``UPDATE … WHERE status='queued'``) and does the work in a child process, so the
model's memory is freed afterwards and a crash never takes the worker down; it heartbeats the row
while it waits, so the reaper fails it if this worker dies (app/domain/reaper.py)."""

from __future__ import annotations

import logging
import signal
import sys

from app.core.config import settings
from app.core.db import session_scope
from app.domain import jobs
from app.domain.models import Evaluation, Generation, JobStatus
from app.domain.notify import notify_evaluation_finished
from worker import children
from worker.celery_app import celery_app
from worker.tasks import _log_tail, wait_heartbeating, worker_identity

log = logging.getLogger(__name__)
TABLES: dict[str, type[Evaluation] | type[Generation]] = {
    "evaluate": Evaluation, "generate": Generation}


def claim(table, job_id: int) -> bool:  # type: ignore[no-untyped-def]
    """Queued → running for exactly one caller; a redelivered task finds nothing to claim."""
    with session_scope() as session:
        return jobs.transition(session, table, job_id=job_id, to=JobStatus.running,
                               worker=worker_identity())


def run_child(kind: str, job_id: int) -> str:
    table = TABLES[kind]
    if not claim(table, job_id):
        log.info("%s %s is not queued: skipping", kind, job_id)
        return "skipped"
    log_path = settings.resolved_data_dir / "evaluations" / f"{kind}-{job_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    child = children.start(
        [sys.executable, "-m", "worker.evaluation.runner", kind, str(job_id)], log_path=log_path,
        env=children.environment())
    code = wait_heartbeating(child, table, job_id)
    if code != 0:
        reason = (f"{kind} process killed by signal {-code}"
                  + (" (out of memory?)" if code == -signal.SIGKILL else "")
                  if code < 0 else f"{kind} process exited with code {code}")
        tail = _log_tail(log_path)
        with session_scope() as session:
            jobs.transition(session, table, job_id=job_id, to=JobStatus.failed,
                            error=f"{reason}\n{tail}" if tail else reason)
    if kind == "evaluate":
        notify_evaluation_finished(job_id)  # in the background
    return "done"


@celery_app.task(name="tunedeck.evaluate", ignore_result=True)
def evaluate(evaluation_id: int) -> str:
    return run_child("evaluate", evaluation_id)


@celery_app.task(name="tunedeck.generate", ignore_result=True)
def generate(generation_id: int) -> str:
    return run_child("generate", generation_id)
