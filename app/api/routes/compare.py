"""Compare runs: the comparison API, its CSV/JSON exports, run health and the compare page."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from app.api.deps import RunDep, SessionDep
from app.api.templating import templates
from app.core.db import SessionLocal
from app.domain import health, trackers
from app.services.compare import comparison as compare
from app.services.compare import export as compare_export
from app.services.compare import series as compare_series
from app.services.compare.samples import samples_payload

router = APIRouter(tags=["compare"])

RunIdsQuery = Query(description="Run ids separated by commas, e.g. 1,2,3 (at most "
                                f"{compare.MAX_RUNS}); the order sets each run's colour.")
NamesQuery = Query(default=None, max_length=4000,
                   description="Metric names separated by commas; all metrics when omitted.")


def _run_ids(session: SessionDep, text: str | None) -> list[int]:
    """Parsed and checked run ids: 422 when malformed or too many, 404 when unknown."""
    run_ids = compare.parse_run_ids(text)
    compare.load_runs(session, run_ids=run_ids)
    return run_ids


@router.get("/api/compare")
def get_comparison(
    session: SessionDep,
    run_ids: str = RunIdsQuery,
    names: str | None = NamesQuery,
    max_points: int = Query(default=compare.DEFAULT_MAX_POINTS, ge=10,
                            le=compare.MAX_POINTS_LIMIT),
    sample_step: int | None = Query(default=None, ge=0),
    health: bool = Query(default=True, description="false: leave out the health flags"),
) -> dict:
    """Runs side by side: summaries, downsampled curves, config diff, health and samples.

    ``metrics[run_id][name]`` is ``[[step, value], ...]`` with at most ``max_points`` points
    (min/max per bucket: spikes survive). ``x[run_id]`` maps steps to elapsed seconds and to
    epochs (``[[step, x], ...]``) for the other x-axes. ``config_diff.rows`` holds every
    setting with a ``differs`` flag.
    """
    ids = _run_ids(session, run_ids)
    return compare.build_comparison(session, run_ids=ids, names=compare.parse_names(names),
                                    max_points=max_points, sample_step=sample_step,
                                    with_health=health)


@router.get("/api/compare/health")
def get_compare_health(session: SessionDep, run_ids: str = RunIdsQuery) -> dict:
    """Health flags per run (the same as the comparison's ``health``)."""
    ids = _run_ids(session, run_ids)
    return compare.health_flags(session, runs=compare.load_runs(session, run_ids=ids))


@router.get("/api/compare/samples")
def get_compare_samples(
    session: SessionDep, run_ids: str = RunIdsQuery, step: int | None = Query(default=None, ge=0)
) -> dict:
    """Sampled completions of each run at the step nearest ``step``, grouped by prompt."""
    return samples_payload(session, run_ids=_run_ids(session, run_ids), step=step)


def _export(run_ids: list[int], names: list[str] | None, kind: str) -> Iterator[str]:
    # Its own session: the request's closes before a streamed body is finished.
    with SessionLocal() as session:
        make = compare_export.iter_csv if kind == "csv" else compare_export.iter_json
        yield from make(session, run_ids=run_ids, names=names)


@router.get("/api/compare/export.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})
def export_csv(session: SessionDep, run_ids: str = RunIdsQuery,
               names: str | None = NamesQuery) -> StreamingResponse:
    """Every logged value of the runs, full resolution: run_id,run_name,metric,step,value."""
    ids = _run_ids(session, run_ids)
    return StreamingResponse(
        _export(ids, compare.parse_names(names), "csv"), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_filename(ids)}.csv"'})


@router.get("/api/compare/export.json", response_class=StreamingResponse,
            responses={200: {"content": {"application/json": {}}}})
def export_json(session: SessionDep, run_ids: str = RunIdsQuery,
                names: str | None = NamesQuery) -> StreamingResponse:
    """Every logged value of the runs, full resolution, as {runs, metrics}."""
    ids = _run_ids(session, run_ids)
    return StreamingResponse(
        _export(ids, compare.parse_names(names), "json"), media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{_filename(ids)}.json"'})


def _filename(run_ids: list[int]) -> str:
    return "tunedeck-compare-" + "-".join(map(str, run_ids))


@router.get("/api/runs/{run_id}/health")
def get_run_health(run: RunDep, session: SessionDep) -> list[dict]:
    """Known failure signs in a run's metrics, each with a one-line explanation."""
    logged = compare_series.metric_names(session, runs=[run])[run.id]
    wanted = [name for name in compare.HEALTH_METRICS if name in logged]
    series = compare_series.read_raw(session, run_id=run.id, names=wanted)
    # An unreachable tracker (MLflow, TensorBoard) is a warning here too: app/domain/trackers.py.
    return [asdict(flag) for flag in health.check_health(series)] + trackers.health_flags(run)


@router.get("/compare", response_class=HTMLResponse, include_in_schema=False)
def compare_page(request: Request, session: SessionDep, runs: str | None = None
                 ) -> HTMLResponse:
    """The compare page; it loads its data from /api/compare."""
    error, status, run_ids = None, 200, []
    if runs:
        try:
            run_ids = compare.parse_run_ids(runs)
            compare.load_runs(session, run_ids=run_ids)
        except (compare.CompareError, compare.RunsNotFound) as exc:
            error, status, run_ids = str(exc), exc.status_code, []
    return templates.TemplateResponse(
        request, "compare/page.html",
        {"run_ids": run_ids, "error": error, "max_runs": compare.MAX_RUNS},
        status_code=status)
