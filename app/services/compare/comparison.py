"""Comparing runs: the payload behind ``GET /api/compare`` and the compare page.

Pure pieces (parsing the run list, summaries, nearest samples) are plain functions; the
``build_comparison`` service reads through ``compare_series`` (downsampled, cached series).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.domain import health, runs
from app.domain.checkpoints import best_checkpoints
from app.domain.errors import Invalid, NotFound
from app.domain.json_values import finite_or_none
from app.domain.models import Checkpoint, Run
from app.services.compare import axes as compare_axes
from app.services.compare import config_diff
from app.services.compare import series as compare_series
from app.services.compare.samples import samples_payload

MAX_RUNS = 20
DEFAULT_MAX_POINTS = 1000
MAX_POINTS_LIMIT = 10_000
# Summary table: the metrics people rank runs by, and which direction is better.
KEY_METRICS = {
    "loss": "lower", "eval_loss": "lower", "reward": "higher", "eval_reward": "higher",
    "rewards/margins": "higher", "rewards/accuracies": "higher",
    "eval_rewards/margins": "higher", "mean_token_accuracy": "higher",
    "eval_mean_token_accuracy": "higher",
}
# What the health rules read (app/domain/health.py); always loaded, charted only if asked.
HEALTH_METRICS = health.METRICS
_RUN_IDS = re.compile(r"^\s*\d{1,9}\s*(,\s*\d{1,9}\s*)*,?\s*$")


class CompareError(Invalid):
    """A malformed request (HTTP 422); the message says what to send instead."""


class RunsNotFound(NotFound):
    """Some requested runs do not exist (HTTP 404)."""

    def __init__(self, run_ids: list[int]) -> None:
        self.run_ids = run_ids
        label = "run" if len(run_ids) == 1 else "runs"
        super().__init__(f"{label} {', '.join(map(str, run_ids))} not found")


def parse_run_ids(text: str | None, *, limit: int = MAX_RUNS) -> list[int]:
    """``"3, 1,3"`` -> ``[3, 1]``: order kept (it sets each run's colour), repeats dropped."""
    if not text or not _RUN_IDS.match(text):
        raise CompareError("run_ids must be run ids separated by commas, e.g. run_ids=1,2")
    ids = list(dict.fromkeys(int(part) for part in text.split(",") if part.strip()))
    if len(ids) > limit:
        raise CompareError(f"compare at most {limit} runs at a time (got {len(ids)}): "
                           "pick fewer runs")
    return ids


def parse_names(text: str | None) -> list[str] | None:
    """``"loss, reward"`` -> ``["loss", "reward"]``; None (all metrics) when empty."""
    names = [name.strip() for name in (text or "").split(",") if name.strip()]
    return list(dict.fromkeys(names)) or None


def summarize(series: Mapping[str, list[tuple[int, float]]]) -> dict[str, dict[str, Any]]:
    """Final and best value of each key metric logged: ``{name: {final, best, mode}}`` with
    ``[step, value]`` pairs. Works on downsampled series: they keep the last point and the
    extremes."""
    out = {}
    for name, mode in KEY_METRICS.items():
        finite = [(s, v) for s, v in series.get(name, []) if math.isfinite(v)]
        if not finite:
            continue
        sign = 1 if mode == "lower" else -1
        # Ties go to the later step, as checkpoints do.
        best = min(finite, key=lambda p: (sign * p[1], -p[0]))
        out[name] = {"final": list(finite[-1]), "best": list(best), "mode": mode}
    return out


def run_config(run: Run) -> dict[str, Any]:
    """What config_diff compares: identity first, then every hyperparameter and reward."""
    return {
        "strategy": run.strategy,
        "base_model": run.base_model,
        "dataset": f"{run.dataset.name} (#{run.dataset_id})",
        "backend": run.backend or run.requested_backend,
        **run.hyperparameters,
        "reward_functions": run.reward_functions or [],
    }


def load_runs(session: Session, *, run_ids: list[int]) -> list[Run]:
    """The runs in the order asked; RunsNotFound lists every missing id."""
    # Datasets in the same read: summaries and the config diff name each run's dataset.
    query = select(Run).where(Run.id.in_(run_ids)).options(selectinload(Run.dataset))
    found = {run.id: run for run in session.scalars(query)}
    missing = [run_id for run_id in run_ids if run_id not in found]
    if missing:
        raise RunsNotFound(missing)
    return [found[run_id] for run_id in run_ids]


def run_summary(run: Run, colour: int, names: list[str],
                series: Mapping[str, list[tuple[int, float]]], best: Checkpoint | None
                ) -> dict[str, Any]:
    return {
        "id": run.id, "name": run.name, "colour": colour, "status": run.status.value,
        "strategy": run.strategy, "base_model": run.base_model, "dataset_id": run.dataset_id,
        "dataset_name": run.dataset.name, "step": run.step, "max_steps": run.max_steps,
        "epoch": run.epoch, "duration_seconds": runs.duration_seconds(run),
        "started_at": _iso(run.started_at), "finished_at": _iso(run.finished_at),
        "url": f"/runs/{run.id}", "metric_names": names,
        "best_checkpoint": None if best is None else {
            "step": best.step, "metric_name": best.metric_name,
            "metric_value": finite_or_none(best.metric_value),
            "download_url": f"/api/runs/{run.id}/checkpoints/{best.step}/download",
        },
        "summary": summarize(series),
    }


def build_comparison(
    session: Session, *, run_ids: list[int], names: list[str] | None = None,
    max_points: int = DEFAULT_MAX_POINTS, sample_step: int | None = None,
    with_health: bool = True,
) -> dict[str, Any]:
    """The compare payload (see the route's docs); raises RunsNotFound.

    ``with_health=False`` leaves out the health flags and the series only they need (the page
    asks for them in a second call, so its charts appear first)."""
    run_list = load_runs(session, run_ids=run_ids)
    logged = compare_series.metric_names(session, runs=run_list)
    wanted = {run_id: [n for n in (names or logged[run_id]) if n in logged[run_id]]
              for run_id in run_ids}
    extra = {"epoch", *KEY_METRICS, *(HEALTH_METRICS if with_health else ())}
    needed = {run_id: sorted({*wanted[run_id], *extra} & set(logged[run_id]))
              for run_id in run_ids}
    series = compare_series.chart_series(session, runs=run_list, names=needed,
                                         max_points=max_points)
    diff = config_diff.config_diff({run.id: run_config(run) for run in run_list},
                                   only_differences=False)
    best = best_checkpoints(session, run_ids=run_ids)
    payload = {
        "runs": [run_summary(run, i, logged[run.id], series[run.id], best.get(run.id))
                 for i, run in enumerate(run_list)],
        "metric_names": sorted({name for names_ in logged.values() for name in names_}),
        "max_points": max_points,
        "metrics": {str(run.id): {name: [[s, finite_or_none(v)] for s, v in series[run.id][name]]
                                  for name in wanted[run.id]} for run in run_list},
        "x": {str(run_id): axes for run_id, axes in
              compare_axes.x_axes(session, runs=run_list, series=series).items()},
        "config_diff": {"rows": config_diff.to_json_safe(diff),
                        "differing": sum(row.differs for row in diff)},
        "samples": samples_payload(session, run_ids=run_ids, step=sample_step),
    }
    if with_health:
        payload["health"] = health_flags(session, runs=run_list, series=series)
    return payload


def health_flags(
    session: Session, *, runs: list[Run], series: Mapping[int, Mapping[str, list]] | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
) -> dict[str, list[dict[str, Any]]]:
    """run_id -> health flags as dicts, read from the chart series (downsampled: min/max per
    bucket keeps the spikes, NaNs and last values the rules look at)."""
    if series is None:
        logged = compare_series.metric_names(session, runs=runs)
        needed = {run.id: [n for n in HEALTH_METRICS if n in logged[run.id]] for run in runs}
        series = compare_series.chart_series(session, runs=runs, names=needed,
                                             max_points=max_points)
    return {str(run.id): [asdict(flag) for flag in health.check_health(dict(series[run.id]))]
            for run in runs}


def _iso(value: Any) -> str | None:
    value = runs.as_utc(value)
    return value.isoformat() if value else None
