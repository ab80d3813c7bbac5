"""Creating a sweep: the space and metric checked, expanded into trials, and every trial's
configuration validated as a launch would be, before any run is queued. An Optuna sweep's trials
are asked as slots free, so every value of its space is validated here instead (``probes``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.core.config import settings
from app.domain import sweeps
from app.domain.errors import NotFound
from app.domain.models import Dataset, Sweep
from app.schemas import RunCreate, SweepCreate
from app.services.jobs import launch


def create_sweep(session: Session, *, body: SweepCreate) -> Sweep:
    base = body.run
    dataset = session.get(Dataset, base.dataset_id)
    if dataset is None:
        raise NotFound(f"run.dataset_id: dataset {base.dataset_id} not found")
    base_rewards = launch.checked_rewards(base) if base.strategy == "grpo" else []
    sweeps.check_space(base.strategy, body.kind, body.space,
                       [r["name"] for r in base_rewards])
    optuna = body.kind == "optuna"
    pruner = (body.pruner or "median") if optuna else body.pruner
    sweeps.check_pruner(body.kind, pruner, body.pruner_options)
    if optuna:
        sweeps.check_budget(body.kind, body.budget, max_runs=settings.sweep_max_runs)
        param_sets = sweeps.probes(body.space)
    else:
        param_sets = sweeps.expand(base.strategy, body.kind, body.space, budget=body.budget,
                                   max_runs=settings.sweep_max_runs, seed=body.seed)
    trials = []
    for index, params in enumerate(param_sets):
        hyperparameters, rewards = sweeps.apply_params(base.hyperparameters, base_rewards,
                                                       params)
        spec = base.model_copy(update={"hyperparameters": hyperparameters,
                                       "reward_functions": rewards})
        spec = RunCreate.model_validate(spec.model_dump())
        try:
            checked = launch.validate_spec(spec, dataset)
        except launch.LaunchError as exc:
            shown = ", ".join(f"{k}={v}" for k, v in params.items())
            which = "values" if optuna else f"trial {index + 1}"
            raise sweeps.SweepError(f"{which} ({shown}): {exc}") from exc
        trials.append({"params": params, "hyperparameters": checked,
                       "reward_functions": rewards})
    sweeps.check_metric(base.strategy, body.metric, body.direction,
                        eval_splits=[t["hyperparameters"].get("eval_split", 0) for t in trials],
                        betas=[t["hyperparameters"].get("beta", 0) for t in trials])
    base_fields = base.model_dump(mode="json", exclude={"hyperparameters", "reward_functions"})
    base_fields["queue"] = base.queue or settings.default_queue
    if optuna:  # each asked trial starts from these (domain/sweeps._ask)
        base_fields.update(hyperparameters=base.hyperparameters, reward_functions=base_rewards)
    count = session.query(Sweep).count()
    sweep = Sweep(
        name=body.name or f"sweep-{count + 1}", kind=body.kind, base=base_fields,
        space=body.space, trials=[] if optuna else trials, metric=body.metric,
        direction=body.direction, concurrency=body.concurrency,
        continue_on_error=body.continue_on_error, seed=body.seed,
        budget=body.budget if optuna else None, pruner=pruner if optuna else None,
        pruner_options=body.pruner_options if optuna else None,
    )
    session.add(sweep)
    session.commit()
    sweeps.advance(session, sweep.id)
    session.refresh(sweep)
    return sweep
