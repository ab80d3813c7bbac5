"""How a running run, evaluation or playground generation reports that it is alive and how far it
got: one conditional UPDATE that always refreshes the heartbeat (the reaper reads it) and only
touches a row that is still running, so a row the reaper failed is never brought back."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.core.sql import update_one
from app.domain.models import Evaluation, Export, Generation, Run, utcnow

Live = Run | Evaluation | Generation | Export


def record_progress(session: Session, model: type[Live], row_id: int, **fields: Any) -> bool:
    """Heartbeat plus ``fields`` (step, eta_seconds, progress…) on a running row; whether it
    matched. The caller commits."""
    return update_one(session, model, model.id == row_id, model.status == "running",
                      heartbeat_at=utcnow(), **fields)
