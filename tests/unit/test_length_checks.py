"""Launch refuses length settings under which training would drop every row, judged from the
dataset's upload statistics (app.services.jobs.length_checks)."""

from __future__ import annotations

from app.domain.catalogue import CATALOGUE_KEYS
from app.services.jobs.length_checks import STATS_TOKENIZER_MODELS, prompt_length_problem


def stats(raw_min: int, templated_min: int | None = None) -> dict:
    def summary(low: int) -> dict:
        return {"tokens": {"min": low, "mean": low + 5.0, "median": low + 4.0,
                           "p95": low + 20.0, "max": low + 30}}

    result: dict = {"num_rows": 10, "fields": {"prompt": summary(raw_min)}}
    if templated_min is not None:
        result["templated_prompt"] = summary(templated_min)
    return result


def problem(strategy="sft", dataset_format="prompt_completion", base_model="tiny-random-llama",
            stats_=None, **hyperparameters):
    return prompt_length_problem(
        strategy=strategy, base_model=base_model, dataset_format=dataset_format,
        stats=stats_ if stats_ is not None else stats(10, 40),
        hyperparameters={"chat_template": "auto", "system_prompt": None, **hyperparameters})


def test_stats_tokenizer_models_are_catalogue_models():
    assert STATS_TOKENIZER_MODELS <= CATALOGUE_KEYS


def test_sft_max_length_filled_by_every_templated_prompt_names_both_fixes():
    message = problem(max_length=40)
    assert message == (
        "hyperparameters.max_length: every prompt fills max_length = 40 tokens (the shortest is "
        "40 tokens with the chat template), so no completion token is left to train on: raise "
        "max_length above 40 or set chat_template to 'off' (the shortest prompt is then 10 "
        "tokens)")
    assert problem(max_length=41) is None  # one completion token fits after the shortest prompt


def test_chat_template_off_counts_raw_prompts():
    assert problem(max_length=16, chat_template="off") is None
    message = problem(max_length=10, chat_template="off")
    assert message is not None and "the shortest is 10 tokens)" in message
    assert "chat_template" not in message


def test_grpo_and_dpo_keep_prompts_of_exactly_max_prompt_length():
    assert problem("grpo", "prompt_only", max_prompt_length=40) is None
    message = problem("grpo", "prompt_only", max_prompt_length=39)
    assert message is not None and message.startswith(
        "hyperparameters.max_prompt_length: every prompt is longer than max_prompt_length = 39")
    assert "raise max_prompt_length to at least 40 or set chat_template to 'off'" in message
    assert problem("dpo", "preference", max_prompt_length=39) is not None
    assert problem("dpo", "preference", max_prompt_length=None) is None  # DPO keeps every prompt


def test_conversations_always_use_the_template_so_off_is_no_fix():
    message = problem("sft", "conversational_prompt_completion", max_length=20, chat_template="off")
    assert message is not None and "40 tokens with the chat template" in message
    assert "set chat_template" not in message


def test_system_prompt_or_old_stats_fall_back_to_the_raw_lower_bound():
    # The system turn adds tokens the stats never counted: only the raw minimum is safe.
    assert problem(max_length=20, system_prompt="Be brief.") is None
    message = problem(max_length=10, system_prompt="Be brief.")
    assert message is not None
    assert "10 tokens even before the chat template and system prompt are added" in message
    assert "set chat_template" not in message
    old = stats(10)  # uploaded before templated_prompt existed
    assert problem(max_length=20, stats_=old) is None
    message = problem(max_length=8, stats_=old)
    assert message is not None and "10 tokens even before the chat template is added" in message


def test_only_some_rows_too_long_is_left_to_training():
    # The shortest fits, the p95 and the longest do not: training drops those with a warning.
    assert problem(max_length=45) is None
    assert problem("grpo", "prompt_only", max_prompt_length=41) is None


def test_not_judged_without_matching_tokenizer_prompt_column_or_stats():
    assert problem(base_model="HuggingFaceTB/SmolLM2-135M-Instruct", max_length=8) is None
    assert problem(base_model="/models/local", max_length=8) is None
    assert problem(dataset_format="messages", max_length=8) is None
    assert problem(dataset_format="text", max_length=8) is None
    assert problem(stats_={}, max_length=8) is None
