"""Optuna sweeps: the next trial asked of a TPE sampler, and the pruning decision for a running
trial, both from a study rebuilt out of TuneDeck's own rows.

Why rebuilt, not stored: Optuna's RDBStorage would keep its own tables (and its own alembic
history) in TuneDeck's database, a second owner of the schema and a second copy of every run's
state and metrics. Instead each call creates an in-memory study (``InMemoryStorage``) and adds one
trial per launched run: its params from ``sweep.trials`` (what was asked), its state from the
run's status (completed → COMPLETE, pruned → PRUNED, queued/running → RUNNING, else FAIL), its
intermediate values from the run's logged target metric per step, and, for a completed run, its
value (the best of that metric, as the sweep page ranks runs). The rows stay the one truth; a
study of a few hundred trials rebuilds in milliseconds.

Determinism: the sampler is seeded with ``sweep.seed + trial number``, so the same seed and the
same history always ask the same next params, while each new trial draws afresh (a sampler
seeded alike on every rebuild would repeat its first random draw).

Callers: ``sweeps.advance`` asks (before it claims the trial index with its conditional UPDATE,
so a lost claim just asks again); the worker's reporter calls ``prune_if_behind`` when a run logs
its sweep's metric, and a pruned run stops through the cancel flag and ends ``pruned``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.pruners import BasePruner, MedianPruner, NopPruner, SuccessiveHalvingPruner
from optuna.samplers import TPESampler
from optuna.trial import TrialState, create_trial
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.sql import update_one
from app.domain import metrics
from app.domain.models import Run, RunStatus, Sweep

optuna.logging.set_verbosity(optuna.logging.WARNING)

PRIMITIVE = (type(None), bool, int, float, str)
STATES = {RunStatus.completed: TrialState.COMPLETE, RunStatus.pruned: TrialState.PRUNED,
          RunStatus.queued: TrialState.RUNNING, RunStatus.running: TrialState.RUNNING}
# The key Optuna's successive halving keeps a trial's value at a rung under (system attrs).
RUNG_KEY = "completed_rung_{}"


def distributions(space: dict[str, Any], integers: dict[str, bool]) -> dict[str, BaseDistribution]:
    """The space (already checked by ``sweeps.check_space``) as Optuna distributions: a range is
    a float (or, for an integer field, int) distribution, linear or log; a list is categorical
    (values Optuna cannot hold, such as lists, as their JSON text)."""
    out: dict[str, BaseDistribution] = {}
    for name, spec in space.items():
        if isinstance(spec, dict) and ("low" in spec or "high" in spec):
            log = spec.get("scale", "linear") == "log"
            if integers.get(name, False):
                out[name] = IntDistribution(math.ceil(spec["low"]), math.floor(spec["high"]),
                                            log=log)
            else:
                out[name] = FloatDistribution(float(spec["low"]), float(spec["high"]), log=log)
        else:
            values = spec.get("values") if isinstance(spec, dict) else spec
            out[name] = CategoricalDistribution([_choice(v) for v in values])
    return out


def _choice(value: Any) -> Any:
    return value if isinstance(value, PRIMITIVE) else json.dumps(value, sort_keys=True)


def _value(choice: Any, distribution: BaseDistribution, space_spec: Any) -> Any:
    """A sampled param as the run takes it (a JSON-text choice back to its list or object)."""
    if isinstance(distribution, CategoricalDistribution) and isinstance(choice, str):
        values = space_spec.get("values") if isinstance(space_spec, dict) else space_spec
        for value in values:
            if not isinstance(value, PRIMITIVE) and _choice(value) == choice:
                return value
    return choice


def make_pruner(name: str | None, options: dict[str, Any] | None) -> BasePruner:
    options = options or {}
    if name == "median":
        return MedianPruner(**{"n_startup_trials": 5, **options})
    if name == "successive_halving":
        return SuccessiveHalvingPruner(**options)
    return NopPruner()


def _direction(sweep: Sweep) -> str:
    return "minimize" if sweep.direction == "min" else "maximize"


def build_study(session: Session, sweep: Sweep,
                dists: dict[str, BaseDistribution]) -> tuple[optuna.Study, dict[int, int]]:
    """The sweep's study in memory, one trial per launched run; and run id → trial number."""
    study = optuna.create_study(
        sampler=TPESampler(seed=sweep.seed + len(sweep.trials)),
        pruner=make_pruner(sweep.pruner, sweep.pruner_options), direction=_direction(sweep))
    entries = [t for t in sweep.trials if t.get("run_id") is not None]
    statuses = dict(session.execute(select(Run.id, Run.status).where(
        Run.id.in_([t["run_id"] for t in entries]))).tuples().all())
    series = metrics.read_series(session, run_ids=list(statuses), names=[sweep.metric])
    lower = sweep.direction == "min"
    trials = []
    for entry in entries:
        points = {step: value for step, value in
                  series.get(entry["run_id"], {}).get(sweep.metric, []) if math.isfinite(value)}
        state = STATES.get(statuses.get(entry["run_id"]), TrialState.FAIL)
        if state == TrialState.COMPLETE and not points:
            state = TrialState.FAIL  # finished without ever logging the metric: nothing to learn
        trials.append((entry, state, points))
    rungs = _rung_steps(study.pruner, [max(p) for _, state, p in trials
                                       if state == TrialState.COMPLETE])
    numbers = {}
    for entry, state, points in trials:
        value = None
        if state == TrialState.COMPLETE:
            value = min(points.values()) if lower else max(points.values())
        study.add_trial(create_trial(
            state=state, value=value, distributions=dists,
            params={name: _choice(entry["params"][name]) for name in dists},
            intermediate_values=points if state != TrialState.FAIL else None,
            system_attrs=_rung_values(points, rungs, running=state == TrialState.RUNNING)))
        numbers[entry["run_id"]] = len(numbers)
    return study, numbers


def _rung_steps(pruner: BasePruner, completed_last_steps: list[int]) -> list[int] | None:
    """The steps at which successive halving compares trials, when it is the pruner (``auto``
    min_resource estimated as Optuna does: the longest completed trial's steps / 100)."""
    if not isinstance(pruner, SuccessiveHalvingPruner):
        return None
    # NB: the pruner's own settings; Optuna has no public accessor for them.
    resource = pruner._min_resource
    if resource is None:
        if not completed_last_steps:
            return None
        resource = max(max(completed_last_steps) // 100, 1)
    factor, rate = pruner._reduction_factor, pruner._min_early_stopping_rate
    return [resource * factor ** (rate + rung) for rung in range(32)]


def _rung_values(points: dict[int, float], rungs: list[int] | None, *,
                 running: bool) -> dict[str, float] | None:
    """What successive halving recorded on a trial at each rung it passed (the value reported
    first at or past the rung's step). Optuna keeps these on the trials themselves, so a rebuilt
    study restores them for the others to compete with; a running trial's rung first reached by
    its latest report is left for ``prune`` to judge now, as it would have live."""
    if not rungs or not points:
        return None
    steps = sorted(points)
    recorded = {}
    for rung, rung_step in enumerate(rungs):
        reached = [s for s in steps if s >= rung_step]
        if not reached or (running and reached[0] == steps[-1]):
            break
        recorded[RUNG_KEY.format(rung)] = points[reached[0]]
    return recorded


def ask(session: Session, sweep: Sweep, integers: dict[str, bool]) -> dict[str, Any]:
    """The next trial's params: TPE's answer given every trial so far."""
    dists = distributions(sweep.space, integers)
    study, _ = build_study(session, sweep, dists)
    trial = study.ask(fixed_distributions=dists)
    return {name: _value(trial.params[name], dists[name], sweep.space[name]) for name in dists}


def prune_decision(session: Session, sweep: Sweep, run_id: int,
                   integers: dict[str, bool]) -> str | None:
    """Why the pruner would stop this running trial now, or None to let it go on."""
    if sweep.kind != "optuna" or sweep.pruner in (None, "none"):
        return None
    study, numbers = build_study(session, sweep, distributions(sweep.space, integers))
    if run_id not in numbers:
        return None
    trial = study.get_trials(deepcopy=False)[numbers[run_id]]
    if trial.state != TrialState.RUNNING or trial.last_step is None:
        return None
    if not study.pruner.prune(study, trial):
        return None
    step = trial.last_step
    return (f"pruned by the {sweep.pruner.replace('_', ' ')} pruner at step {step}: "
            f"{sweep.metric} {trial.intermediate_values[step]:.4g} was behind the other trials")


def prune_if_behind(session: Session, *, run_id: int) -> bool:
    """Ask the sweep's pruner about this running trial; when it says stop, set the run's cancel
    flag with the reason (the worker then ends it ``pruned``, its checkpoints kept)."""
    from app.domain.sweeps import field_types

    run = session.get(Run, run_id)
    if run is None or run.sweep_id is None or run.status != RunStatus.running:
        return False
    sweep = session.get(Sweep, run.sweep_id)
    if sweep is None:
        return False
    reason = prune_decision(session, sweep, run_id, field_types(run.strategy))
    if reason is None:
        return False
    moved = update_one(session, Run, Run.id == run_id, Run.status == RunStatus.running,
                       Run.prune_reason.is_(None), prune_reason=reason, cancel_requested=True)
    session.commit()
    return moved
