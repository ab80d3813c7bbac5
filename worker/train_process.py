"""Entry point of the child process that trains one run: ``python -m worker.train_process RUN_ID``.

It imports unsloth before anything from transformers/trl when the run will use it (unsloth patches
them at import), then trains and records the outcome on the run row.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import traceback

from app.core.config import settings
from app.core.db import session_scope
from app.core.storage import store
from app.domain.evaluations import auto_evaluate
from app.domain.hyperparameters import validate_hyperparameters
from app.domain.models import Run, RunStatus
from app.domain.rewards import ReasoningTags, RewardConfigError
from app.domain.rewards.run_rewards import build_run_rewards, validate_run_rewards
from app.domain.run_phases import set_phase
from app.domain.runs import stopped_status, transition
from app.domain.sandbox import CustomRewardError
from worker.distributed import record_rank_error
from worker.training import TrainingJob

PR_SET_PDEATHSIG = 1


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

    # Checked again here: the setting may have been turned off since the run was queued.
    configs = validate_run_rewards(run.reward_functions, allow_custom=settings.allow_custom_rewards)
    tags = ReasoningTags(hyperparameters["reasoning_tag"], hyperparameters["answer_tag"])
    return build_run_rewards(configs, tags=tags)


def failure_message(exc: BaseException) -> str:
    """What the run page shows: a user's own mistake in its words, anything else with its type."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, CustomRewardError | RewardConfigError):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return f"{type(exc).__name__}: {exc}"


def _rank() -> tuple[int, int]:
    """(rank, world size) under torchrun; (0, 1) for a plain child process."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def main(run_id: int) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    rank, world_size = _rank()
    if world_size > 1:  # torchrun's agent is the parent: no rank trains on if it is killed
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        logging.info("run %s: rank %s of %s (pid %s)", run_id, rank, world_size, os.getpid())
    with session_scope() as session:
        run = session.get(Run, run_id)
        if run is None or run.status != RunStatus.running:
            return 0
        requested, base_model = run.requested_backend, run.base_model
    try:
        unsloth_imported = _maybe_import_unsloth(requested)
        # Only now: these import transformers/TRL, which unsloth must patch first.
        from worker.health_watch import watch_health
        from worker.model_sync import share_catalogue_model
        from worker.reporting import DbReporter, RankReporter
        from worker.trackers import with_trackers
        from worker.training.backends import resolve_backend, train

        with session_scope() as session:
            run = session.get(Run, run_id)
            if run is None:  # deleted since it was claimed: recorded as a failure below
                raise LookupError(f"run {run_id} not found")
            # Shown on the run page while it trains; fails fast when this worker cannot run it.
            backend, device = resolve_backend(requested, unsloth_usable=unsloth_imported)
            if rank == 0:
                run.backend, run.device = backend, device
                set_phase(session, run_id, "preparing_model")
        # Workers on other hosts reuse a converted catalogue model through artifact storage.
        share_catalogue_model(base_model, cache_dir=settings.model_cache_dir, store=store)
        with session_scope() as session:
            run = session.get(Run, run_id)
            if run is None:
                raise LookupError(f"run {run_id} not found")
            job, output_key = build_job(run)
            job.backend = backend  # "auto" resolved above, by what this process imported
        # Rank 0 alone reports (and mirrors to trackers, and tells health warnings); the other
        # ranks only follow its cancel.
        inner = watch_health(with_trackers(
            DbReporter(run_id=run_id, store=store, checkpoint_prefix=output_key),
            run_id=run_id, output_dir=job.output_dir, store=store),
            run_id=run_id) if rank == 0 else None
        reporter = RankReporter(inner) if world_size > 1 else inner
        try:
            result = train(job, reporter)
            reporter.flush()
        except BaseException:
            if inner is not None:
                inner.close(ok=False)
            raise
        if inner is not None:
            inner.close(ok=True)
    except Exception as exc:  # the run records why; the worker stays up
        traceback.print_exc()
        if world_size == 1:
            with session_scope() as session:
                transition(session, run_id=run_id, to=RunStatus.failed,
                           error=failure_message(exc))
            return 0
        # Under torchrun the worker records the failure of the rank that failed first (the
        # others fail after it, waiting for it): each says why here, and exits non-zero so that
        # the agent stops the others (worker/distributed.py).
        record_rank_error(settings.checkpoints_dir / str(run_id), rank=rank,
                          world_size=world_size, error=failure_message(exc))
        return 1
    if rank != 0:  # rank 0 records the outcome and starts the evaluation
        return 0
    with session_scope() as session:
        status = stopped_status(session, run_id) if result.stopped else RunStatus.completed
        completed = (
            transition(
                session, run_id=run_id, to=status, backend=result.backend, device=result.device
            )
            and status == RunStatus.completed
        )
    if completed:  # evaluate the best checkpoint on the eval split (see domain/evaluations.py)
        with session_scope() as session:
            auto_evaluate(session, run_id=run_id)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
