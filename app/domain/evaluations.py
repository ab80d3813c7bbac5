"""Queue an evaluation of a run's checkpoint: check the request (checkpoint, dataset, scorers and
their columns), store it queued and hand it to a worker by task name. Shared by the web (the
evaluate form and API) and the worker (a run that completes evaluates its best checkpoint)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import settings
from app.domain import checkpoints as checkpoint_service
from app.domain.dataset_rules import DatasetError, check_format_for_strategy
from app.domain.errors import Invalid, NotFound
from app.domain.models import Checkpoint, Dataset, Evaluation, Run, utcnow
from app.domain.publish import EVALUATE, publish
from app.domain.rewards.columns import reward_columns
from app.domain.scorers import Scorer, ScorerError, resolve_scorers

DEFAULT_LIMIT = 64


class EvaluationError(Invalid):
    """A request that cannot work (HTTP 422); the message says what to change."""


def auto_evaluate_enabled() -> bool:
    # Proposed setting TUNEDECK_AUTO_EVALUATE (config.py is not ours to edit): on by default.
    return bool(getattr(settings, "auto_evaluate", True))


def resolve_checkpoint(session: Session, *, run: Run, which: int | str) -> Checkpoint:
    if which == "best":
        checkpoint = checkpoint_service.best_checkpoint(session, run_id=run.id)
        if checkpoint is None:
            raise EvaluationError(f"run {run.id} has no checkpoint yet: nothing to evaluate")
        return checkpoint
    checkpoint = session.scalar(
        select(Checkpoint).where(Checkpoint.run_id == run.id, Checkpoint.step == which))
    if checkpoint is None:
        steps = [c.step for c in run.checkpoints]
        raise EvaluationError(f"run {run.id} has no checkpoint at step {which}"
                              + (f" (it has {', '.join(map(str, steps))})" if steps else ""))
    return checkpoint


def create_evaluation(
    session: Session, *, run: Run, checkpoint: int | str = "best", dataset_id: int | None = None,
    scorers: list | None = None, limit: int | None = None, samples: int | None = None,
    max_new_tokens: int | None = None, reason: str = "requested",
) -> Evaluation:
    """Queue an evaluation of one of the run's checkpoints against its base model."""
    step = resolve_checkpoint(session, run=run, which=checkpoint).step
    dataset: Dataset | None
    if dataset_id is None:
        if not float((run.hyperparameters or {}).get("eval_split") or 0) > 0:
            raise EvaluationError(f"run {run.id} has no eval split: choose a dataset_id to "
                                  "evaluate on")
        dataset, split = run.dataset, "eval"
    else:
        dataset = session.get(Dataset, dataset_id)
        if dataset is None:
            raise NotFound(f"dataset {dataset_id} not found")
        split = "dataset"
    check_dataset(dataset, run.strategy)
    if samples and run.strategy != "grpo":
        raise EvaluationError("samples (k completions per prompt, pass@k) apply to GRPO runs only")
    try:
        chosen = resolve_scorers(run.strategy, scorers, run.reward_functions or [])
    except ScorerError as exc:
        raise EvaluationError(f"scorers: {exc}") from exc
    if problem := missing_reward_column(run=run, dataset=dataset, scorers=chosen):
        raise EvaluationError(problem)
    params = {"limit": limit or DEFAULT_LIMIT, "reason": reason,
              "rows_used_in_training": rows_used_in_training(run=run, dataset=dataset,
                                                             split=split)}
    params |= {k: v for k, v in (("samples", samples), ("max_new_tokens", max_new_tokens)) if v}
    evaluation = Evaluation(run_id=run.id, checkpoint_step=step, base_model=run.base_model,
                            strategy=run.strategy, dataset_id=dataset.id, split=split,
                            scorers=[s.as_dict() for s in chosen], params=params,
                            published_at=utcnow(), publish_count=1)
    session.add(evaluation)
    session.commit()
    publish_evaluation(session, evaluation)
    return evaluation


def rows_used_in_training(*, run: Run, dataset: Dataset, split: str) -> bool:
    """Whether an evaluation's rows include rows the run trained on: every row of the run's own
    dataset does (its eval split alone is held out)."""
    return split == "dataset" and dataset.id == run.dataset_id


def publish_evaluation(session: Session, evaluation: Evaluation) -> None:
    """Send the evaluation's task to its run's queue (a worker that can load the run's model);
    the reaper calls this again when the message was lost."""
    run = session.get(Run, evaluation.run_id) if evaluation.run_id is not None else None
    publish(EVALUATE, evaluation.id,
            queue=run.queue if run is not None else settings.default_queue)


def check_dataset(dataset: Dataset, strategy: str) -> None:
    try:
        check_format_for_strategy(dataset.format, strategy)
    except DatasetError as exc:
        raise EvaluationError(f"dataset {dataset.id}: {exc}") from exc
    if dataset.format == "text":
        raise EvaluationError(f"dataset {dataset.id} holds plain text rows, with no prompt and "
                              "reference to compare: use prompt/completion or messages rows")


def auto_evaluate(session: Session, *, run_id: int) -> Evaluation | None:
    """After a run completes: evaluate its best checkpoint on its eval split (setting on).

    A sweep's trials are not: the sweep ranks them by its own metric, and an evaluation per
    trial would hold the queue ahead of the next trial (evaluate the best from its page)."""
    run = session.get(Run, run_id)
    if (run is None or not auto_evaluate_enabled() or run.sweep_id is not None
            or not float((run.hyperparameters or {}).get("eval_split") or 0) > 0):
        return None
    try:
        return create_evaluation(session, run=run, checkpoint="best", reason="automatic")
    except EvaluationError:
        return None  # no checkpoint, or a dataset that cannot be evaluated: nothing to do


def reward_column_problem(name: str, column: str, dataset: Dataset, available: list[str]) -> str:
    """Why a reward's column never reaches it, naming the columns that do."""
    columns = ", ".join(available) or "none besides prompt"
    where = f"reward function {name!r} reads column {column!r}"
    if column == "completion" and "answer" in dataset.columns:
        why = (f"but dataset {dataset.name!r} has its own answer column, which GRPO rewards "
               "check instead of the completion")
    elif column == "completion":
        # GRPO samples its own completions: the dataset's is the reference (grpo_rows).
        why = "but GRPO hands a dataset's completion to reward functions as 'answer'"
    elif column == "prompt":
        why = "but reward functions get the prompts on their own, not as a column"
    else:
        why = f"which dataset {dataset.name!r} does not have"
    return f"{where}, {why} (columns rewards receive: {columns})"


def missing_reward_column(*, run: Run, dataset: Dataset, scorers: Sequence[Scorer]) -> str | None:
    """Why a reward scorer of a GRPO run's evaluation on ``dataset`` would not get its column,
    naming the columns rewards receive there; None when every column is there. Only GRPO
    evaluations hand rows to rewards as ``grpo_rows`` (see ``reward_columns``)."""
    if run.strategy != "grpo":
        return None
    available = reward_columns(list(dataset.columns or []))
    for scorer in scorers:
        column = (scorer.params or {}).get("column") if scorer.kind == "reward" else None
        if column and column not in available:
            problem = reward_column_problem(scorer.name, column, dataset, available)
            fix = "evaluate on a dataset with that column"
            if dataset.id != run.dataset_id and float(
                    (run.hyperparameters or {}).get("eval_split") or 0) > 0:
                fix += ", or on the run's eval split"
            return f"dataset {dataset.id}: {problem}: {fix}"
    return None
