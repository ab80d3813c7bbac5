"""Pages: an evaluation (scores base → tuned, per-example review) and the playground."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from app.api.deps import SessionDep
from app.api.evaluation_schemas import EvaluationPublic
from app.api.templating import templates
from app.domain.models import Checkpoint, Evaluation, Run

router = APIRouter(include_in_schema=False)


@router.get("/evaluations/{evaluation_id}", response_class=HTMLResponse)
def evaluation_page(evaluation_id: int, request: Request, session: SessionDep) -> HTMLResponse:
    evaluation = session.get(Evaluation, evaluation_id)
    if evaluation is None:
        return templates.TemplateResponse(request, "not_found.html",
                                          {"what": f"Evaluation {evaluation_id}"}, status_code=404)
    run = session.get(Run, evaluation.run_id) if evaluation.run_id else None
    return templates.TemplateResponse(request, "evaluations/detail.html", {
        "evaluation": EvaluationPublic.model_validate(evaluation).model_dump(),
        "run": run, "active_nav": "runs"})


@router.get("/playground", response_class=HTMLResponse)
def playground_page(request: Request, session: SessionDep, run_id: int | None = None
                    ) -> HTMLResponse:
    steps: dict[int, list[int]] = {}
    for checkpoint in session.scalars(select(Checkpoint).order_by(Checkpoint.step)):
        steps.setdefault(checkpoint.run_id, []).append(checkpoint.step)
    runs = [{"id": r.id, "name": r.name, "strategy": r.strategy, "steps": steps[r.id]}
            for r in session.scalars(select(Run).order_by(Run.id.desc())) if r.id in steps]
    return templates.TemplateResponse(request, "playground/index.html", {
        "runs": runs, "selected": run_id, "active_nav": "playground"})
