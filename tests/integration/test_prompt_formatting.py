"""Training, evaluation and the playground format prompts alike, with the tiny test model's real
tokenizer (SmolLM2's, which has a chat template) and the same tokenizer with its template removed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from app.domain import evaluation_rows as row_tools
from app.domain.hyperparameters import validate_hyperparameters
from app.domain.rewards import REWARD_FUNCTIONS
from tests.conftest import MODEL_CACHE
from worker.training import TrainingJob
from worker.training.backends import train
from worker.training.data import load_datasets
from worker.training.models import resolve_model

TINY = "tiny-random-llama"
ROWS = [{"prompt": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(8)]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(resolve_model(TINY, MODEL_CACHE))


@pytest.fixture(scope="module")
def plain_tokenizer():
    plain = AutoTokenizer.from_pretrained(resolve_model(TINY, MODEL_CACHE))
    plain.chat_template = None
    return plain


def grpo_job(tmp_path: Path, **hyperparameters) -> TrainingJob:
    path = tmp_path / "grpo.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in ROWS) + "\n")
    return TrainingJob(run_id=1, strategy="grpo", base_model=TINY, dataset_path=path,
                       dataset_format="prompt_only", output_dir=tmp_path / "run",
                       hyperparameters={"per_device_train_batch_size": 2, "num_generations": 2,
                                        "max_completion_length": 8, **hyperparameters},
                       model_cache_dir=MODEL_CACHE)


def datasets_for(job: TrainingJob, tokenizer):
    hp = validate_hyperparameters(job.strategy, job.hyperparameters)
    train_set, eval_set = load_datasets(job, hp, tokenizer)
    return train_set.to_list(), eval_set.to_list() if eval_set is not None else []


def test_auto_gives_the_trainer_conversations_when_the_tokenizer_has_a_template(
    tmp_path, tokenizer, plain_tokenizer,
):
    assert tokenizer.chat_template
    train_rows, _ = datasets_for(grpo_job(tmp_path), tokenizer)
    first = next(r for r in train_rows if r["answer"] == "0")
    assert first == {"prompt": [{"role": "user", "content": "What is 0 + 0?"}], "answer": "0"}
    plain_rows, _ = datasets_for(grpo_job(tmp_path), plain_tokenizer)
    assert all(isinstance(r["prompt"], str) for r in plain_rows) and plain_rows[0]["answer"]
    off_rows, _ = datasets_for(grpo_job(tmp_path, chat_template="off"), tokenizer)
    assert off_rows == plain_rows
    with pytest.raises(ValueError, match="chat_template is 'on' but this model's tokenizer has no"):
        datasets_for(grpo_job(tmp_path, chat_template="on"), plain_tokenizer)


def test_long_prompts_are_counted_after_the_template_is_applied(tmp_path, tokenizer):
    # The bare question is ~10 tokens; with SmolLM2's template (default system turn) far more.
    bare = len(tokenizer(ROWS[0]["prompt"], add_special_tokens=False)["input_ids"])
    limit = bare + 5
    kept_plain, _ = datasets_for(grpo_job(tmp_path, chat_template="off",
                                          max_prompt_length=limit), tokenizer)
    assert len(kept_plain) == len(ROWS)
    with pytest.raises(ValueError, match="every prompt is longer than max_prompt_length"):
        datasets_for(grpo_job(tmp_path, max_prompt_length=limit), tokenizer)


@pytest.mark.parametrize("stored, legacy", [
    # A run stored before chat_template existed trained its string prompts as strings.
    ({"chat_template": "off"}, True),
    ({"chat_template": "auto"}, False),
    ({"chat_template": "off"}, False),
    ({"chat_template": "on", "system_prompt": "Answer with a number."}, False),
])
def test_evaluation_and_playground_format_prompts_as_training_did(
    tmp_path, tokenizer, stored, legacy,
):
    hyperparameters = {"eval_split": 0.25, "seed": 5, "max_prompt_length": 128, **stored}
    job = grpo_job(tmp_path, **hyperparameters)
    train_rows, eval_rows = datasets_for(job, tokenizer)
    # Evaluation reads the run's stored hyperparameters with defaults filled in (evaluate.load_job).
    run_hp = validate_hyperparameters("grpo", job.hyperparameters).model_dump()
    if legacy:
        run_hp.pop("chat_template")
    held_out = row_tools.held_out_rows(ROWS, strategy="grpo", dataset_format="prompt_only",
                                       hyperparameters=run_hp, tokenizer=tokenizer)
    assert held_out == eval_rows and len(eval_rows) == 2
    typed = ROWS[0]["prompt"]
    playground = row_tools.playground_prompt(typed, dataset_format="prompt_only",
                                             hyperparameters=run_hp, has_template=True)
    trained = next(r for r in train_rows + eval_rows if r["answer"] == ROWS[0]["answer"])
    assert playground == trained["prompt"]
    assert isinstance(playground, str) == (stored.get("chat_template") == "off")


def test_grpo_under_auto_scores_conversational_completions_and_stores_readable_samples(tmp_path):
    from tests.integration.test_training_backend import RecordingReporter

    seen: list = []

    def spy(completions, **kwargs):
        seen.extend(completions)
        return [0.0] * len(completions)

    length = REWARD_FUNCTIONS["length_target"].build({"min_chars": 1, "max_chars": 10_000})
    job = grpo_job(tmp_path, max_steps=1, sample_every_steps=1)
    job.reward_functions = [length, spy]
    reporter = RecordingReporter()
    assert train(job, reporter).final_step == 1
    assert seen and all(isinstance(c, list) and c[-1]["role"] == "assistant" for c in seen)
    # Built-in rewards score a message list exactly as they score its text.
    texts = [c[-1]["content"] for c in seen]
    assert length(completions=seen) == length(completions=texts)
    assert "rewards/length_target/mean" in reporter.metrics[0][1]
    (_, rows), *_ = reporter.sample_calls
    assert rows[0]["prompt"].startswith("What is ") and isinstance(rows[0]["completion"], str)
    assert rows[0]["answer"] == str(2 * int(rows[0]["prompt"].split()[2]))


def sft_job(tmp_path: Path, rows: list[dict], **hyperparameters) -> TrainingJob:
    path = tmp_path / "sft.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return TrainingJob(run_id=1, strategy="sft", base_model=TINY, dataset_path=path,
                       dataset_format="prompt_completion", output_dir=tmp_path / "run",
                       hyperparameters=hyperparameters, model_cache_dir=MODEL_CACHE)


def test_sft_prompts_that_fill_max_length_are_dropped_or_refused_by_name(tmp_path, tokenizer):
    short = [{"prompt": f"Name colour {i}.", "completion": " red"} for i in range(4)]
    templated = row_tools.playground_prompt(short[0]["prompt"], dataset_format="prompt_completion",
                                            hyperparameters={"chat_template": "auto"},
                                            has_template=True)
    length = len(tokenizer(tokenizer.apply_chat_template(
        templated, tokenize=False, add_generation_prompt=True), add_special_tokens=False
    )["input_ids"])
    # Under the template the prompt alone fills max_length: TRL would drop every row silently.
    with pytest.raises(ValueError, match=(
            f"every prompt fills max_length = {length} tokens \\(the shortest is {length} tokens "
            "with the chat template\\).*raise max_length or set chat_template to 'off'")):
        datasets_for(sft_job(tmp_path, short, max_length=length), tokenizer)
    # Without the template the same rows fit, and with room for the completion they all train.
    plain, _ = datasets_for(sft_job(tmp_path, short, max_length=length, chat_template="off"),
                            tokenizer)
    assert len(plain) == 4
    long = {"prompt": "Say it. " * 40, "completion": " ok"}
    kept, _ = datasets_for(sft_job(tmp_path, [*short, long], max_length=length + 8), tokenizer)
    assert len(kept) == 4 and long["prompt"] not in json.dumps(kept)


def test_evaluation_holds_out_the_rows_training_held_out_when_sft_drops_long_prompts(
    tmp_path, tokenizer,
):
    rows = [{"prompt": f"Name colour {i}." + (" Think hard." * 20 if i % 3 == 0 else ""),
             "completion": " red"} for i in range(12)]
    hyperparameters = {"max_length": 48, "eval_split": 0.25, "seed": 3}
    train_rows, eval_rows = datasets_for(sft_job(tmp_path, rows, **hyperparameters), tokenizer)
    assert len(train_rows) + len(eval_rows) == 8  # the four long prompts fill max_length
    stored = validate_hyperparameters("sft", hyperparameters).model_dump()
    held_out = row_tools.held_out_rows(rows, strategy="sft", dataset_format="prompt_completion",
                                       hyperparameters=stored, tokenizer=tokenizer)
    assert held_out == eval_rows
