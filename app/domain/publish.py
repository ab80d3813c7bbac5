"""Send work to the workers by task name: the web never imports a task object (the tasks live in
``worker/``, which imports this core, never the other way round)."""

from __future__ import annotations

from app.core.celery_app import celery_app

TRAIN_RUN = "tunedeck.train_run"
EVALUATE = "tunedeck.evaluate"
GENERATE = "tunedeck.generate"
EXPORT = "tunedeck.export"
DEPLOY = "tunedeck.deploy"
PROCESS_DATASET = "tunedeck.process_dataset"


def publish(task: str, job_id: int, *, queue: str) -> None:
    """Queue ``task`` for the row ``job_id`` on ``queue``; the row in the database owns the state,
    so a lost or repeated message is harmless (the requeue and the atomic claim handle both)."""
    celery_app.send_task(task, args=[job_id], queue=queue)
