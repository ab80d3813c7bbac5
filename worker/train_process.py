"""Entry point of the child process that trains one run: ``python -m worker.train_process RUN_ID``.

It imports unsloth before anything from transformers/trl when the run will use it (unsloth patches
them at import), then trains and records the outcome on the run row.
"""

from __future__ import annotations

import logging
import sys
import traceback

from app.core.config import settings
from app.core.db import session_scope
from app.core.storage import store
from app.models import Run, RunStatus
from app.services.runs import transition


def _maybe_import_unsloth(requested: str) -> bool:
    if requested == "trl":
        return False
    try:
        import torch

        if not torch.cuda.is_available():
            return False
        import unsloth  # noqa: F401  (must precede transformers/trl)
    except Exception:  # any import failure means "no unsloth here"
        if requested == "unsloth":
            raise
        return False
    return True


def build_job(run: Run):  # type: ignore[no-untyped-def]
    from worker.training import TrainingJob
    from worker.training.config import validate_hyperparameters

    hyperparameters = validate_hyperparameters(run.strategy, run.hyperparameters).model_dump()
    reward_functions, reward_weights = build_rewards(run, hyperparameters)
    output_key = f"runs/{run.id}"
    output_dir = (
        store.local_path(output_key) if store.is_local else settings.checkpoints_dir / str(run.id)
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    resume_from = None
    if run.resumed_from_step:
        resume_key = f"{output_key}/checkpoint-{run.resumed_from_step}"
        resume_from = store.local_path(resume_key)
    return TrainingJob(
        run_id=run.id,
        strategy=run.strategy,
        base_model=run.base_model,
        dataset_path=store.local_path(run.dataset.storage_key),
        dataset_format=run.dataset.format,
        hyperparameters=hyperparameters,
        output_dir=output_dir,
        reward_functions=reward_functions,
        reward_weights=reward_weights,
        backend=run.requested_backend,
        resume_from=resume_from,
        model_cache_dir=settings.model_cache_dir,
    ), output_key


def build_rewards(run: Run, hyperparameters: dict) -> tuple[list, list[float] | None]:
    if run.strategy != "grpo":
        return [], None
    from worker.rewards import build_reward_functions, validate_reward_config

    return build_reward_functions(validate_reward_config(run.reward_functions))


def main(run_id: int) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with session_scope() as session:
        run = session.get(Run, run_id)
        if run is None or run.status != RunStatus.running:
            return 0
        requested = run.requested_backend
    try:
        _maybe_import_unsloth(requested)
        from worker.reporting import DbReporter
        from worker.training.backends import train

        with session_scope() as session:
            run = session.get(Run, run_id)
            job, output_key = build_job(run)
        reporter = DbReporter(run_id=run_id, store=store, checkpoint_prefix=output_key)
        result = train(job, reporter)
        reporter.flush()
    except Exception as exc:  # the run records why; the worker stays up
        traceback.print_exc()
        with session_scope() as session:
            transition(session, run_id=run_id, to=RunStatus.failed,
                       error=f"{type(exc).__name__}: {exc}")
        return 0
    with session_scope() as session:
        status = RunStatus.cancelled if result.stopped else RunStatus.completed
        transition(session, run_id=run_id, to=status, backend=result.backend, device=result.device)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
