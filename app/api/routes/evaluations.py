"""Evaluations (base vs tuned on held-out rows) and the playground (base vs adapter answers)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response

from app.api.deps import RunDep, SessionDep
from app.api.evaluation_schemas import (
    BestCheckpointChoice,
    EvaluationCreate,
    EvaluationExamplesPage,
    EvaluationPublic,
    GenerationCreate,
    GenerationPublic,
)
from app.core.storage import store
from app.domain.errors import NotFound
from app.domain.evaluation_rows import row_prompt_text
from app.domain.evaluations import create_evaluation as create_evaluation_job
from app.domain.models import Evaluation, Generation, Run
from app.domain.training_rows import read_dataset_rows
from app.schemas import CheckpointPublic
from app.services.jobs import deletion
from app.services.jobs import evaluations as service

router = APIRouter(tags=["evaluations"])


def _load(session, model, item_id: int, what: str):  # type: ignore[no-untyped-def]
    row = session.get(model, item_id)
    if row is None:
        raise NotFound(f"{what} {item_id} not found")
    return row


@router.post("/api/runs/{run_id}/evaluations", status_code=201, response_model=EvaluationPublic)
def create_evaluation(run: RunDep, body: EvaluationCreate, session: SessionDep) -> Any:
    """Queue an evaluation of a checkpoint (step or "best") against the base model."""
    evaluation = create_evaluation_job(session, run=run, **body.model_dump())
    return EvaluationPublic.model_validate(evaluation)


@router.get("/api/runs/{run_id}/evaluations", response_model=list[EvaluationPublic])
def list_run_evaluations(run: RunDep, session: SessionDep) -> Any:
    """A run's evaluations, newest first."""
    return [EvaluationPublic.model_validate(e)
            for e in service.list_evaluations(session, run_ids=[run.id])]


@router.post("/api/runs/{run_id}/checkpoints/best", response_model=CheckpointPublic)
def choose_best_checkpoint(run: RunDep, body: BestCheckpointChoice, session: SessionDep
                           ) -> CheckpointPublic:
    """Mark as best the checkpoint whose evaluation scores best on `score`."""
    checkpoint = service.choose_best_checkpoint(session, run=run, score=body.score)
    return CheckpointPublic.model_validate(checkpoint)


@router.get("/api/evaluations", response_model=list[EvaluationPublic])
def list_evaluations(session: SessionDep,
                     run_ids: str = Query(pattern=r"^\d+(,\d+)*$", examples=["1,2"])) -> Any:
    """Evaluations of several runs (the compare page), newest first."""
    ids = [int(i) for i in run_ids.split(",")][:50]
    return [EvaluationPublic.model_validate(e)
            for e in service.list_evaluations(session, run_ids=ids)]


@router.get("/api/evaluations/{evaluation_id}", response_model=EvaluationPublic)
def get_evaluation(evaluation_id: int, session: SessionDep) -> Any:
    """Status, progress and per-score base and tuned values with intervals."""
    return EvaluationPublic.model_validate(_load(session, Evaluation, evaluation_id, "evaluation"))


@router.delete("/api/evaluations/{evaluation_id}", status_code=204,
               responses={404: {"description": "no such evaluation"},
                          409: {"description": "still in progress"}})
def delete_evaluation(evaluation_id: int, session: SessionDep) -> Response:
    """Delete a finished evaluation with its examples."""
    evaluation = _load(session, Evaluation, evaluation_id, "evaluation")
    deletion.delete_evaluation(session, evaluation=evaluation)
    return Response(status_code=204)


@router.get("/api/evaluations/{evaluation_id}/examples", response_model=EvaluationExamplesPage)
def get_examples(
    evaluation_id: int, session: SessionDep,
    sort: str = Query(default="index", pattern="^(index|diff|-diff)$"),
    filter: str = Query(default="all", pattern="^(all|tuned_worse|tuned_better|same)$"),
    limit: int = Query(default=200, ge=1, le=1000), offset: int = Query(default=0, ge=0),
) -> Any:
    """Per-example prompt, reference, outputs and scores; sort by diff, filter e.g. tuned_worse."""
    evaluation = _load(session, Evaluation, evaluation_id, "evaluation")
    total, rows = service.examples(session, evaluation=evaluation, sort=sort, filter=filter,
                                   limit=limit, offset=offset)
    return {"total": total, "primary": (evaluation.results or {}).get("primary"),
            "examples": rows}


@router.post("/api/playground", status_code=202, response_model=GenerationPublic)
def create_generation(body: GenerationCreate, session: SessionDep) -> Any:
    """Queue a prompt for the base model and the adapter; poll GET /api/playground/{id}."""
    run = _load(session, Run, body.run_id, "run")
    generation = service.create_generation(session, run=run,
                                           **body.model_dump(exclude={"run_id"}))
    return GenerationPublic.model_validate(generation)


@router.get("/api/playground/{generation_id}", response_model=GenerationPublic)
def get_generation(generation_id: int, session: SessionDep) -> Any:
    """A playground request: status and each answer as soon as it exists."""
    return GenerationPublic.model_validate(_load(session, Generation, generation_id, "generation"))


@router.get("/api/runs/{run_id}/prompts")
def run_prompts(run: RunDep, limit: int = Query(default=20, ge=1, le=200)) -> list[str]:
    """Prompts from the run's dataset, for the playground's "pick a prompt" list."""
    texts = (row_prompt_text(row, run.dataset.format)
             for row in read_dataset_rows(store, run.dataset, limit=limit * 2))
    return [t for t in texts if t][:limit]
