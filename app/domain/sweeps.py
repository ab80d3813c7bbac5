"""Sweeps: a search space expanded into trials (pure functions, no I/O), and ``advance``, which
launches a sweep's next trials as runs while it has free slots and ends it when they are done.

A search space maps a field to what to try:
- ``[v1, v2]`` or ``{"values": [v1, v2]}``: a list (grid: every combination; random: one of them);
- ``{"low": a, "high": b, "scale": "linear" | "log"}``: a range (random and optuna only).
Fields are the strategy's hyperparameters (``learning_rate``) or a GRPO reward function's weight
(``reward:exact_answer``). Every mistake is an ``Invalid`` naming the field to fix.

Grid and random sweeps are expanded into every trial at creation; an Optuna sweep asks its TPE
sampler for each next trial when a slot frees, and may prune a trial that falls behind
(``sweep_search``, imported only by sweeps that use it).

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
from app.domain.hyperparameters import HYPERPARAMETER_SCHEMAS, validate_hyperparameters
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

KINDS = ("grid", "random", "optuna")
# Optuna's pruners by name, each with the options it takes (see sweep_search.make_pruner).
PRUNERS = {
    "median": {"n_startup_trials": 0, "n_warmup_steps": 0, "interval_steps": 1,
               "n_min_trials": 1},
    "successive_halving": {"min_resource": 1, "reduction_factor": 2,
                           "min_early_stopping_rate": 0, "bootstrap_count": 0},
    "none": {},
}
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


def field_types(strategy: str) -> dict[str, bool]:
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
    fields = field_types(strategy)
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
                                 "random and optuna sweeps")
            _range(name, spec, integer=fields.get(name, False))
        else:
            _values(name, spec)


def check_budget(kind: str, budget: int | None, *, max_runs: int) -> None:
    if budget is None or budget < 1:
        raise SweepError(f"budget: a{'n' if kind == 'optuna' else ''} {kind} sweep needs the "
                         "number of runs to make (1 or more)")
    if budget > max_runs:
        raise SweepError(f"budget: {budget} runs is more than the maximum of {max_runs}")


def check_pruner(kind: str, pruner: str | None, options: dict[str, Any] | None) -> None:
    """A pruner is Optuna's; each option must be one that pruner takes, a whole number at
    least its minimum (successive halving's min_resource may also be "auto")."""
    if pruner is None and not options:
        return
    if kind != "optuna":
        raise SweepError(f"pruner: only optuna sweeps prune trials (this one is {kind})")
    if pruner not in PRUNERS:
        raise SweepError(f"pruner: must be one of {', '.join(PRUNERS)}, not {pruner!r}")
    allowed = PRUNERS[pruner]
    for key, value in (options or {}).items():
        if key not in allowed:
            takes = ", ".join(allowed) if allowed else "no options"
            raise SweepError(f"pruner_options.{key}: the {pruner} pruner takes {takes}")
        if key == "min_resource" and value == "auto":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < allowed[key]:
            raise SweepError(f"pruner_options.{key}: must be a whole number, at least "
                             f"{allowed[key]}")
    if (options or {}).get("bootstrap_count", 0) > 0 and \
            (options or {}).get("min_resource", "auto") == "auto":
        raise SweepError("pruner_options.bootstrap_count: needs a numeric min_resource "
                         "(Optuna cannot estimate it with bootstrap trials)")


def probes(space: dict[str, Any]) -> list[dict[str, Any]]:
    """Param sets that try every listed value and both ends of every range, one field at a time
    (the others at their first value or low end): checked at creation, so that an Optuna sweep,
    whose trials are asked later, fails early on a value no run could take."""
    first = {name: (spec["low"] if _is_range(spec) else _values(name, spec)[0])
             for name, spec in space.items()}
    sets: list[dict[str, Any]] = [first]
    for name, spec in space.items():
        for value in ((spec["low"], spec["high"]) if _is_range(spec)
                      else _values(name, spec)):
            candidate = {**first, name: value}
            if candidate not in sets:
                sets.append(candidate)
    return sets


def total_trials(sweep: Sweep) -> int:
    """How many runs the sweep makes: an Optuna sweep's budget, else its expanded trials."""
    return (sweep.budget or 0) if sweep.kind == "optuna" else len(sweep.trials)


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
    check_budget(kind, budget, max_runs=max_runs)
    assert budget is not None
    fields = field_types(strategy)
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


def _ask(session: Session, sweep: Sweep) -> dict[str, Any]:
    """An Optuna sweep's next trial: params asked of its sampler, applied to the base and
    validated (``error`` set when no run could take them: the trial is recorded as failed)."""
    from app.domain import sweep_search

    base = sweep.base
    params = sweep_search.ask(session, sweep, field_types(base["strategy"]))
    hyperparameters, rewards = apply_params(base.get("hyperparameters") or {},
                                            base.get("reward_functions") or [], params)
    try:
        checked = validate_hyperparameters(base["strategy"], hyperparameters)
    except ValueError as exc:  # a combination the per-value checks at creation could not see
        shown = ", ".join(f"{k}={v}" for k, v in params.items())
        return {"params": params, "hyperparameters": hyperparameters,
                "reward_functions": rewards, "error": f"trial ({shown}): {exc}"}
    return {"params": params, "hyperparameters": checked.model_dump(mode="json"),
            "reward_functions": rewards}


def _launch_next(session: Session, sweep: Sweep) -> Run | None:
    """Insert the run of trial ``sweep.launched`` if this caller claims that index. An Optuna
    trial is asked first and appended to ``sweep.trials`` by the claiming UPDATE itself (with its
    run's id before the commit), so the study rebuilt later matches each run to its params."""
    index = sweep.launched
    asked = sweep.kind == "optuna"
    trial = _ask(session, sweep) if asked else sweep.trials[index]
    claim: dict[str, Any] = {"launched": index + 1}
    if asked:
        claim["trials"] = [*sweep.trials, trial]
    if not update_one(session, Sweep, Sweep.id == sweep.id, Sweep.launched == index,
                      Sweep.status == SweepStatus.running, **claim):
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
    if asked:
        update_one(session, Sweep, Sweep.id == sweep.id,
                   trials=[*sweep.trials, {**trial, "run_id": run.id}])
    session.commit()
    if trial.get("error"):
        transition(session, run_id=run.id, to=RunStatus.failed, error=trial["error"])
        session.refresh(run)
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
        if sweep.launched >= total_trials(sweep):
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
        if run is not None and run.status == RunStatus.queued:
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
