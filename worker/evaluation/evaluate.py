"""One evaluation end to end: held-out rows → base and tuned outputs (or log-probs) → per-example
scores → stored examples and results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import insert, update

from app.core.config import settings
from app.core.db import session_scope
from app.core.storage import store
from app.domain import evaluation_rows as row_tools
from app.domain import scorers as S
from app.domain.hyperparameters import validate_hyperparameters
from app.domain.models import Checkpoint, Dataset, Evaluation, EvaluationExample, Run
from app.domain.progress import record_progress
from app.domain.rewards import ReasoningTags
from app.domain.training_rows import read_rows
from worker.evaluation.generate import Models, Sampling, answer_logprobs, generate, load_models
from worker.evaluation.results import summarise

DEFAULT_LIMIT = 64


@dataclass
class Job:
    id: int
    strategy: str
    base_model: str
    split: str
    dataset_path: Any
    dataset_format: str
    hyperparameters: dict[str, Any]
    run_id: int | None
    step: int | None
    scorers: list[S.Scorer]
    params: dict[str, Any]


def load_job(evaluation_id: int) -> Job:
    with session_scope() as session:
        evaluation = session.get(Evaluation, evaluation_id)
        if evaluation is None:  # claimed by the task, so only a delete since then gets here
            raise LookupError(f"evaluation {evaluation_id} not found")
        dataset = session.get(Dataset, evaluation.dataset_id)
        if dataset is None:
            raise LookupError(f"dataset {evaluation.dataset_id} not found")
        run = session.get(Run, evaluation.run_id) if evaluation.run_id else None
        hyperparameters: dict[str, Any] = {}
        if run is not None:
            valid = validate_hyperparameters(run.strategy, run.hyperparameters)
            hyperparameters = valid.model_dump()
        return Job(
            id=evaluation.id, strategy=evaluation.strategy, base_model=evaluation.base_model,
            split=evaluation.split, dataset_path=store.local_path(dataset.storage_key),
            dataset_format=dataset.format, hyperparameters=hyperparameters,
            run_id=evaluation.run_id, step=evaluation.checkpoint_step,
            scorers=[S.Scorer(**{k: v for k, v in s.items() if k != "params"},
                              params=s.get("params")) for s in evaluation.scorers],
            params=dict(evaluation.params or {}),
        )


def adapter_dir(run_id: int, step: int):  # type: ignore[no-untyped-def]
    with session_scope() as session:
        checkpoint = session.query(Checkpoint).filter_by(run_id=run_id, step=step).one_or_none()
        if checkpoint is None:
            raise LookupError(f"run {run_id} has no checkpoint at step {step}")
        return store.local_path(checkpoint.storage_key)


def set_progress(evaluation_id: int, fraction: float) -> None:
    with session_scope() as session:
        record_progress(session, Evaluation, evaluation_id, progress=round(min(1.0, fraction), 4))


def run_evaluation(evaluation_id: int) -> None:
    job = load_job(evaluation_id)
    # A checkpoint step is only ever stored together with its run.
    adapter = adapter_dir(cast(int, job.run_id), job.step) if job.step is not None else None
    models = load_models(job.base_model, adapter, cache_dir=settings.model_cache_dir)
    rows = select_rows(job, models.tokenizer)
    parts = [row_tools.example_parts(r, dataset_format=job.dataset_format) for r in rows]
    sides = ["base", "tuned"] if models.has_adapter else ["base"]
    scoring = {"sft": score_sft, "grpo": score_grpo, "dpo": score_dpo}[job.strategy]
    units = {"done": 0, "total": len(sides) * len(rows) * (2 if job.strategy != "grpo" else 1)}

    def advance(count: int) -> None:
        units["done"] += count
        set_progress(evaluation_id, units["done"] / max(1, units["total"]))

    outputs, scores, extra = {}, {}, []
    for side in sides:
        with models.use(side) as model:
            outputs[side], scores[side], extra = scoring(job, model, models, rows, parts, advance)
    missing = [None] * len(rows)
    tuned_outputs, tuned_scores = outputs.get("tuned", missing), scores.get("tuned", missing)
    examples = [
        {"evaluation_id": job.id, "index": i, "prompt": row_tools.text_of(p["prompt"]),
         "reference": row_tools.text_of(p["chosen"] if p["reference"] is None else p["reference"])
         or None, "base_output": outputs["base"][i], "tuned_output": tuned_outputs[i],
         "base_scores": scores["base"][i], "tuned_scores": tuned_scores[i] or {}}
        for i, p in enumerate(parts)
    ]
    results = summarise(job.scorers, scores["base"], scores.get("tuned"), strategy=job.strategy,
                        extra_scores=extra)
    with session_scope() as session:
        if examples:
            session.execute(insert(EvaluationExample), examples)
        session.execute(update(Evaluation).where(Evaluation.id == job.id)
                        .values(results=results, progress=1.0))


def select_rows(job: Job, tokenizer: Any) -> list[dict[str, Any]]:
    raw = read_rows(job.dataset_path)
    options = {"strategy": job.strategy, "dataset_format": job.dataset_format,
               "hyperparameters": job.hyperparameters, "tokenizer": tokenizer}
    if job.split == "eval":
        chosen = row_tools.held_out_rows(raw, **options)
    else:
        chosen = row_tools.prepare_rows(raw, **options)
    return chosen[: int(job.params.get("limit") or DEFAULT_LIMIT)]


def score_sft(job: Job, model: Any, models: Models, rows, parts, advance):  # type: ignore[no-untyped-def]
    names = {s.name for s in job.scorers}
    prompts = [p["prompt"] for p in parts]
    references = [p["reference"] for p in parts]
    outputs = generate(model, models.tokenizer, prompts, sampling(job), on_batch=None)
    advance(len(rows))
    scores: list[dict[str, float]] = [{} for _ in rows]
    reference_texts = [row_tools.text_of(r) for r in references]
    for entry, output, reference in zip(scores, outputs, reference_texts, strict=True):
        if "exact_match" in names:
            entry["exact_match"] = S.exact_match(output, reference)
        if "normalized_match" in names:
            entry["normalized_match"] = S.normalized_match(output, reference)
    if "loss" in names:
        scorable = [i for i, r in enumerate(references) if r]
        logprobs = answer_logprobs(model, models.tokenizer, [prompts[i] for i in scorable],
                                   [references[i] for i in scorable])
        for i, (total, count) in zip(scorable, logprobs, strict=True):
            scores[i]["loss"] = S.token_loss(total, count)
    advance(len(rows))
    add_rewards(job, scores, outputs, rows)
    return outputs, scores, []


def score_grpo(job: Job, model: Any, models: Models, rows, parts, advance):  # type: ignore[no-untyped-def]
    prompts = [p["prompt"] for p in parts]
    outputs = generate(model, models.tokenizer, prompts, sampling(job))
    scores: list[dict[str, float]] = [{} for _ in rows]
    add_rewards(job, scores, outputs, rows)
    k = int(job.params.get("samples") or 1)
    extra: list[tuple[str, str, bool]] = []
    if k > 1:  # k sampled completions per prompt: their mean reward and pass@k
        hot = Sampling(max_new_tokens=sampling(job).max_new_tokens,
                       temperature=job.hyperparameters.get("temperature", 0.9) or 0.9,
                       top_p=job.hyperparameters.get("top_p", 1.0))
        repeated = [p for p in prompts for _ in range(k)]
        samples = generate(model, models.tokenizer, repeated, hot)
        totals = S.reward_scores(job.scorers, samples, [r for r in rows for _ in range(k)],
                                   tags=tags(job))
        threshold = float(job.params.get("pass_threshold")
                          or sum(s.weight for s in job.scorers if s.kind == "reward"))
        for i, entry in enumerate(scores):
            values = [t["reward_total"] for t in totals[i * k:(i + 1) * k]]
            entry |= S.sample_summary(values, k=k, pass_threshold=threshold)
        extra = [("sample_mean", f"Mean reward over {k} samples", True),
                 (f"pass@{k}", f"pass@{k} (total ≥ {threshold:g})", True)]
    advance(len(rows))
    return outputs, scores, extra


def score_dpo(job: Job, model: Any, models: Models, rows, parts, advance):  # type: ignore[no-untyped-def]
    prompts = [p["prompt"] for p in parts]
    chosen = answer_logprobs(model, models.tokenizer, prompts, [p["chosen"] for p in parts])
    advance(len(rows))
    rejected = answer_logprobs(model, models.tokenizer, prompts, [p["rejected"] for p in parts])
    advance(len(rows))
    scores = [S.preference_scores(c[0], r[0]) for c, r in zip(chosen, rejected, strict=True)]
    outputs = [f"log p(chosen) = {c[0]:.3f}, log p(rejected) = {r[0]:.3f}"
               for c, r in zip(chosen, rejected, strict=True)]
    return outputs, scores, []


def add_rewards(job: Job, scores, outputs, rows) -> None:  # type: ignore[no-untyped-def]
    if any(s.kind == "reward" for s in job.scorers) or job.strategy == "grpo":
        rewards = S.reward_scores(job.scorers, outputs, rows, tags=tags(job))
        for entry, values in zip(scores, rewards, strict=True):
            entry |= values


def sampling(job: Job) -> Sampling:
    default = job.hyperparameters.get("max_completion_length", 64) if job.strategy == "grpo" else 64
    return Sampling(max_new_tokens=int(job.params.get("max_new_tokens") or default))


def tags(job: Job):  # type: ignore[no-untyped-def]

    hp = job.hyperparameters
    return ReasoningTags(hp.get("reasoning_tag", "reasoning"), hp.get("answer_tag", "answer"))
