"""The export task: claims its row atomically (a redelivered message finds nothing to claim) and
builds the export in a child process (worker/exports/runner.py), heartbeating the row while it
waits, so the reaper fails it if this worker dies."""

from __future__ import annotations

import logging
import signal
import sys

from app.core.config import settings
from app.core.db import session_scope
from app.core.storage import store
from app.domain import jobs
from app.domain.exports import export_key
from app.domain.models import Export, JobStatus
from worker import children
from worker.celery_app import celery_app
from worker.tasks import _log_tail, wait_heartbeating, worker_identity

log = logging.getLogger(__name__)


@celery_app.task(name="tunedeck.export", ignore_result=True)
def export(export_id: int) -> str:
    with session_scope() as session:
        claimed = jobs.transition(session, Export, job_id=export_id, to=JobStatus.running,
                                  worker=worker_identity(), phase="starting")
    if not claimed:
        log.info("export %s is not queued: skipping", export_id)
        return "skipped"
    log_path = settings.resolved_data_dir / "exports" / f"export-{export_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    child = children.start(
        [sys.executable, "-m", "worker.exports.runner", str(export_id)], log_path=log_path,
        env=children.environment())
    code = wait_heartbeating(child, Export, export_id)
    if code != 0:  # killed mid-way: whatever it uploaded goes
        reason = (f"export process killed by signal {-code}"
                  + (" (out of memory?)" if code == -signal.SIGKILL else "")
                  if code < 0 else f"export process exited with code {code}")
        tail = _log_tail(log_path)
        with session_scope() as session:
            row = session.get(Export, export_id)
            if row is not None:
                store.delete(export_key(row))
            jobs.transition(session, Export, job_id=export_id, to=JobStatus.failed,
                            error=f"{reason}\n{tail}" if tail else reason)
    return "done"
