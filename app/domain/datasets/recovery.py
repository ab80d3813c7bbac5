"""Uploads whose processing stopped: a dataset stays "processing" only while a worker works on it.

The worker's task claims the dataset (``claim``: one conditional UPDATE, so a duplicate message
finds it held and does nothing) and heartbeats it while it reads the file. The reaper's passes
(``recover_lost_datasets``, in every web process) then find two kinds of stuck upload:

- held by a worker that stopped heartbeating (killed, out of memory, machine gone): published
  again, so another worker starts over from the stored upload; after ``MAX_ATTEMPTS`` workers
  have died on it, it fails saying so (the file itself may be what kills them);
- never claimed (the message was lost with a restarted broker): published again after the
  re-publish wait, doubling each time as queued runs do (domain/requeue.py), so a datasets
  worker that is merely down gets a few spare messages, not one per pass.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.core.config import settings
from app.core.sql import update_one
from app.core.storage import make_store
from app.domain import publish
from app.domain.datasets.processing import transition
from app.domain.models import Dataset, DatasetStatus, utcnow
from app.domain.requeue import requeue_interval, take_publish_turn
from app.domain.runs import as_utc

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 2


def claim(session: Session, *, dataset_id: int, worker: str, lost_after_s: float) -> bool:
    """Take a processing dataset for ``worker`` unless another worker holds it (heartbeat newer
    than ``lost_after_s``); commits and returns whether it is ours."""
    cutoff = utcnow() - timedelta(seconds=lost_after_s)
    ours = update_one(
        session, Dataset, Dataset.id == dataset_id, Dataset.status == DatasetStatus.processing,
        or_(Dataset.heartbeat_at.is_(None), Dataset.heartbeat_at < cutoff),
        worker=worker, heartbeat_at=utcnow(), attempts=Dataset.attempts + 1)
    session.commit()
    return ours


def heartbeat(session: Session, *, dataset_id: int, worker: str) -> bool:
    """Say ``worker`` is still processing it; False once it is no longer ours or processing."""
    alive = update_one(session, Dataset, Dataset.id == dataset_id, Dataset.worker == worker,
                       Dataset.status == DatasetStatus.processing, heartbeat_at=utcnow())
    session.commit()
    return alive


def publish_processing(session: Session, dataset: Dataset, *, now: datetime) -> bool:
    """Publish the dataset's task (again) unless another web process just did; whether we did."""
    ours = take_publish_turn(session, Dataset, dataset,
                             Dataset.status == DatasetStatus.processing, now=now)
    if ours:
        publish.publish(publish.PROCESS_DATASET, dataset.id, queue=settings.dataset_queue)
    return ours


def recover_lost_datasets(session: Session, *, lost_after_s: float, requeue_after_s: float,
                          now: datetime | None = None) -> list[int]:
    """Publish again (or fail, after MAX_ATTEMPTS dead workers) every stuck processing upload;
    returns the ids acted on."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=lost_after_s)
    acted = []
    rows = session.scalars(select(Dataset).where(
        Dataset.status == DatasetStatus.processing).order_by(Dataset.id)
        .execution_options(populate_existing=True)).all()  # fresh: claims are bare UPDATEs
    for dataset in rows:
        beat = as_utc(dataset.heartbeat_at)
        if beat is not None:
            if beat >= cutoff:
                continue  # a worker is on it
            if _lost(session, dataset, now=now, cutoff=cutoff):
                acted.append(dataset.id)
            continue
        last = as_utc(dataset.published_at or dataset.created_at)
        waited = (now - last).total_seconds() if last else 0.0
        if requeue_after_s > 0 and waited >= requeue_interval(requeue_after_s,
                                                              dataset.publish_count):
            try:
                if publish_processing(session, dataset, now=now):
                    acted.append(dataset.id)
            except Exception:  # broker down: the next pass tries again
                log.exception("re-publishing dataset %s failed", dataset.id)
    if acted:
        log.warning("stuck dataset uploads %s published again or failed", acted)
    return acted


def _lost(session: Session, dataset: Dataset, *, now: datetime, cutoff: datetime) -> bool:
    who = dataset.worker or "its worker"
    if dataset.attempts >= MAX_ATTEMPTS:
        upload_key = dataset.upload_key
        failed = transition(
            session, dataset_id=dataset.id, to=DatasetStatus.failed, upload_key=None,
            only_if=Dataset.heartbeat_at < cutoff,
            error=f"processing stopped {dataset.attempts} times: the last worker on it ({who}) "
                  "stopped answering. The file may be too big for the workers' memory: split "
                  "it, or give the datasets worker more memory, then upload it again")
        if failed and upload_key:
            make_store().delete(upload_key)
        return failed
    # Released for another worker (the heartbeat re-checked: a late beat keeps it), then sent.
    released = update_one(session, Dataset, Dataset.id == dataset.id,
                          Dataset.status == DatasetStatus.processing,
                          Dataset.heartbeat_at < cutoff, heartbeat_at=None, worker=None)
    session.commit()
    if not released:
        return False
    session.refresh(dataset)
    log.warning("dataset %s: %s stopped while processing it; publishing it again", dataset.id,
                who)
    try:
        publish_processing(session, dataset, now=now)
    except Exception:  # broker down: the never-claimed path publishes it on a later pass
        log.exception("re-publishing dataset %s failed", dataset.id)
    return True
