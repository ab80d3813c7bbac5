"""A run's notifications: what was sent where, and what failed (app/domain/notify.py)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from app.api.deps import RunDep, SessionDep
from app.domain.models import Notification
from app.schemas import NotificationPublic

router = APIRouter(tags=["runs"])


@router.get("/api/runs/{run_id}/notifications", response_model=list[NotificationPublic])
def list_notifications(run: RunDep, session: SessionDep) -> list[NotificationPublic]:
    """Messages about the run (finished, failed, evaluation finished) per target, oldest first,
    with the attempts made and the last error."""
    rows = session.scalars(select(Notification).where(Notification.run_id == run.id)
                           .order_by(Notification.id))
    return [NotificationPublic.model_validate(row) for row in rows]
