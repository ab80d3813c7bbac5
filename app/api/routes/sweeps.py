"""Sweeps: a family of runs from one base configuration and a search space. Page and API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.deps import SessionDep
from app.api.errors import id_in_range
from app.api.templating import templates
from app.domain import sweeps as domain
from app.domain.errors import NotFound
from app.domain.models import Run, Sweep, SweepStatus
from app.domain.runs import RunStateError
from app.schemas import SweepCreate
from app.services.jobs import runs as run_service
from app.services.sweeps import create, results

router = APIRouter(tags=["sweeps"])


def valid_sweep_id(sweep_id: int, session: SessionDep) -> Sweep:
    sweep = session.get(Sweep, sweep_id) if id_in_range(sweep_id) else None
    if sweep is None:
        raise NotFound(f"sweep {sweep_id} not found")
    return sweep


SweepDep = Annotated[Sweep, Depends(valid_sweep_id)]


@router.post("/api/sweeps", status_code=201)
def create_sweep(body: SweepCreate, session: SessionDep) -> dict[str, Any]:
    """Check a sweep, expand it into runs and start launching them."""
    return results.summary(session, create.create_sweep(session, body=body))


@router.get("/api/sweeps")
def list_sweeps(session: SessionDep) -> list[dict[str, Any]]:
    """Every sweep, newest first, with its status counts and best run."""
    rows = session.scalars(select(Sweep).order_by(Sweep.id.desc()).limit(200))
    return [{k: v for k, v in results.summary(session, s).items() if k != "runs"} for s in rows]


@router.get("/api/sweeps/{sweep_id}")
def get_sweep(sweep: SweepDep, session: SessionDep) -> dict[str, Any]:
    """A sweep with its runs, the values each tried, the target metric and the best run."""
    return results.summary(session, sweep)


@router.post("/api/sweeps/{sweep_id}/pause")
def pause_sweep(sweep: SweepDep, session: SessionDep) -> dict[str, Any]:
    """Launch no more runs of this sweep (its running ones go on)."""
    if not domain.set_status(session, sweep, SweepStatus.paused):
        raise RunStateError(f"sweep {sweep.id} is {sweep.status.value}: only a running sweep "
                            "pauses")
    return results.summary(session, sweep)


@router.post("/api/sweeps/{sweep_id}/resume")
def resume_sweep(sweep: SweepDep, session: SessionDep) -> dict[str, Any]:
    """Launch this sweep's remaining runs again."""
    if not domain.set_status(session, sweep, SweepStatus.running):
        raise RunStateError(f"sweep {sweep.id} is {sweep.status.value}: only a paused sweep "
                            "resumes")
    domain.advance(session, sweep.id)
    return results.summary(session, sweep)


@router.post("/api/sweeps/{sweep_id}/cancel")
def cancel_sweep(sweep: SweepDep, session: SessionDep) -> dict[str, Any]:
    """Cancel the sweep: waiting runs are cancelled, running ones stop at their next step."""
    if not domain.stop(session, sweep, SweepStatus.cancelled, None):
        raise RunStateError(f"sweep {sweep.id} is already {sweep.status.value}")
    for run in sweep_runs(session, sweep):
        if run.status.value == "running":
            run_service.request_cancel(session, run=run)
    return results.summary(session, sweep)


def sweep_runs(session: Session, sweep: Sweep) -> list[Run]:
    return list(session.scalars(select(Run).where(Run.sweep_id == sweep.id)))


@router.get("/sweeps/{sweep_id}", response_class=HTMLResponse, include_in_schema=False)
def sweep_page(sweep_id: int, request: Request, session: SessionDep) -> HTMLResponse:
    sweep = session.get(Sweep, sweep_id) if id_in_range(sweep_id) else None
    if sweep is None:
        return templates.TemplateResponse(request, "not_found.html",
                                          {"what": f"Sweep {sweep_id}"}, status_code=404)
    summary = results.summary(session, sweep)
    return templates.TemplateResponse(request, "sweeps/page.html", {
        "sweep": summary, "summary_json": jsonable_encoder(summary), "active_nav": "runs"})
