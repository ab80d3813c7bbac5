"""Which rows an evaluation scores, and how a row becomes a prompt and a reference.

Held-out rows are reproduced with the training pipeline's own functions and seed
(``worker.training.data``), so they are exactly the rows the run did not train on. Pure apart
from the tokenizer, which only counts prompt tokens.
"""

from __future__ import annotations

from typing import Any

from worker.training.data import (
    check_columns,
    drop_long_prompts,
    split_rows,
    with_system_prompt,
)

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
    """Rows as the trainer saw them: checked, with the run's system prompt, long prompts out."""
    check_columns(rows, strategy=strategy, dataset_format=dataset_format)
    system_prompt = hyperparameters.get("system_prompt")
    if system_prompt and dataset_format != "text":
        rows = [with_system_prompt(r, dataset_format=dataset_format, system_prompt=system_prompt)
                for r in rows]
    max_prompt_length = hyperparameters.get("max_prompt_length")
    if max_prompt_length:
        rows = drop_long_prompts(rows, tokenizer=tokenizer, max_prompt_length=max_prompt_length)
    return rows


def example_parts(row: dict[str, Any], *, dataset_format: str) -> dict[str, Any]:
    """{"prompt", "reference", "chosen", "rejected"} of a row; absent parts are None."""
    if dataset_format == "text":
        raise ValueError("plain text rows have no prompt and reference to evaluate: use "
                         "prompt/completion or messages rows")
    if dataset_format == "messages":
        messages = row["messages"]
        last = messages[-1] if messages else {}
        if last.get("role") != "assistant":
            return {"prompt": messages, "reference": None, "chosen": None, "rejected": None}
        return {"prompt": messages[:-1], "reference": [last], "chosen": None, "rejected": None}
    return {"prompt": row.get("prompt", [] if isinstance(row.get("chosen"), list) else ""),
            "reference": row.get("completion"), "chosen": row.get("chosen"),
            "rejected": row.get("rejected")}


def text_of(value: Prompt | None) -> str:
    """What people read: a string as is; a conversation as "role: content" lines."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if len(value) == 1 and value[0].get("role") == "assistant":
        return str(value[0].get("content", ""))
    return "\n".join(f"{m.get('role', '?')}: {m.get('content', '')}" for m in value)


def playground_prompt(
    prompt: str, *, dataset_format: str, base_model: str, has_chat_template: bool,
    system_prompt: str | None = None,
) -> Prompt:
    """A typed prompt as the model should see it: a conversation (chat template) when the run
    trained on conversations or the model is an instruct model, else the plain string."""
    conversational = dataset_format.startswith("conversational") or dataset_format == "messages"
    instruct = any(word in base_model.lower() for word in ("instruct", "chat", "-it"))
    if not has_chat_template or not (conversational or instruct or system_prompt):
        return prompt
    messages = [{"role": "user", "content": prompt}]
    return [{"role": "system", "content": system_prompt}, *messages] if system_prompt else messages


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
