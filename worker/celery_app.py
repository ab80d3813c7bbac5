"""The worker's Celery app: the shared one (``app.core.celery_app``); ``celery -A
worker.celery_app`` loads the task modules it lists."""

from app.core.celery_app import celery_app, create_celery

__all__ = ["celery_app", "create_celery"]
