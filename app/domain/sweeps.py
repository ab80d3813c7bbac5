"""Sweeps: a search space expanded into trials (pure functions, no I/O), and ``advance``, which
launches a sweep's next trials as runs while it has free slots and ends it when they are done.

A search space maps a field to what to try:
- ``[v1, v2]`` or ``{"values": [v1, v2]}``: a list (grid: every combination; random: one of them);
- ``{"low": a, "high": b, "scale": "linear" | "log"}``: a range (random only).
Fields are the strategy's hyperparameters (``learning_rate``) or a GRPO reward function's weight
(``reward:exact_answer``). Every mistake is an ``Invalid`` naming the field to fix.

``advance`` is called when a sweep is created, by the worker when one of its runs ends, and by the
reaper's passes (so a lost call only delays the next launch). Each launch claims its trial index
with a conditional UPDATE of ``sweep.launched`` in the same transaction as the run's insert, so
two callers at once never launch the same trial or more than ``concurrency`` runs.
"""

from __future__ import annotations

import difflib
import itertools
import math
import random
from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.sql import transition_row, update_one
from app.domain.errors import Invalid
from app.domain.hyperparameters import HYPERPARAMETER_SCHEMAS
from app.domain.models import (
    SWEEP_TRANSITIONS,
    TERMINAL_STATUSES,
    Run,
    RunStatus,
    Sweep,
    SweepStatus,
    utcnow,
)
from app.domain.runs import enqueue, transition

KINDS = ("grid", "random")
REWARD_PREFIX = "reward:"
# Metrics each strategy logs (eval_* only with an eval split; GRPO's kl only with beta > 0).
LOGGED_METRICS = {
    "sft": ("loss", "eval_loss"),
    "grpo": ("reward", "eval_reward", "kl"),
    "dpo": ("loss", "eval_loss", "rewards/margins", "eval_rewards/margins",
            "rewards/accuracies", "eval_rewards/accuracies"),
}
DIRECTIONS = ("min", "max")


class SweepError(Invalid):
    """The sweep cannot work as asked; the message names the field to change."""


def _is_range(spec: Any) -> bool:
    return isinstance(spec, dict) and ("low" in spec or "high" in spec)


def _values(name: str, spec: Any) -> list[Any]:
    values = spec.get("values") if isinstance(spec, dict) else spec
    if not isinstance(values, list):
        raise SweepError(f"space.{name}: give a list of values, e.g. [1e-4, 3e-4], or a range "
                         '{"low": 1e-5, "high": 1e-3, "scale": "log"}')
    if not values:
        raise SweepError(f"space.{name}: the list of values is empty: give at least one")
    return values


def _range(name: str, spec: dict, *, integer: bool) -> tuple[float, float, str]:
    unknown = set(spec) - {"low", "high", "scale"}
    if unknown:
        raise SweepError(f"space.{name}: unknown key {sorted(unknown)[0]!r}: a range takes low, "
                         "high and scale")
    low, high, scale = spec.get("low"), spec.get("high"), spec.get("scale", "linear")
    for key, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            raise SweepError(f"space.{name}.{key}: must be a finite number")
    assert isinstance(low, int | float) and isinstance(high, int | float)
    if scale not in ("linear", "log"):
        raise SweepError(f"space.{name}.scale: must be 'linear' or 'log', not {scale!r}")
    if low > high:
        raise SweepError(f"space.{name}: the range is inverted (low {low} > high {high}): "
                         "swap them")
    if low == high or (integer and math.floor(high) < math.ceil(low)):
        raise SweepError(f"space.{name}: the range from {low} to {high} is empty: make high "
                         "larger than low, or give the one value as a list")
    if scale == "log" and low <= 0:
        raise SweepError(f"space.{name}: a log range must stay above 0 (low is {low}): use a "
                         "positive low such as 1e-6, or scale 'linear'")
    return float(low), float(high), scale


def _field_names(strategy: str) -> dict[str, bool]:
    """Hyperparameter name -> whether it is an integer, for ``strategy``."""
    schema = HYPERPARAMETER_SCHEMAS[strategy]
    return {name: info.annotation in (int, int | None)
            for name, info in schema.model_fields.items()}


def check_space(strategy: str, kind: str, space: dict[str, Any],
                reward_names: list[str]) -> None:
    if kind not in KINDS:
        raise SweepError(f"kind: must be one of {', '.join(KINDS)}, not {kind!r}")
    if not space:
        raise SweepError("space: name at least one field to vary, e.g. "
                         '{"learning_rate": [1e-4, 3e-4]}')
    fields = _field_names(strategy)
    for name, spec in space.items():
        if name.startswith(REWARD_PREFIX):
            reward = name[len(REWARD_PREFIX):]
            if strategy != "grpo":
                raise SweepError(f"space.{name}: reward weights exist for GRPO runs only")
            if reward not in reward_names:
                raise SweepError(f"space.{name}: the base configuration has no reward function "
                                 f"{reward!r} (it has {', '.join(reward_names) or 'none'})")
        elif name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1)
            hint = f": did you mean {close[0]!r}?" if close else ""
            raise SweepError(f"space.{name}: {strategy.upper()} runs have no such "
                             f"hyperparameter{hint}")
        if _is_range(spec):
            if kind == "grid":
                raise SweepError(f"space.{name}: a grid needs a list of values; ranges are for "
                                 "random sweeps")
            _range(name, spec, integer=fields.get(name, False))
        else:
            _values(name, spec)


def grid_size(space: dict[str, Any]) -> int:
    return math.prod(len(_values(name, spec)) for name, spec in space.items())


def expand(strategy: str, kind: str, space: dict[str, Any], *, budget: int | None,
           max_runs: int, seed: int = 0) -> list[dict[str, Any]]:
    """The trials' parameter sets, one dict (field -> value) per run, in launch order."""
    if kind == "grid":
        size = grid_size(space)
        if size > max_runs:
            raise SweepError(f"space: this grid makes {size} runs, more than the maximum of "
                             f"{max_runs}: drop some values (or raise TUNEDECK_SWEEP_MAX_RUNS)")
        names = list(space)
        combos = itertools.product(*(_values(n, space[n]) for n in names))
        return [dict(zip(names, combo, strict=True)) for combo in combos]
    if budget is None or budget < 1:
        raise SweepError("budget: a random sweep needs the number of runs to make (1 or more)")
    if budget > max_runs:
        raise SweepError(f"budget: {budget} runs is more than the maximum of {max_runs}")
    fields = _field_names(strategy)
    rng = random.Random(seed)
    trials = []
    for _ in range(budget):
        trial = {}
        for name, spec in space.items():
            integer = fields.get(name, False)
            if _is_range(spec):
                low, high, scale = _range(name, spec, integer=integer)
                trial[name] = sample(rng, low, high, scale, integer=integer)
            else:
                trial[name] = rng.choice(_values(name, spec))
        trials.append(trial)
    return trials


def sample(rng: random.Random, low: float, high: float, scale: str, *, integer: bool) -> float:
    if scale == "log":
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        value = rng.uniform(low, high)
    if integer:
        return min(max(round(value), math.ceil(low)), math.floor(high))
    return value


def apply_params(base_hyperparameters: dict, base_rewards: list[dict],
                 params: dict[str, Any]) -> tuple[dict, list[dict]]:
    """A trial's hyperparameters and reward functions: the base with ``params`` set."""
    hyperparameters = {**base_hyperparameters}
    weights = {}
    for name, value in params.items():
        if name.startswith(REWARD_PREFIX):
            weights[name[len(REWARD_PREFIX):]] = value
        else:
            hyperparameters[name] = value
    rewards = [{**r, "weight": weights.get(r["name"], r.get("weight", 1.0))} for r in base_rewards]
    return hyperparameters, rewards


def check_metric(strategy: str, metric: str, direction: str, *, eval_splits: list[float],
                 betas: list[float]) -> None:
    if direction not in DIRECTIONS:
        raise SweepError(f"direction: must be 'min' or 'max', not {direction!r}")
    logged = LOGGED_METRICS.get(strategy, ())
    if metric not in logged:
        raise SweepError(f"metric: {strategy.upper()} runs never log {metric!r}: choose one of "
                         f"{', '.join(logged)}")
    if metric.startswith("eval_") and any(split <= 0 for split in eval_splits):
        raise SweepError(f"metric: {metric} is logged only with an eval split: set "
                         "hyperparameters.eval_split above 0 (e.g. 0.1)")
    if metric == "kl" and any(beta <= 0 for beta in betas):
        raise SweepError("metric: kl is logged only when hyperparameters.beta is above 0")


# -- launching -------------------------------------------------------------------------------

def _active(session: Session, sweep_id: int) -> int:
    return session.scalar(select(func.count(Run.id)).where(
        Run.sweep_id == sweep_id, Run.status.in_((RunStatus.queued, RunStatus.running)))) or 0


def _launch_next(session: Session, sweep: Sweep) -> Run | None:
    """Insert the run of trial ``sweep.launched`` if this caller claims that index."""
    index = sweep.launched
    trial = sweep.trials[index]
    if not update_one(session, Sweep, Sweep.id == sweep.id, Sweep.launched == index,
                      Sweep.status == SweepStatus.running, launched=index + 1):
        session.rollback()
        return None
    base = sweep.base
    hyperparameters = trial["hyperparameters"]
    run = Run(
        name=f"{sweep.name}-{index + 1}", strategy=base["strategy"],
        base_model=base["base_model"], dataset_id=base["dataset_id"],
        hyperparameters=hyperparameters, reward_functions=trial["reward_functions"],
        requested_backend=base.get("backend", "auto"), queue=base["queue"],
        priority=base.get("priority", 0), status=RunStatus.queued, sweep_id=sweep.id,
        published_at=utcnow(), publish_count=1,
        max_steps=(hyperparameters["max_steps"]
                   if (hyperparameters.get("max_steps") or -1) > 0 else None),
    )
    session.add(run)
    session.flush()
    run.queue_position = run.id
    session.commit()
    return run


def advance(session: Session, sweep_id: int) -> Sweep | None:
    """Launch trials while the sweep has free slots; stop it on a failure it does not continue
    past; end it when every trial has run. Safe to call from anywhere, any number of times."""
    for _ in range(100):
        sweep = session.get(Sweep, sweep_id)
        if sweep is None:
            return None
        session.refresh(sweep)
        if sweep.status != SweepStatus.running:
            return sweep
        runs = list(session.execute(select(Run.id, Run.status, Run.error)
                                    .where(Run.sweep_id == sweep_id)))
        failed = [r for r in runs if r.status == RunStatus.failed]
        if failed and not sweep.continue_on_error:
            stop(session, sweep, SweepStatus.failed,
                 f"run #{failed[0].id} failed and the sweep does not continue on errors: "
                 f"{(failed[0].error or '').splitlines()[0] if failed[0].error else 'no error'}")
            return sweep
        active = sum(r.status not in TERMINAL_STATUSES for r in runs)
        if sweep.launched >= len(sweep.trials):
            if active == 0:
                if runs and len(failed) == len(runs):
                    stop(session, sweep, SweepStatus.failed,
                         f"every trial failed; the most common error: {common_error(failed)}")
                else:
                    stop(session, sweep, SweepStatus.completed, None)
            return sweep
        if _active(session, sweep_id) >= sweep.concurrency:
            return sweep
        run = _launch_next(session, sweep)
        if run is not None:
            enqueue(run)
    return session.get(Sweep, sweep_id)


def common_error(failed: list[Any]) -> str:
    firsts = [(r.error or "no error recorded").strip().splitlines()[0] for r in failed]
    text, count = Counter(firsts).most_common(1)[0]
    return f"{text} ({count} of {len(failed)})"


def stop(session: Session, sweep: Sweep, to: SweepStatus, error: str | None) -> bool:
    """End the sweep (completed, failed or cancelled); a failed or cancelled one cancels its
    runs still waiting."""
    moved = transition_row(session, Sweep, row_id=sweep.id, to=to, allowed=SWEEP_TRANSITIONS,
                           error=error, finished_at=utcnow())
    if moved and to in (SweepStatus.failed, SweepStatus.cancelled):
        waiting = session.scalars(select(Run.id).where(Run.sweep_id == sweep.id,
                                                       Run.status == RunStatus.queued))
        for run_id in list(waiting):
            transition(session, run_id=run_id, to=RunStatus.cancelled)
    session.refresh(sweep)
    return moved


def advance_all(session: Session) -> None:
    """The reaper's pass: every running sweep launches what it has room for, ends when done."""
    for sweep_id in list(session.scalars(select(Sweep.id).where(
            Sweep.status == SweepStatus.running))):
        advance(session, sweep_id)


def set_status(session: Session, sweep: Sweep, to: SweepStatus) -> bool:
    """Pause or resume: whether the sweep moved."""
    moved = transition_row(session, Sweep, row_id=sweep.id, to=to, allowed=SWEEP_TRANSITIONS)
    session.refresh(sweep)
    return moved
