"""Celery task that processes a big upload (app.domain.datasets.processing) on the datasets queue,
off the web request: rows streamed, checked, normalised and measured in bounded memory."""

from __future__ import annotations

from app.core.storage import make_store
from app.domain.datasets.processing import process_stored_upload
from worker.celery_app import celery_app


@celery_app.task(name="tunedeck.process_dataset", ignore_result=True)
def process_dataset(dataset_id: int) -> str:
    return process_stored_upload(dataset_id, store=make_store())
