"""Which rows an evaluation scores, and how a row becomes a prompt and a reference.

Held-out rows are reproduced with the training pipeline's own functions and seed
(``app.domain.training_rows``), so they are exactly the rows the run did not train on, formatted
as it saw them; a playground prompt goes through the same chat-template rule
(``app.domain.prompts``). Pure apart from the tokenizer, which counts prompt tokens and says
whether it has a chat template.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.domain.prompts import (
    as_conversation,
    chat_settings,
    uses_chat_template,
)
from app.domain.rewards.columns import reference_text
from app.domain.training_rows import prepare_rows as training_rows
from app.domain.training_rows import split_rows

Prompt = str | list[dict[str, Any]]


def held_out_rows(
    rows: list[dict[str, Any]], *, strategy: str, dataset_format: str,
    hyperparameters: dict[str, Any], tokenizer: Any,
) -> list[dict[str, Any]]:
    """The run's eval split, as ``load_datasets`` made it; ValueError when it has none."""
    prepared = prepare_rows(rows, strategy=strategy, dataset_format=dataset_format,
                            hyperparameters=hyperparameters, tokenizer=tokenizer)
    eval_split = float(hyperparameters.get("eval_split") or 0)
    if eval_split <= 0:
        raise ValueError("the run has no eval split: choose a dataset to evaluate on")
    _, held_out = split_rows(prepared, eval_split=eval_split, seed=int(hyperparameters["seed"]))
    return held_out


def prepare_rows(
    rows: list[dict[str, Any]], *, strategy: str, dataset_format: str,
    hyperparameters: dict[str, Any], tokenizer: Any,
) -> list[dict[str, Any]]:
    """Rows as the trainer saw them (``app.domain.training_rows.prepare_rows``), from the run's
    stored hyperparameters."""
    chat_template, system_prompt = chat_settings(hyperparameters)
    return training_rows(rows, strategy=strategy, dataset_format=dataset_format,
                         tokenizer=tokenizer, chat_template=chat_template,
                         system_prompt=system_prompt,
                         max_prompt_length=hyperparameters.get("max_prompt_length"),
                         max_length=hyperparameters.get("max_length"))


def example_parts(row: dict[str, Any], *, dataset_format: str) -> dict[str, Any]:
    """{"prompt", "reference", "chosen", "rejected"} of a row; absent parts are None. The
    reference is the completion, else (GRPO rows, see ``grpo_rows``) the answer the rewards
    check; preference rows have chosen instead."""
    if dataset_format == "text":
        raise ValueError("plain text rows have no prompt and reference to evaluate: use "
                         "prompt/completion or messages rows")
    if dataset_format == "messages":
        messages = row["messages"]
        last = messages[-1] if messages else {}
        if last.get("role") != "assistant":
            return {"prompt": messages, "reference": None, "chosen": None, "rejected": None}
        return {"prompt": messages[:-1], "reference": [last], "chosen": None, "rejected": None}
    reference = row.get("completion")
    if reference is None and "chosen" not in row and row.get("answer") is not None:
        reference = reference_text(row["answer"])
    return {"prompt": row.get("prompt", [] if isinstance(row.get("chosen"), list) else ""),
            "reference": reference, "chosen": row.get("chosen"),
            "rejected": row.get("rejected")}


def text_of(value: Prompt | None) -> str:
    """What people read: a string, or a lone user or assistant message (a string prompt or answer
    the chat template wrapped), as is; a longer conversation as "role: content" lines."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if len(value) == 1 and value[0].get("role") in ("user", "assistant"):
        return str(value[0].get("content", ""))
    return "\n".join(f"{m.get('role', '?')}: {m.get('content', '')}" for m in value)


def playground_prompt(
    prompt: str, *, dataset_format: str, hyperparameters: Mapping[str, Any], has_template: bool,
    message_prompts: bool = False,
) -> Prompt:
    """A typed prompt as the run's training formatted its prompts: a conversation (with the run's
    system prompt) when ``uses_chat_template`` says so, else the plain string. Runs on "text"
    rows trained on plain text, so their prompt stays plain. ``message_prompts``: the run's
    dataset holds message-list prompts (``has_message_prompts`` of its rows)."""
    chat_template, system_prompt = chat_settings(hyperparameters)
    if not uses_chat_template(dataset_format=dataset_format, chat_template=chat_template,
                              system_prompt=system_prompt, has_template=has_template,
                              message_prompts=message_prompts):
        return prompt
    row = as_conversation({"prompt": prompt}, dataset_format="prompt_only",
                          system_prompt=system_prompt)
    return row["prompt"]


def row_prompt_text(row: dict[str, Any], dataset_format: str) -> str | None:
    """The user's words of a dataset row, for the playground's "pick a prompt" list."""
    try:
        prompt = example_parts(row, dataset_format=dataset_format)["prompt"]
    except (ValueError, KeyError, TypeError):
        return None
    if isinstance(prompt, list):
        users = [m.get("content") for m in prompt if m.get("role") == "user"]
        return str(users[-1]) if users else None
    return prompt or None
