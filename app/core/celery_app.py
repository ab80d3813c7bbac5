"""The Celery app, shared by the web (which publishes tasks by name, see ``app.domain.publish``)
and the worker (``worker.celery_app`` registers the tasks on it). Embedded default: kombu's
filesystem transport (no server); production: Redis."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from app.core.config import Settings, settings

# Imported by the worker process when it starts (the web never imports them: it sends by name).
WORKER_TASK_MODULES = ["worker.tasks", "worker.gang", "worker.eval_tasks",
                       "worker.export_tasks", "worker.deploy_tasks", "worker.dataset_tasks"]


def create_celery(cfg: Settings = settings) -> Celery:
    celery = Celery(
        "tunedeck", broker=cfg.celery_broker_url, include=WORKER_TASK_MODULES
    )
    transport_options: dict = {}
    if cfg.celery_broker_url.startswith("filesystem"):
        folder = str(cfg.broker_dir)
        transport_options = {
            "data_folder_in": folder,
            "data_folder_out": folder,
            "processed_folder": str(cfg.broker_dir.parent / "broker-processed"),
            "store_processed": False,
            # Otherwise kombu writes its control exchange files into the current directory.
            "control_folder": str(cfg.broker_dir.parent / "broker-control"),
            "polling_interval": cfg.broker_poll_interval,
        }
    elif cfg.celery_broker_url.startswith("redis"):
        # Training runs last hours: a short visibility timeout would redeliver a running task.
        # The run row's atomic claim makes a redelivery harmless anyway.
        transport_options = {"visibility_timeout": 12 * 3600}
    if cfg.celery_broker_url.startswith("filesystem"):
        celery.conf.broker_transport = "app.core.fs_broker:Transport"  # atomic message files
    celery.conf.update(
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        task_default_queue=cfg.default_queue,
        task_queues=[Queue(cfg.default_queue)],
        task_create_missing_queues=True,
        # One training task at a time per worker process.
        worker_prefetch_multiplier=1,
        worker_concurrency=1,
        task_acks_late=False,
        task_ignore_result=True,
        result_backend=None,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return celery


celery_app = create_celery()
