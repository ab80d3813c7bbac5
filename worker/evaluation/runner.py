"""Run one evaluation or playground generation in a child process of the worker:
``python -m worker.evaluation.runner evaluate|generate ID``. The task has already claimed the
row (status running); this records the outcome on it."""

from __future__ import annotations

import logging
import sys
import time
import traceback

from sqlalchemy import update

from app.core.config import settings
from app.core.db import session_scope
from app.core.storage import store
from app.domain import jobs
from app.domain.evaluation_rows import playground_prompt
from app.domain.models import Evaluation, Generation, JobStatus, Run
from app.domain.prompts import has_chat_template, has_message_prompts
from app.domain.training_rows import read_dataset_rows
from worker.evaluation.evaluate import adapter_dir, run_evaluation
from worker.evaluation.generate import Sampling, generate, load_models


def generate_playground(generation_id: int) -> None:
    with session_scope() as session:
        generation = session.get(Generation, generation_id)
        if generation is None:  # claimed by the task, so only a delete since then gets here
            raise LookupError(f"generation {generation_id} not found")
        run = session.get(Run, generation.run_id)
        if run is None:
            raise LookupError(f"run {generation.run_id} not found")
        params, prompt_text = dict(generation.params), generation.prompt
        run_id, step = generation.run_id, generation.checkpoint_step
        base_model, dataset_format = run.base_model, run.dataset.format
        hyperparameters = dict(run.hyperparameters or {})
        # A prompt-only dataset's format does not say whether its prompts are message lists.
        message_prompts = has_message_prompts(read_dataset_rows(store, run.dataset, limit=1))
    models = load_models(base_model, adapter_dir(run_id, step),
                         cache_dir=settings.model_cache_dir)
    # Formatted as the run's training formatted its prompts (chat template, system prompt).
    prompt = playground_prompt(prompt_text, dataset_format=dataset_format,
                               hyperparameters=hyperparameters,
                               has_template=has_chat_template(models.tokenizer),
                               message_prompts=message_prompts)
    sampling = Sampling(max_new_tokens=params.get("max_new_tokens", 128),
                        temperature=params.get("temperature", 0.7), top_p=params.get("top_p", 1.0),
                        seed=params.get("seed", 0))
    # The adapter answers first and is stored at once: the page shows each answer as it lands,
    # with its token counts and how long it took.
    stats: dict[str, dict[str, float]] = {}
    for which in ("tuned", "base"):
        counts: list[tuple[int, int]] = []
        started = time.perf_counter()
        with models.use(which) as model:
            (text,) = generate(model, models.tokenizer, [prompt], sampling, counts=counts)
        (prompt_tokens, new_tokens), = counts
        stats[which] = {"prompt_tokens": prompt_tokens, "new_tokens": new_tokens,
                        "seconds": round(time.perf_counter() - started, 3)}
        with session_scope() as session:
            session.execute(update(Generation).where(Generation.id == generation_id)
                            .values(**{f"{which}_output": text, "answer_stats": dict(stats)}))


def main(kind: str, job_id: int) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    table = {"evaluate": Evaluation, "generate": Generation}[kind]
    try:
        if kind == "evaluate":
            run_evaluation(job_id)
        else:
            generate_playground(job_id)
    except Exception as exc:  # the row records why; the worker stays up
        traceback.print_exc()
        finish(table, job_id, JobStatus.failed, error=f"{type(exc).__name__}: {exc}")
        return 0
    finish(table, job_id, JobStatus.completed)
    return 0


def finish(table, job_id: int, status: JobStatus, **fields) -> bool:  # type: ignore[no-untyped-def]
    """Running → completed/failed, once: a terminal row never changes."""
    with session_scope() as session:
        return jobs.transition(session, table, job_id=job_id, to=status, **fields)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
