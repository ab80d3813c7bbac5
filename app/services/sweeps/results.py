"""A sweep as its page and GET /api/sweeps/{id} show it: status counts, each run with the values
it tried and its target metric (final, best, smoothed), ranked, and the best run so far. A pruned
run stopped early, so its numbers are not ranked against runs that trained to the end."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain import metrics
from app.domain.models import Run, RunStatus, Sweep
from app.domain.sweeps import REWARD_PREFIX, total_trials

SMOOTHING_WINDOW = 3


def _tried(run: Run, names: list[str]) -> dict[str, Any]:
    weights = {r["name"]: r.get("weight") for r in run.reward_functions or []}
    return {name: (weights.get(name[len(REWARD_PREFIX):]) if name.startswith(REWARD_PREFIX)
                   else (run.hyperparameters or {}).get(name)) for name in names}


def summary(session: Session, sweep: Sweep) -> dict[str, Any]:
    runs = list(session.scalars(select(Run).where(Run.sweep_id == sweep.id).order_by(Run.id)))
    series = metrics.read_series(session, run_ids=[r.id for r in runs], names=[sweep.metric])
    names = list(sweep.space)
    lower = sweep.direction == "min"
    rows = []
    for run in runs:
        points = [v for _, v in series.get(run.id, {}).get(sweep.metric, []) if math.isfinite(v)]
        window = points[-SMOOTHING_WINDOW:]
        rows.append({
            "id": run.id, "name": run.name, "status": run.status.value, "step": run.step,
            "max_steps": run.max_steps, "error": run.error, "prune_reason": run.prune_reason,
            "params": _tried(run, names),
            "final": points[-1] if points else None,
            "best": (min(points) if lower else max(points)) if points else None,
            "smoothed": sum(window) / len(window) if window else None,
        })
    scored = [r for r in rows if r["best"] is not None and r["status"] != RunStatus.pruned]
    scored.sort(key=lambda r: r["best"] if lower else -r["best"])
    for rank, row in enumerate(scored, start=1):
        row["rank"] = rank
    return {
        "id": sweep.id, "name": sweep.name, "kind": sweep.kind, "status": sweep.status.value,
        "error": sweep.error, "tags": sweep.tags or [], "notes": sweep.notes,
        "metric": sweep.metric, "direction": sweep.direction,
        "concurrency": sweep.concurrency, "continue_on_error": sweep.continue_on_error,
        "space": sweep.space, "base": sweep.base, "total_runs": total_trials(sweep),
        "seed": sweep.seed, "pruner": sweep.pruner, "pruner_options": sweep.pruner_options,
        "launched": sweep.launched, "created_at": sweep.created_at,
        "finished_at": sweep.finished_at,
        "counts": dict(Counter(r["status"] for r in rows)),
        "best_run": scored[0] if scored else None,
        "runs": rows,
    }
