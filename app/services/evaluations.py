"""Evaluations and playground generations: validate a request, store it queued, hand it to a
worker; read results back (scores, examples sorted and filtered); pick the best checkpoint by an
evaluation score. The scoring itself happens on workers (worker/evaluation/)."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.config import settings
from app.models import (
    Checkpoint,
    Dataset,
    Evaluation,
    EvaluationExample,
    Generation,
    Run,
    utcnow,
)
from app.services import checkpoints as checkpoint_service
from app.services.dataset_formats import DatasetError, check_format_for_strategy

DEFAULT_LIMIT = 64
EXAMPLE_FILTERS = ("all", "tuned_worse", "tuned_better", "same")
EXAMPLE_SORTS = ("index", "diff", "-diff")


class EvaluationError(ValueError):
    """A request that cannot work (HTTP 422); the message says what to change."""


class NotFound(LookupError):
    """Something the request names does not exist (HTTP 404)."""


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
    from app.services.evaluation_columns import missing_reward_column
    from worker.evaluation.scorers import ScorerError, resolve_scorers

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
    params = {"limit": limit or DEFAULT_LIMIT, "reason": reason}
    params |= {k: v for k, v in (("samples", samples), ("max_new_tokens", max_new_tokens)) if v}
    evaluation = Evaluation(run_id=run.id, checkpoint_step=step, base_model=run.base_model,
                            strategy=run.strategy, dataset_id=dataset.id, split=split,
                            scorers=[s.as_dict() for s in chosen], params=params,
                            published_at=utcnow(), publish_count=1)
    session.add(evaluation)
    session.commit()
    publish_evaluation(session, evaluation)
    return evaluation


def publish_evaluation(session: Session, evaluation: Evaluation) -> None:
    """Send the evaluation's task to its run's queue (a worker that can load the run's model);
    the reaper calls this again when the message was lost."""
    from worker.eval_tasks import evaluate

    run = session.get(Run, evaluation.run_id) if evaluation.run_id is not None else None
    evaluate.apply_async(args=[evaluation.id],
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
    """After a run completes: evaluate its best checkpoint on its eval split (setting on)."""
    run = session.get(Run, run_id)
    if (run is None or not auto_evaluate_enabled()
            or not float((run.hyperparameters or {}).get("eval_split") or 0) > 0):
        return None
    try:
        return create_evaluation(session, run=run, checkpoint="best", reason="automatic")
    except EvaluationError:
        return None  # no checkpoint, or a dataset that cannot be evaluated: nothing to do


def list_evaluations(session: Session, *, run_ids: list[int]) -> list[Evaluation]:
    return list(session.scalars(select(Evaluation).where(Evaluation.run_id.in_(run_ids))
                                .order_by(Evaluation.id.desc())))


def evaluation_public(evaluation: Evaluation) -> dict[str, Any]:
    return {
        "id": evaluation.id, "run_id": evaluation.run_id,
        "checkpoint_step": evaluation.checkpoint_step, "base_model": evaluation.base_model,
        "strategy": evaluation.strategy, "dataset_id": evaluation.dataset_id,
        "split": evaluation.split, "scorers": evaluation.scorers, "params": evaluation.params,
        "status": evaluation.status.value, "error": evaluation.error,
        "progress": evaluation.progress, "results": json_safe(evaluation.results or {}),
        "created_at": evaluation.created_at, "started_at": evaluation.started_at,
        "finished_at": evaluation.finished_at,
    }


def json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def examples(
    session: Session, *, evaluation: Evaluation, sort: str = "index", filter: str = "all",
    limit: int = 200, offset: int = 0,
) -> tuple[int, list[dict[str, Any]]]:
    """(matching count, page) of an evaluation's examples, each with its verdict on the primary
    score. ``filter`` is one of EXAMPLE_FILTERS; ``sort`` one of EXAMPLE_SORTS ("diff": tuned
    worst first)."""
    from worker.evaluation.scorers import compare_example

    results = evaluation.results or {}
    score, higher = results.get("primary"), results.get("primary_higher_is_better", True)
    rows = []
    for example in session.scalars(select(EvaluationExample).where(
            EvaluationExample.evaluation_id == evaluation.id).order_by(EvaluationExample.index)):
        outcome = (compare_example(example.base_scores, example.tuned_scores, score=score,
                                   higher_is_better=higher) if score else "same")
        rows.append((example, outcome, _signed_diff(example, score, higher)))
    if filter != "all":
        wanted = {"tuned_worse": "worse", "tuned_better": "better", "same": "same"}[filter]
        rows = [r for r in rows if r[1] == wanted]
    if sort in ("diff", "-diff"):
        rows.sort(key=lambda r: r[2] if sort == "diff" else -r[2])
    page = rows[offset:offset + limit]
    return len(rows), [_example_public(e, outcome) for e, outcome, _ in page]


def _signed_diff(example: EvaluationExample, score: str | None, higher: bool) -> float:
    """How much better the tuned output is (negative: worse); 0 when not comparable."""
    if score is None:
        return 0.0
    b, t = (example.base_scores or {}).get(score), (example.tuned_scores or {}).get(score)
    if not isinstance(b, int | float) or not isinstance(t, int | float):
        return 0.0
    diff = (t - b) if higher else (b - t)
    return diff if math.isfinite(diff) else 0.0


def _example_public(example: EvaluationExample, outcome: str) -> dict[str, Any]:
    return {"index": example.index, "prompt": example.prompt, "reference": example.reference,
            "base_output": example.base_output, "tuned_output": example.tuned_output,
            "base_scores": json_safe(example.base_scores),
            "tuned_scores": json_safe(example.tuned_scores), "tuned_vs_base": outcome}


def choose_best_checkpoint(session: Session, *, run: Run, score: str) -> Checkpoint:
    """Mark as best the checkpoint whose completed evaluation scores best on ``score``."""
    candidates = []
    for evaluation in list_evaluations(session, run_ids=[run.id]):
        entry = next((s for s in (evaluation.results or {}).get("scores", [])
                      if s["name"] == score), None)
        if (evaluation.status.value == "completed" and evaluation.checkpoint_step is not None
                and entry and entry.get("tuned_mean") is not None):
            sign = 1 if entry["higher_is_better"] else -1
            candidates.append((sign * entry["tuned_mean"], evaluation.checkpoint_step))
    if not candidates:
        raise EvaluationError(f"run {run.id} has no completed evaluation with score {score!r}")
    _, step = max(candidates)  # ties go to the later checkpoint
    checkpoint = resolve_checkpoint(session, run=run, which=step)
    session.execute(update(Checkpoint).where(Checkpoint.run_id == run.id).values(is_best=False))
    session.execute(update(Checkpoint).where(Checkpoint.id == checkpoint.id).values(is_best=True))
    session.commit()
    session.refresh(checkpoint)
    return checkpoint


def create_generation(
    session: Session, *, run: Run, checkpoint: int | str, prompt: str, temperature: float,
    top_p: float, max_new_tokens: int,
) -> Generation:
    """Queue a playground request: the base model and the adapter answer the same prompt."""
    step = resolve_checkpoint(session, run=run, which=checkpoint).step
    if not prompt.strip():
        raise EvaluationError("prompt is empty: type something for the models to answer")
    generation = Generation(run_id=run.id, checkpoint_step=step, prompt=prompt,
                            params={"temperature": temperature, "top_p": top_p,
                                    "max_new_tokens": max_new_tokens})
    session.add(generation)
    session.commit()
    from worker.eval_tasks import generate

    generate.apply_async(args=[generation.id], queue=run.queue)
    return generation
