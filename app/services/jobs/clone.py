"""Run again with changes: a run's whole configuration (dataset, model, strategy, hyperparameters,
reward functions, where it runs) as a new launch, with some fields overridden: through the API
(POST /api/runs/{id}/clone) or as the launch form pre-filled (/runs/new?clone={id})."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from app.domain.hyperparameters import HYPERPARAMETER_SCHEMAS
from app.domain.models import Run
from app.schemas import RunClone, RunCreate
from app.services.jobs.launch import LaunchError, format_validation_error

# RunCreate fields read from differently named Run columns ("backend" on a run is the one a
# worker picked; what was asked for is requested_backend).
RUN_COLUMNS = {"backend": "requested_backend"}


def run_config(run: Run) -> dict[str, Any]:
    """``run`` as the RunCreate body that launches it again (every launch field the run keeps,
    so fields added to RunCreate and Run later come along)."""
    config: dict[str, Any] = {}
    for field in RunCreate.model_fields:
        column = RUN_COLUMNS.get(field, field)
        if field != "name" and hasattr(run, column):
            config[field] = getattr(run, column)
    config["hyperparameters"] = dict(run.hyperparameters or {})
    config["reward_functions"] = list(run.reward_functions or [])
    return config


def clone_spec(run: Run, overrides: RunClone) -> RunCreate:
    """The launch of ``run`` with ``overrides``: hyperparameters merge key by key over the run's
    (on a strategy change only those the new strategy has are kept), other fields replace."""
    config = run_config(run)
    changes = {k: v for k, v in overrides.model_dump(exclude_unset=True).items() if v is not None}
    new_hyperparameters = changes.pop("hyperparameters", None) or {}
    config.update(changes)
    hyperparameters = config["hyperparameters"]
    if config["strategy"] != run.strategy:
        schema = HYPERPARAMETER_SCHEMAS.get(config["strategy"])
        known = set(schema.model_fields) if schema else set()
        hyperparameters = {k: v for k, v in hyperparameters.items() if k in known}
        if config["strategy"] != "grpo" and "reward_functions" not in changes:
            config["reward_functions"] = []
    config["hyperparameters"] = {**hyperparameters, **new_hyperparameters}
    try:
        return RunCreate.model_validate(config)
    except ValidationError as exc:
        raise LaunchError(format_validation_error("clone", exc)) from exc


def form_prefill(run: Run) -> dict[str, str]:
    """``run``'s configuration as the launch form's query-string fields (what a link would
    carry), so that /runs/new?clone={id} opens with every field as the run had it."""
    config = run_config(run)
    prefill = {key: _show(value) for key, value in config.items()
               if key not in ("hyperparameters", "reward_functions") and value is not None}
    for key, value in config["hyperparameters"].items():
        if value is not None:
            prefill[key] = _show(value)
    rewards = config["reward_functions"]
    if rewards:
        prefill["rewards"] = ",".join(f"{r['name']}:{r.get('weight', 1)}" for r in rewards)
        prefill["reward_configs"] = json.dumps(rewards)
    return prefill


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)
