"""Creating a sweep: the space and metric checked, expanded into trials, and every trial's
configuration validated as a launch would be, before any run is queued."""

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
            raise sweeps.SweepError(f"trial {index + 1} ({shown}): {exc}") from exc
        trials.append({"params": params, "hyperparameters": checked,
                       "reward_functions": rewards})
    sweeps.check_metric(base.strategy, body.metric, body.direction,
                        eval_splits=[t["hyperparameters"].get("eval_split", 0) for t in trials],
                        betas=[t["hyperparameters"].get("beta", 0) for t in trials])
    base_fields = base.model_dump(mode="json", exclude={"hyperparameters", "reward_functions"})
    base_fields["queue"] = base.queue or settings.default_queue
    count = session.query(Sweep).count()
    sweep = Sweep(
        name=body.name or f"sweep-{count + 1}", kind=body.kind, base=base_fields,
        space=body.space, trials=trials, metric=body.metric, direction=body.direction,
        concurrency=body.concurrency, continue_on_error=body.continue_on_error,
    )
    session.add(sweep)
    session.commit()
    sweeps.advance(session, sweep.id)
    session.refresh(sweep)
    return sweep
