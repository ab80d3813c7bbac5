"""Runs: launch, list, detail, metrics, samples, cancel, resume, delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy import func, select

from app.api.deps import RunDep, SessionDep, StoreDep
from app.api.queue_notice import worker_command_for
from app.domain import metrics, workers
from app.domain.errors import NotFound
from app.domain.json_values import finite_or_none
from app.domain.models import Dataset, RunStatus, Sample
from app.domain.runs import enqueue
from app.schemas import RunChanges, RunCreate, RunPublic, SamplePublic
from app.services.compare import comparison as compare
from app.services.compare import series as compare_series
from app.services.jobs import deletion, launch, run_list
from app.services.jobs import runs as service

router = APIRouter(prefix="/api/runs", tags=["runs"])


@router.post("", status_code=201, response_model=RunPublic)
def create_run(body: RunCreate, session: SessionDep) -> RunPublic:
    """Validate a run's configuration and queue it for a worker."""
    dataset = session.get(Dataset, body.dataset_id)
    if dataset is None:
        raise NotFound(f"dataset {body.dataset_id} not found")
    run = launch.launch_run(session, dataset=dataset, spec=body)
    public = launch.run_public(session, run)
    warning = workers.no_worker_warning(session, run.queue, worker_command_for(run.queue))
    return public.model_copy(update={"warnings": [warning] if warning else []})


StatusFilter = Query(default=None, pattern=f"^({'|'.join(RunStatus)})$")
StrategyFilter = Query(default=None, pattern="^(sft|grpo|dpo)$")
NameFilter = Query(default=None, max_length=200, description="part of the run's name, any case")
TagFilter = Query(default=None, max_length=40, description="runs with this tag")
PageSize = Query(default=run_list.DEFAULT_PAGE_SIZE, ge=1, le=run_list.MAX_PAGE_SIZE)
PageOffset = Query(default=0, ge=0, le=10**9)


def run_filters(status: str | None = StatusFilter, strategy: str | None = StrategyFilter,
                dataset_id: int | None = None, q: str | None = NameFilter,
                sweep_id: int | None = None, tag: str | None = TagFilter) -> run_list.RunFilters:
    """The runs list's filters, as the list and its poll both take them."""
    return run_list.RunFilters(status=status, strategy=strategy, dataset_id=dataset_id, q=q,
                               sweep_id=sweep_id, tag=tag)


FiltersDep = Annotated[run_list.RunFilters, Depends(run_filters)]


@router.get("", response_model=list[RunPublic])
def list_runs(
    session: SessionDep,
    response: Response,
    filters: FiltersDep,
    limit: int = PageSize,
    offset: int = PageOffset,
) -> list[RunPublic]:
    """List one page of runs, newest first, optionally filtered; `X-Total-Count` says how many
    match in all."""
    page = run_list.page_runs(session, filters=filters, limit=limit, offset=offset)
    response.headers["X-Total-Count"] = str(page.total)
    return launch.runs_public(session, page.runs)


@router.get("/changes", response_model=RunChanges)
def list_changed_runs(
    session: SessionDep,
    filters: FiltersDep,
    since: datetime | None = Query(default=None, description="the previous answer's cursor"),
    limit: int = PageSize,
    offset: int = PageOffset,
) -> RunChanges:
    """The runs list's poll: the page's runs changed since `since` (all without it), the ids on
    the page now, in order, and the cursor to pass next time."""
    changes = run_list.changed_runs(session, filters=filters, since=since, limit=limit,
                                    offset=offset)
    return RunChanges(runs=launch.runs_public(session, changes.runs), page_ids=changes.page_ids,
                      total=changes.total, cursor=changes.cursor)


@router.get("/{run_id}", response_model=RunPublic)
def get_run(run: RunDep, session: SessionDep) -> RunPublic:
    """Retrieve a run with its status, progress and best checkpoint."""
    return launch.run_public(session, run)


@router.get("/{run_id}/series")
def get_series(
    run: RunDep, session: SessionDep,
    max_points: int = Query(default=compare.DEFAULT_MAX_POINTS, ge=10,
                            le=compare.MAX_POINTS_LIMIT),
) -> dict:
    """The run page's curves: every metric downsampled to at most `max_points` (extremes kept),
    through the same cached series service as the compare page."""
    names = compare_series.metric_names(session, runs=[run])
    series = compare_series.chart_series(session, runs=[run], names=names,
                                         max_points=max_points)[run.id]
    return {"max_points": max_points, "metrics": {
        name: [[s, finite_or_none(v)] for s, v in points] for name, points in series.items()}}


@router.get("/{run_id}/metrics")
def get_metrics(
    run: RunDep, session: SessionDep, names: str | None = Query(default=None, max_length=2000)
) -> dict:
    """A run's logged metrics at full resolution as [step, value] pairs per name (the run page
    reads the downsampled `/series`)."""
    wanted = [n.strip() for n in names.split(",") if n.strip()] if names else None
    series = metrics.read_series(session, run_ids=[run.id], names=wanted).get(run.id, {})
    return {
        "metrics": {
            name: [[s, finite_or_none(v)] for s, v in points] for name, points in series.items()
        }
    }


@router.get("/{run_id}/samples", response_model=list[SamplePublic])
def get_samples(
    run: RunDep, session: SessionDep, response: Response,
    limit: int = Query(default=50, ge=1, le=500), offset: int = Query(default=0, ge=0),
) -> list[SamplePublic]:
    """Sampled completions (GRPO) with each reward function's score, newest first; `offset`
    pages on, and the `X-Total-Count` header says how many the run stored."""
    rows = session.scalars(
        select(Sample)
        .where(Sample.run_id == run.id)
        .order_by(Sample.step.desc(), Sample.id)
        .offset(offset)
        .limit(limit)
    )
    total = session.scalar(select(func.count()).select_from(Sample).where(Sample.run_id == run.id))
    response.headers["X-Total-Count"] = str(total or 0)
    return [SamplePublic.model_validate(row) for row in rows]


@router.post("/{run_id}/cancel", response_model=RunPublic)
def cancel_run(run: RunDep, session: SessionDep) -> RunPublic:
    """Cancel a queued run, or stop a running one at its next step."""
    service.request_cancel(session, run=run)
    return launch.run_public(session, run)


@router.post("/{run_id}/resume", response_model=RunPublic)
def resume_run(run: RunDep, session: SessionDep, store: StoreDep) -> RunPublic:
    """Continue a failed or cancelled run from its latest checkpoint."""
    service.resume_run(session, run=run, store=store)
    enqueue(run)
    return launch.run_public(session, run)


@router.delete("/{run_id}", status_code=204, responses={409: {"description": "still in use"}})
def delete_run(run: RunDep, session: SessionDep, store: StoreDep) -> Response:
    """Delete a finished run with its curves, checkpoints (files too) and evaluations."""
    deletion.delete_run(session, run=run, store=store)
    return Response(status_code=204)
