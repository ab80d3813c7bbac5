"""The queue: what runs on which worker and device and what waits, in order, per worker queue;
priorities, moving a waiting run, pausing a queue. Page and API."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import RunDep, SessionDep
from app.api.templating import templates
from app.services.jobs import queues as service

router = APIRouter(tags=["queue"])
QueueName = Path(pattern=service.QUEUE_NAME)


class QueuedRun(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    strategy: str
    status: str
    priority: int
    worker: str | None
    device: str | None
    step: int
    max_steps: int | None
    phase: str | None


class QueuePublic(BaseModel):
    name: str
    paused: bool
    running: list[QueuedRun]
    # In the order workers take them: higher priority first, then oldest.
    waiting: list[QueuedRun]


class PriorityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority: int = Field(ge=-1000, le=1000)


class MoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    direction: Literal["up", "down"]


def _public(view: service.QueueView) -> QueuePublic:
    return QueuePublic(name=view.name, paused=view.paused,
                       running=[QueuedRun.model_validate(r) for r in view.running],
                       waiting=[QueuedRun.model_validate(r) for r in view.waiting])


@router.get("/api/queues", response_model=list[QueuePublic])
def list_queues(session: SessionDep) -> list[QueuePublic]:
    """Every queue: its running runs (worker, device) and its waiting runs in claim order."""
    return [_public(view) for view in service.overview(session)]


@router.post("/api/queues/{name}/pause", response_model=QueuePublic)
def pause_queue(session: SessionDep, name: str = QueueName) -> QueuePublic:
    """Stop workers taking this queue's waiting runs (running ones go on)."""
    service.set_paused(session, name=name, paused=True)
    return next(_public(v) for v in service.overview(session) if v.name == name)


@router.post("/api/queues/{name}/resume", response_model=QueuePublic)
def resume_queue(session: SessionDep, name: str = QueueName) -> QueuePublic:
    """Let workers take this queue's waiting runs again."""
    service.set_paused(session, name=name, paused=False)
    views = [v for v in service.overview(session) if v.name == name]
    return _public(views[0]) if views else QueuePublic(name=name, paused=False, running=[],
                                                       waiting=[])


@router.put("/api/runs/{run_id}/priority", response_model=QueuedRun)
def set_run_priority(run: RunDep, body: PriorityIn, session: SessionDep) -> QueuedRun:
    """Set a run's priority: higher runs first among the waiting runs of its queue."""
    return QueuedRun.model_validate(service.set_priority(session, run=run,
                                                        priority=body.priority))


@router.post("/api/runs/{run_id}/move", response_model=QueuedRun)
def move_run(run: RunDep, body: MoveIn, session: SessionDep) -> QueuedRun:
    """Swap a waiting run with the one ahead of it (up) or behind it (down) in its queue."""
    return QueuedRun.model_validate(service.move(session, run=run, direction=body.direction))


@router.get("/queue", response_class=HTMLResponse, include_in_schema=False)
def queue_page(request: Request, session: SessionDep) -> HTMLResponse:
    queues = [_public(view) for view in service.overview(session)]
    return templates.TemplateResponse(request, "queue/page.html", {
        "queues": [q.model_dump(mode="json") for q in queues], "active_nav": "queue"})
