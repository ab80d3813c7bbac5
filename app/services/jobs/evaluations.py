"""Evaluations and playground generations: queue a playground request (evaluations are queued
by ``app.domain.evaluations``); read results back (scores, examples sorted and filtered); pick the
best checkpoint by an evaluation score. The scoring itself happens on workers
(worker/evaluation/)."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.domain.evaluations import EvaluationError, check_dataset, resolve_checkpoint
from app.domain.json_values import json_safe
from app.domain.models import (
    Checkpoint,
    Dataset,
    Evaluation,
    EvaluationExample,
    Generation,
    Run,
)
from app.domain.publish import GENERATE, publish
from app.domain.scorers import compare_example

EXAMPLE_FILTERS = ("all", "tuned_worse", "tuned_better", "same")
EXAMPLE_SORTS = ("index", "diff", "-diff")


def dataset_choices(session: Session, *, run: Run) -> list[dict[str, Any]]:
    """The evaluation form's datasets: the run's eval split first (when it has one), then the
    datasets its strategy can be scored on, the one it trained on last and said so."""
    choices: list[dict[str, Any]] = []
    if float((run.hyperparameters or {}).get("eval_split") or 0) > 0:
        choices.append({"value": "", "label": f"Eval split of {run.dataset.name} (held out "
                        "from training)", "training": False})
    others, own = [], []
    for dataset in session.scalars(select(Dataset).order_by(Dataset.id.desc())):
        try:
            check_dataset(dataset, run.strategy)
        except EvaluationError:
            continue
        if dataset.id == run.dataset_id:
            own.append({"value": str(dataset.id), "training": True,
                        "label": f"#{dataset.id} {dataset.name}: rows used in training"})
        else:
            others.append({"value": str(dataset.id), "training": False,
                           "label": f"#{dataset.id} {dataset.name}"})
    return choices + others + own


def list_evaluations(session: Session, *, run_ids: list[int]) -> list[Evaluation]:
    return list(session.scalars(select(Evaluation).where(Evaluation.run_id.in_(run_ids))
                                .order_by(Evaluation.id.desc())))


def examples(
    session: Session, *, evaluation: Evaluation, sort: str = "index", filter: str = "all",
    limit: int = 200, offset: int = 0,
) -> tuple[int, list[dict[str, Any]]]:
    """(matching count, page) of an evaluation's examples, each with its verdict on the primary
    score. ``filter`` is one of EXAMPLE_FILTERS; ``sort`` one of EXAMPLE_SORTS ("diff": tuned
    worst first)."""
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
    top_p: float, max_new_tokens: int, greedy: bool = False,
) -> Generation:
    """Queue a playground request: the base model and the adapter answer the same prompt."""
    step = resolve_checkpoint(session, run=run, which=checkpoint).step
    if not prompt.strip():
        raise EvaluationError("prompt is empty: type something for the models to answer")
    generation = Generation(run_id=run.id, checkpoint_step=step, prompt=prompt,
                            params={"temperature": 0.0 if greedy else temperature,
                                    "top_p": 1.0 if greedy else top_p, "greedy": greedy,
                                    "max_new_tokens": max_new_tokens})
    session.add(generation)
    session.commit()
    publish(GENERATE, generation.id, queue=run.queue)
    return generation
