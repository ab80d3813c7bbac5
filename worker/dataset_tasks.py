"""Celery task that processes a big upload (app.domain.datasets.processing) on the datasets queue,
off the web request: rows streamed, checked, normalised and measured in bounded memory. The
task claims the dataset and heartbeats it while it works, so an upload whose worker dies is
picked up again (app.domain.datasets.recovery)."""

from __future__ import annotations

import logging
import threading

from app.core.config import settings
from app.core.db import session_scope
from app.core.storage import make_store
from app.domain.datasets import recovery
from app.domain.datasets.processing import process_stored_upload
from app.domain.reaper import heartbeat_interval
from worker.celery_app import celery_app
from worker.tasks import worker_identity

log = logging.getLogger(__name__)


@celery_app.task(name="tunedeck.process_dataset", ignore_result=True)
def process_dataset(dataset_id: int) -> str:
    me = worker_identity()
    with session_scope() as session:
        if not recovery.claim(session, dataset_id=dataset_id, worker=me,
                              lost_after_s=settings.worker_lost_after_s):
            return "skipped"  # done, failed, deleted, or another worker is on it
    stop = threading.Event()
    beats = threading.Thread(target=_heartbeat, args=(dataset_id, me, stop), daemon=True,
                             name=f"dataset-{dataset_id}-heartbeat")
    beats.start()
    try:
        return process_stored_upload(dataset_id, store=make_store())
    finally:
        stop.set()
        beats.join()


def _heartbeat(dataset_id: int, me: str, stop: threading.Event) -> None:
    while not stop.wait(heartbeat_interval(settings.worker_lost_after_s)):
        try:
            with session_scope() as session:
                if not recovery.heartbeat(session, dataset_id=dataset_id, worker=me):
                    return
        except Exception:  # a database blip: the next beat tries again
            log.exception("heartbeat for dataset %s failed", dataset_id)
