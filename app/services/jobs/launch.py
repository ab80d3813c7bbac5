"""Launching a run: check everything a worker would trip over later, then queue it."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.core.config import settings
from app.core.storage import store
from app.domain import checkpoints, notify, placement, run_phases, runs, trackers
from app.domain.catalogue import CATALOGUE
from app.domain.datasets.formats import DatasetError, check_format_for_strategy
from app.domain.errors import Busy, Invalid
from app.domain.evaluations import reward_column_problem
from app.domain.hyperparameters import validate_hyperparameters
from app.domain.models import Dataset, DatasetStatus, Run
from app.domain.rewards import RewardConfigError
from app.domain.rewards.columns import grpo_rows, reward_columns
from app.domain.rewards.run_rewards import validate_run_rewards
from app.domain.sandbox import CustomRewardError
from app.domain.sandbox import dry_run_custom_reward as dry_run
from app.domain.training_rows import read_dataset_rows
from app.schemas import CheckpointPublic, RunCreate, RunPublic
from app.services.jobs import runs as run_service
from app.services.jobs.length_checks import prompt_length_problem

# Dry runs at once: each is a bubblewrap sandbox of its own (never the web process), and a
# request waits for its answer, so a flood of launches must not tie up the server's threads.
DRY_RUNS = threading.BoundedSemaphore(2)
DRY_RUN_WAIT_S = 5
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class LaunchError(Invalid):
    """The run's configuration cannot work; the message says what to change."""


def validate_base_model(name: str) -> None:
    keys = [entry.key if hasattr(entry, "key") else cast(Any, entry)["key"]
            for entry in CATALOGUE]
    if name in keys or HUB_ID.match(name):
        return
    path = Path(name).expanduser()
    if path.is_dir() and (path / "config.json").exists():
        return
    raise LaunchError(
        f"base_model {name!r} is not a catalogue model ({', '.join(keys)}), a local folder with "
        "config.json, or a Hugging Face hub id like 'org/model'"
    )


def context_length_problem(base_model: str, hyperparameters: dict) -> str | None:
    """A length setting beyond what a catalogue model attends to, named as the form shows it."""
    model = next((m for m in CATALOGUE if m.key == base_model), None)
    if model is None:
        return None  # a hub or local model: its config is read on the worker
    limit = model.context_length
    max_length = hyperparameters.get("max_length")
    if max_length and max_length > limit:
        return (f"hyperparameters.max_length: must be at most {limit}, the context length of "
                f"{model.display_name}")
    prompt, completion = (hyperparameters.get("max_prompt_length"),
                          hyperparameters.get("max_completion_length"))
    if prompt and completion and prompt + completion > limit:
        return (f"hyperparameters.max_completion_length: max prompt length + max completion = "
                f"{prompt + completion} must be at most {limit}, the context length of "
                f"{model.display_name}")
    return None


def format_validation_error(prefix: str, exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        error["msg"] = error["msg"].removeprefix("Value error, ")
        parts.append(f"{prefix}.{where}: {error['msg']}" if where else f"{prefix}: {error['msg']}")
    return "; ".join(parts)


def validate_spec(spec: RunCreate, dataset: Dataset) -> dict:
    """Returns the hyperparameters with defaults filled in; raises LaunchError."""
    if dataset.status == DatasetStatus.processing:
        raise LaunchError(f"dataset {dataset.name!r} is still being processed "
                          f"({round(100 * (dataset.progress or 0))}% read): launch once it is "
                          "ready")
    if dataset.status == DatasetStatus.failed:
        raise LaunchError(f"dataset {dataset.name!r} could not be processed ({dataset.error}): "
                          "upload a corrected file")
    try:
        check_format_for_strategy(dataset.format, spec.strategy)
    except DatasetError as exc:
        raise LaunchError(str(exc)) from exc
    try:
        hyperparameters = validate_hyperparameters(spec.strategy, spec.hyperparameters)
    except ValidationError as exc:
        raise LaunchError(format_validation_error("hyperparameters", exc)) from exc
    except ValueError as exc:
        raise LaunchError(f"hyperparameters: {exc}") from exc
    validate_base_model(spec.base_model)
    if problem := context_length_problem(spec.base_model, hyperparameters.model_dump()):
        raise LaunchError(problem)
    if getattr(hyperparameters, "eval_split", 0) > 0 and dataset.num_rows < 2:
        raise LaunchError(f"hyperparameters.eval_split: dataset {dataset.name!r} has one row, and "
                          "an eval split needs at least 2: set it to 0")
    too_long = prompt_length_problem(
        strategy=spec.strategy, base_model=spec.base_model, dataset_format=dataset.format,
        stats=dataset.stats or {}, hyperparameters=hyperparameters.model_dump(),
    )
    if too_long:
        raise LaunchError(too_long)
    if hyperparameters.load_in_4bit and spec.backend == "trl":
        # "auto" may still pick Unsloth on a GPU worker; "trl" never can load 4-bit weights.
        raise LaunchError(
            "hyperparameters.load_in_4bit: 4-bit loading needs the unsloth backend: "
            "use backend 'unsloth' or 'auto', or turn it off"
        )
    for i, url in enumerate(spec.notify_urls or []):
        if problem := notify.url_problem(url):
            raise LaunchError(f"notify_urls.{i}: {problem}")
    if spec.strategy == "grpo":
        validate_rewards(spec, dataset)
    elif spec.reward_functions:
        raise LaunchError(
            "reward_functions apply to GRPO runs only: remove them or use strategy 'grpo'"
        )
    return hyperparameters.model_dump(mode="json")


def checked_rewards(spec: RunCreate) -> list[dict]:
    """The run's reward functions with default params filled in; raises LaunchError."""
    if not spec.reward_functions:
        raise LaunchError("a GRPO run needs at least one reward function, e.g. exact_answer")
    try:
        configs = validate_run_rewards(
            [r.model_dump() for r in spec.reward_functions],
            allow_custom=settings.allow_custom_rewards,
        )
    except RewardConfigError as exc:
        raise LaunchError(f"reward_functions: {exc}") from exc
    return [config.as_dict() for config in configs]


def validate_rewards(spec: RunCreate, dataset: Dataset) -> None:
    available = reward_columns(dataset.columns)
    for reward in checked_rewards(spec):
        column = reward["params"].get("column")
        if column and column not in available:
            raise LaunchError(reward_column_problem(reward["name"], column, dataset, available))
        if reward["name"] == "custom":
            dry_run_custom_reward(reward["params"]["code"], dataset)


def dry_run_custom_reward(code: str, dataset: Dataset) -> None:
    """Call the pasted reward on two dataset rows now, so that a broken one never gets queued.

    The code runs in its own sandbox process with the limits training uses (domain/sandbox.py);
    this request only waits for its answer, for at most the sandbox's deadline."""
    rows = grpo_rows(read_dataset_rows(store, dataset, limit=2))
    if not DRY_RUNS.acquire(timeout=DRY_RUN_WAIT_S):
        raise Busy("reward_functions: custom: other custom rewards are being checked right now; "
                   "launch again in a few seconds")
    try:  # as training will see them: a completion column arrives as "answer"
        dry_run(code, rows)
    except CustomRewardError as exc:
        raise LaunchError(f"reward_functions: custom: {exc} (dry run on 2 dataset rows)") from exc
    finally:
        DRY_RUNS.release()


def validate_placement(session: Session, spec: RunCreate, hyperparameters: dict) -> None:
    """Refuse now a placement that no live worker of the run's queue can give; raises
    LaunchError."""
    distributed = hyperparameters.get("distributed", "ddp")
    if distributed == "fsdp" and spec.backend == "unsloth":
        raise LaunchError("hyperparameters.distributed: the unsloth backend trains on one GPU and "
                          "cannot shard with fsdp: use backend 'trl' or distributed 'ddp'")
    queue = spec.queue or settings.default_queue
    problem = placement.placement_problem(
        num_processes=hyperparameters.get("num_processes", 1),
        num_hosts=hyperparameters.get("num_hosts", 1),
        distributed=distributed,
        queue=queue,
        workers=placement.live_workers(session, lost_after_s=settings.worker_lost_after_s,
                                       queue=queue),
    )
    if problem:
        raise LaunchError(problem)


def launch_run(session: Session, *, dataset: Dataset, spec: RunCreate) -> Run:
    hyperparameters = validate_spec(spec, dataset)
    validate_placement(session, spec, hyperparameters)
    run = run_service.create_run(
        session,
        dataset=dataset,
        strategy=spec.strategy,
        base_model=spec.base_model,
        name=spec.name,
        hyperparameters=hyperparameters,
        reward_functions=checked_rewards(spec) if spec.strategy == "grpo" else [],
        backend=spec.backend,
        queue=spec.queue or settings.default_queue,
        priority=spec.priority,
    )
    if spec.notify_urls is not None:  # its own targets instead of TUNEDECK_NOTIFY_URLS
        run.notify_urls = spec.notify_urls
    run.trackers = trackers.run_trackers(
        spec.trackers.model_dump(mode="json") if spec.trackers is not None else None)
    session.commit()
    runs.enqueue(run)
    return run


def run_public(session: Session, run: Run) -> RunPublic:
    return runs_public(session, [run])[0]


def runs_public(session: Session, rows: Sequence[Run]) -> list[RunPublic]:
    """Runs as the API shows them; the best checkpoints of all of them come in one query."""
    best = checkpoints.best_checkpoints(session, run_ids=[run.id for run in rows])
    listed = []
    for run in rows:
        public = RunPublic.model_validate(run)
        if run.max_steps:
            public.progress = min(1.0, run.step / run.max_steps)
        if phase := run_phases.current_phase(run):
            public.phase, public.phase_label, public.phase_seconds = phase
        public.training_seconds = run_phases.training_seconds(run)
        public.wall_seconds = runs.duration_seconds(run)
        checkpoint = best.get(run.id)
        public.best_checkpoint = CheckpointPublic.model_validate(checkpoint) if checkpoint else None
        listed.append(public)
    return listed
