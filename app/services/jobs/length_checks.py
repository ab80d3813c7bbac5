"""Length settings that would leave a run no rows, judged at launch from the dataset's upload
statistics instead of failing at training start.

Training drops prompts longer than max_prompt_length (GRPO, DPO) and SFT prompts that fill
max_length (``app.domain.training_rows``); when none are left the run fails. The upload
counted every prompt with the SmolLM2 tokenizer, raw and wrapped in the chat template without a
system prompt (``app.domain.datasets.stats``), so for models with that tokenizer the shortest
prompt says in advance whether any row survives. Only the all-rows case is refused: when some
rows fit, training drops the rest with a warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.domain.dataset_rules import FORMAT_COLUMNS
from app.domain.datasets.stats import TEMPLATED_PROMPT
from app.domain.prompts import chat_settings, uses_chat_template

# Catalogue models whose tokenizer is the one app.domain.datasets.tokens counts with: both are
# built from the SmolLM2 GGUF tokenizer (worker.training.models), which has a chat template. Hub ids
# and local folders may tokenize differently and are not judged.
STATS_TOKENIZER_MODELS = frozenset({"smollm2-135m-instruct", "tiny-random-llama"})


def prompt_length_problem(
    *, strategy: str, base_model: str, dataset_format: str, stats: Mapping[str, Any],
    hyperparameters: Mapping[str, Any],
) -> str | None:
    """What to change when even the shortest prompt is too long for the run's length setting,
    else None (also when the stats or the model's tokenizer cannot say)."""
    if base_model not in STATS_TOKENIZER_MODELS or "prompt" not in FORMAT_COLUMNS.get(
            dataset_format, ()):
        return None
    setting = "max_length" if strategy == "sft" else "max_prompt_length"
    limit = hyperparameters.get(setting)
    if not limit:  # DPO without max_prompt_length keeps every prompt
        return None
    chat_template, system_prompt = chat_settings(hyperparameters)
    raw = _shortest(stats.get("fields", {}).get("prompt"))
    templated = _shortest(stats.get(TEMPLATED_PROMPT))
    wrapped = uses_chat_template(dataset_format=dataset_format, chat_template=chat_template,
                                 system_prompt=None, has_template=True)
    exact = wrapped and templated is not None and not system_prompt
    if exact:
        shortest, length = templated, f"{templated} tokens with the chat template"
    elif wrapped or system_prompt:
        # The template and a system prompt only add tokens: the raw count is a lower bound.
        added = "the chat template and system prompt are" if system_prompt else (
            "the chat template is")
        shortest, length = raw, f"{raw} tokens even before {added} added"
    else:
        shortest, length = raw, f"{raw} tokens"
    if shortest is None or not _too_long(strategy, shortest, limit):
        return None
    if strategy == "sft":
        problem = (f"every prompt fills max_length = {limit} tokens (the shortest is {length}), "
                   "so no completion token is left to train on")
        fix = f"raise max_length above {shortest}"
    else:
        problem = (f"every prompt is longer than max_prompt_length = {limit} tokens (the shortest "
                   f"is {length}), so training would drop every row")
        fix = f"raise max_prompt_length to at least {shortest}"
    off = uses_chat_template(dataset_format=dataset_format, chat_template="off",
                             system_prompt=None, has_template=True)
    if exact and not off and raw is not None and not _too_long(strategy, raw, limit):
        fix += f" or set chat_template to 'off' (the shortest prompt is then {raw} tokens)"
    return f"hyperparameters.{setting}: {problem}: {fix}"


def _too_long(strategy: str, length: int, limit: int) -> bool:
    # SFT needs a completion token after the prompt; GRPO/DPO keep prompts of exactly the limit.
    return length >= limit if strategy == "sft" else length > limit


def _shortest(field: Mapping[str, Any] | None) -> int | None:
    tokens = (field or {}).get("tokens") or {}
    value = tokens.get("min")
    return int(value) if isinstance(value, int | float) else None
