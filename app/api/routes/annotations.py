"""Tags and notes on runs and sweeps."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import RunDep, SessionDep
from app.api.routes.sweeps import SweepDep
from app.schemas import Annotations, RunPublic
from app.services.jobs import launch
from app.services.sweeps import results

router = APIRouter(tags=["annotations"])


def _annotate(session, row, body: Annotations) -> None:  # type: ignore[no-untyped-def]
    if body.tags is not None:
        row.tags = list(dict.fromkeys(body.tags))  # once each, in the order given
    if body.notes is not None:
        row.notes = body.notes.strip() or None
    session.commit()


@router.patch("/api/runs/{run_id}", response_model=RunPublic)
def annotate_run(run: RunDep, body: Annotations, session: SessionDep) -> RunPublic:
    """Set a run's tags and notes (a field left out stays as it is)."""
    _annotate(session, run, body)
    return launch.run_public(session, run)


@router.patch("/api/sweeps/{sweep_id}")
def annotate_sweep(sweep: SweepDep, body: Annotations, session: SessionDep) -> dict[str, Any]:
    """Set a sweep's tags and notes (a field left out stays as it is)."""
    _annotate(session, sweep, body)
    return results.summary(session, sweep)
