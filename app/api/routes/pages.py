"""HTML pages (Jinja2). Pages read through the same services as the API; forms post via fetch."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from app.api import page_helpers as helpers
from app.api.deps import SessionDep, StoreDep
from app.api.queue_notice import queue_notice
from app.api.templating import templates
from app.core.config import settings
from app.core.numbers import parse_count
from app.core.paths import DEMO_DATA_DIR
from app.domain import workers
from app.domain.datasets.formats import DatasetError
from app.domain.models import Checkpoint, Dataset, DatasetStatus, Run, RunStatus, utcnow
from app.domain.sweeps import LOGGED_METRICS
from app.services.datasets import records as dataset_service
from app.services.jobs import clone, launch, launch_fit, run_list
from app.services.jobs import evaluations as evaluation_service
from app.services.jobs import runs as run_service

router = APIRouter(include_in_schema=False)

RUN_FILTER_STATUSES = tuple(status.value for status in RunStatus)
DEMO_FILE = "sft_demo.jsonl"
DEMO_NAME = "SFT demo"
# ?kind= → (file, dataset name); "grpo" is arithmetic prompts with answers for reward functions.
DEMOS = {"sft": (DEMO_FILE, DEMO_NAME), "grpo": ("grpo_arithmetic.jsonl", "GRPO arithmetic demo"),
         "dpo": ("dpo_demo.jsonl", "DPO preference demo")}
PREVIEW_PAGE = 20  # rows per page of a dataset's preview
# Looked up by code so that a link cannot put arbitrary text on the page.
DEMO_ERRORS = {
    "missing": f"The demo dataset ({DEMO_FILE}) is not part of this installation: upload a file "
               "of your own instead.",
}


def _page(request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def _not_found(request: Request, what: str) -> HTMLResponse:
    return _page(request, "not_found.html", status_code=404, what=what)


@router.get("/")
def index() -> RedirectResponse:
    return RedirectResponse("/runs", status_code=303)


@router.get("/datasets", response_class=HTMLResponse)
def datasets_page(request: Request, session: SessionDep, demo: str | None = None
                  ) -> HTMLResponse:
    return _page(request, "datasets/list.html", datasets=dataset_service.list_datasets(session),
                 demo_error=DEMO_ERRORS.get(demo or ""), max_upload_mb=settings.max_upload_mb)


@router.post("/datasets/demo")
def load_demo_dataset(request: Request, session: SessionDep, store: StoreDep, kind: str = "sft"
                      ) -> Response:
    demo_file, demo_name = DEMOS.get(kind, DEMOS["sft"])
    path = DEMO_DATA_DIR / demo_file
    if not path.is_file():
        return RedirectResponse("/datasets?demo=missing", status_code=303)
    existing = session.scalar(select(Dataset).where(
        Dataset.name == demo_name, Dataset.original_filename == demo_file).limit(1))
    if existing is not None:  # one click, one demo dataset
        return RedirectResponse(f"/datasets/{existing.id}", status_code=303)
    try:
        dataset = dataset_service.create_dataset(
            session, store=store, upload_path=path, filename=demo_file, name=demo_name)
    except DatasetError as exc:
        return _page(request, "datasets/list.html", status_code=422,
                     datasets=dataset_service.list_datasets(session),
                     max_upload_mb=settings.max_upload_mb,
                     demo_error=f"The demo dataset is invalid: {exc}")
    return RedirectResponse(f"/datasets/{dataset.id}", status_code=303)


@router.get("/datasets/{dataset_id}", response_class=HTMLResponse)
def dataset_page(dataset_id: int, request: Request, session: SessionDep, store: StoreDep,
                 page: int = Query(default=1, ge=1, le=1_000_000)) -> HTMLResponse:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        return _not_found(request, f"Dataset {dataset_id}")
    pages = max(1, -(-dataset.num_rows // PREVIEW_PAGE))
    page = min(page, pages)  # past the end: the last page
    offset = (page - 1) * PREVIEW_PAGE
    preview_error, rows = None, []
    try:
        if dataset.status == DatasetStatus.ready:  # else its rows are not stored yet (or never)
            rows = dataset_service.preview(store, dataset, limit=PREVIEW_PAGE, offset=offset)
    except OSError as exc:  # the stored file went missing or is unreadable
        rows, preview_error = [], f"The stored rows could not be read: {exc}"
    return _page(request, "datasets/detail.html", dataset=dataset, rows=rows,
                 preview_page={"page": page, "pages": pages, "offset": offset},
                 preview_error=preview_error, stats_rows=helpers.stats_rows(dataset.stats),
                 runs=run_service.list_runs(session, dataset_id=dataset.id))


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, session: SessionDep, status: str | None = None,
              strategy: str | None = None, dataset_id: str | None = None, q: str | None = None,
              sweep_id: str | None = None, offset: str | None = None) -> HTMLResponse:
    # Filters as GET /api/runs takes them; unknown values show every run rather than an error.
    filters: dict[str, Any] = {
        "status": status if status in RUN_FILTER_STATUSES else None,
        "strategy": strategy if strategy in ("sft", "grpo", "dpo") else None,
        "dataset_id": parse_count(dataset_id),
        "q": (q or "").strip()[:200] or None,
        "sweep_id": parse_count(sweep_id),
    }
    start = int(offset) if offset and offset.isdigit() and len(offset) < 10 else 0
    cursor = utcnow()  # the page's first poll asks only for what changed after this render
    page = run_list.page_runs(session, filters=run_list.RunFilters(**filters),
                              limit=run_list.DEFAULT_PAGE_SIZE, offset=start)
    runs = launch.runs_public(session, page.runs)
    names = {d.id: d.name for d in dataset_service.list_datasets(session)}
    return _page(request, "runs/list.html", runs=runs, dataset_names=names, filters=filters,
                 statuses=RUN_FILTER_STATUSES, page=page, cursor=cursor.isoformat(),
                 pager=_pager(request, page),
                 poll_query=urlencode({k: v for k, v in filters.items() if v}))


def _pager(request: Request, page: run_list.RunPage) -> dict[str, Any]:
    """What the runs list says under its table: "51–100 of 10000" and the previous/next links,
    which keep the page's filters."""
    def url(offset: int) -> str:
        query = {k: v for k, v in request.query_params.items() if k != "offset" and v}
        if offset:
            query["offset"] = str(offset)
        return "/runs" + (f"?{urlencode(query)}" if query else "")

    last = min(page.offset + len(page.runs), page.total)
    return {
        "first": page.offset + 1 if page.runs else 0, "last": last, "total": page.total,
        "previous": url(max(0, page.offset - page.limit)) if page.offset > 0 else None,
        "next": url(page.offset + page.limit) if last < page.total else None,
    }


@router.get("/runs/new", response_class=HTMLResponse)
def new_run_page(request: Request, session: SessionDep) -> HTMLResponse:
    # Any form field can be pre-filled from the query string (the wizard links here);
    # ?clone={id} starts from that run's whole configuration (the query string still wins).
    prefill = dict(request.query_params)
    source = prefill.pop("clone", "")
    cloned = session.get(Run, int(source)) if source.isdigit() and len(source) < 10 else None
    if cloned is not None:
        prefill = {**clone.form_prefill(cloned), **prefill}
    strategies = {key: {"label": label, "description": description,
                        "fields": helpers.hyperparameter_fields(key)}
                  for key, (label, description) in helpers.FORM_STRATEGIES.items()}
    strategy = prefill.get("strategy") if prefill.get("strategy") in strategies else "sft"
    models = helpers.catalogue()
    base_model = prefill.get("base_model", "")
    datasets = dataset_service.list_datasets(session)
    selected, no_fit = prefill.get("dataset_id", ""), False
    if not selected and datasets:  # the newest dataset that fits, not the newest one
        rewards = launch_fit.reward_names(prefill.get("rewards"))
        suggested = launch_fit.suggest_dataset(datasets, strategy=strategy, rewards=rewards)
        selected, no_fit = (str(suggested.id), False) if suggested else ("", True)
    return _page(request, "runs/new.html", datasets=datasets, selected_dataset=selected,
                 no_fitting_dataset=no_fit,
                 dataset_facts={d.id: launch_fit.dataset_facts(d) for d in datasets},
                 tag_rewards=launch_fit.TAG_REWARDS,
                 prefill=prefill, strategies=strategies, strategy=strategy, models=models,
                 model_keys=[m.key for m in models], base_model=base_model,
                 primary_fields=helpers.PRIMARY_FIELDS, cloned=cloned,
                 sweep_metrics=LOGGED_METRICS, sweep_max_runs=settings.sweep_max_runs)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(run_id: int, request: Request, session: SessionDep) -> HTMLResponse:
    run = session.get(Run, run_id)
    if run is None:
        return _not_found(request, f"Run {run_id}")
    public = launch.run_public(session, run)
    checkpoints = session.scalars(
        select(Checkpoint).where(Checkpoint.run_id == run.id).order_by(Checkpoint.step))
    return _page(request, "runs/detail.html", run=public, dataset=run.dataset,
                 checkpoints=list(checkpoints),
                 queue_notice=queue_notice(public, no_worker=run.status == RunStatus.queued
                                           and run.queue not in workers.live_queues(session)),
                 model_name=helpers.model_label(run.base_model, helpers.catalogue()),
                 reward_descriptions=helpers.reward_descriptions(),
                 eval_datasets=evaluation_service.dataset_choices(session, run=run))
