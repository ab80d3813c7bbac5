"""HTML pages (Jinja2). Pages read through the same services as the API; forms post via fetch."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
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
from app.domain.models import Checkpoint, Dataset, Run, RunStatus
from app.services.datasets import records as dataset_service
from app.services.datasets.formats import DatasetError
from app.services.jobs import evaluations as evaluation_service
from app.services.jobs import launch, launch_fit
from app.services.jobs import runs as run_service

router = APIRouter(include_in_schema=False)

RUN_FILTER_STATUSES = ("queued", "running", "completed", "failed", "cancelled")
DEMO_FILE = "sft_demo.jsonl"
DEMO_NAME = "SFT demo"
# ?kind= → (file, dataset name); "grpo" is arithmetic prompts with answers for reward functions.
DEMOS = {"sft": (DEMO_FILE, DEMO_NAME), "grpo": ("grpo_arithmetic.jsonl", "GRPO arithmetic demo")}
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
def dataset_page(dataset_id: int, request: Request, session: SessionDep, store: StoreDep
                 ) -> HTMLResponse:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        return _not_found(request, f"Dataset {dataset_id}")
    preview_error = None
    try:
        rows = dataset_service.preview(store, dataset, limit=20)
    except OSError as exc:  # the stored file went missing or is unreadable
        rows, preview_error = [], f"The stored rows could not be read: {exc}"
    return _page(request, "datasets/detail.html", dataset=dataset, rows=rows,
                 preview_error=preview_error, stats_rows=helpers.stats_rows(dataset.stats),
                 runs=run_service.list_runs(session, dataset_id=dataset.id))


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, session: SessionDep, status: str | None = None,
              strategy: str | None = None, dataset_id: str | None = None) -> HTMLResponse:
    # Filters as GET /api/runs takes them; unknown values show every run rather than an error.
    filters: dict[str, Any] = {
        "status": status if status in RUN_FILTER_STATUSES else None,
        "strategy": strategy if strategy in ("sft", "grpo", "dpo") else None,
        "dataset_id": parse_count(dataset_id),
    }
    runs = launch.runs_public(session, run_service.list_runs(session, **filters))
    names = {d.id: d.name for d in dataset_service.list_datasets(session)}
    return _page(request, "runs/list.html", runs=runs, dataset_names=names, filters=filters,
                 statuses=RUN_FILTER_STATUSES)


@router.get("/runs/new", response_class=HTMLResponse)
def new_run_page(request: Request, session: SessionDep) -> HTMLResponse:
    # Any form field can be pre-filled from the query string (the wizard links here).
    prefill = dict(request.query_params)
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
                 primary_fields=helpers.PRIMARY_FIELDS)


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
