"""GET /api/runs/{id}/figures: the run page's figures (time, s/step, tokens/s, samples seen)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import RunDep, SessionDep
from app.services.jobs.figures import run_figures

router = APIRouter(prefix="/api/runs", tags=["runs"])


@router.get("/{run_id}/figures")
def get_figures(run: RunDep, session: SessionDep) -> dict:
    """Total training time (every attempt) and wall time, seconds per step (the first slow
    steps left out), tokens per second, tokens and samples seen; a figure is null until the run
    has logged enough to tell it."""
    return run_figures(session, run)
