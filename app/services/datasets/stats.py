"""Length statistics and display rows for a parsed dataset: pure functions, no I/O.

The tokenizer is injected so tests can count words and production can count real tokens; the
per-row work is one list comprehension per field, everything else is numpy. Prompts are also
measured as the trainer counts them for max_prompt_length (``TEMPLATED_PROMPT``): wrapped in the
chat template, as training does by default (chat_template "auto").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from app.domain.dataset_rules import FORMAT_COLUMNS
from app.domain.prompts import as_conversation
from app.domain.tool_calls import describe_call

# Fast tokenizers are quickest on batches; a bounded batch keeps peak memory flat on 100k rows.
_BATCH = 1024
# The stats key (beside "fields") of the chat-templated prompt lengths; older datasets lack it.
TEMPLATED_PROMPT = "templated_prompt"
# Tool-calling conversations: each whole conversation with its tools through the chat template,
# as SFT tokenizes it (message contents alone miss the calls and the schemas).
TEMPLATED_CONVERSATION = "templated_conversation"


def as_text(value: Any) -> str:
    """The text a field contributes: a string as is, a message list as its contents joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(
            str(m.get("content") or "") if isinstance(m, dict) else str(m) for m in value
        )
    return "" if value is None else str(value)


def length_stats(
    rows: Sequence[dict],
    format: str,
    count_tokens: Callable[[str], int] | None = None,
    *,
    count_tokens_batch: Callable[[list[str]], list[int]] | None = None,
    count_chat_prompts_batch: Callable[[list[list[dict]]], list[int]] | None = None,
) -> dict:
    """Token and character lengths of each text field, plus ``total`` (the longest sequence
    a trainer sees per row: prompt + completion, prompt + the longer of chosen/rejected, or the
    single field).

    Returns ``{"num_rows": n, "fields": {name: {"tokens": summary, "chars": summary}}}`` where a
    summary is ``{"min", "mean", "median", "p95", "max"}``. Message lists count the text of all
    their messages (chat-template tokens are not included). ``count_tokens_batch`` is used when
    given, else ``count_tokens`` is called once per text.

    With ``count_chat_prompts_batch`` (conversations -> token counts of each rendered with the
    assistant turn opened) and a prompt column, ``TEMPLATED_PROMPT`` holds ``{"tokens": summary}``
    of the prompts as the trainer counts them under chat_template "auto"/"on" with no system
    prompt: a string prompt becomes a user message, a message list stays as it is.
    """
    if count_tokens_batch is None:
        if count_tokens is None:
            raise TypeError("length_stats needs count_tokens or count_tokens_batch")
        single = count_tokens

        def count_tokens_batch(texts: list[str]) -> list[int]:
            return [single(text) for text in texts]

    tokens: dict[str, np.ndarray] = {}
    chars: dict[str, np.ndarray] = {}
    for field in FORMAT_COLUMNS[format]:
        texts = [as_text(row.get(field)) for row in rows]
        chars[field] = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        tokens[field] = _batched_counts(texts, count_tokens_batch)

    fields = {
        name: {"tokens": _summary(tokens[name]), "chars": _summary(chars[name])}
        for name in FORMAT_COLUMNS[format]
    }
    fields["total"] = {
        "tokens": _summary(_total(tokens, format)),
        "chars": _summary(_total(chars, format)),
    }
    stats = {"num_rows": len(rows), "fields": fields}
    if count_chat_prompts_batch is not None and "prompt" in FORMAT_COLUMNS[format]:
        stats[TEMPLATED_PROMPT] = {"tokens": _summary(_templated_prompt_tokens(
            rows, count_chat_prompts_batch))}
    return stats


def _templated_prompt_tokens(
    rows: Sequence[dict], count_batch: Callable[[list[list[dict]]], list[int]]
) -> np.ndarray:
    # as_conversation is what training applies to a row's prompt (app.domain.prompts).
    prompts = [as_conversation({"prompt": row.get("prompt") or ""},
                               dataset_format="prompt_only")["prompt"] for row in rows]
    return _batched_counts(prompts, count_batch)


def _batched_counts(items: Sequence[Any], count_batch: Callable[[list], list[int]]) -> np.ndarray:
    """``count_batch`` over ``items`` in bounded batches, as one array in ``items``' order."""
    counts = [
        count
        for start in range(0, len(items), _BATCH)
        for count in count_batch(list(items[start : start + _BATCH]))
    ]
    return np.asarray(counts, dtype=np.int64).reshape(len(items))


def _total(lengths: dict[str, np.ndarray], format: str) -> np.ndarray:
    if "chosen" in lengths:
        return lengths["prompt"] + np.maximum(lengths["chosen"], lengths["rejected"])
    return sum(lengths.values())  # type: ignore[return-value]


def _summary(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {"min": 0, "mean": 0.0, "median": 0.0, "p95": 0.0, "max": 0}
    return {
        "min": int(values.min()),
        "mean": round(float(values.mean()), 2),
        "median": float(np.median(values)),
        "p95": round(float(np.percentile(values, 95)), 2),
        "max": int(values.max()),
    }


def rows_for_preview(rows: Sequence[dict], limit: int, *, max_chars: int = 500) -> list[dict]:
    """The first ``limit`` rows with every value as display text cut to ``max_chars``.

    Message lists read as ``role: content`` lines; the template escapes the HTML.
    """
    return [{key: _display(value, max_chars) for key, value in row.items()} for row in rows[:limit]]


def _message_line(message: dict) -> str:
    """``user: …``; a tool call as ``assistant: → add(a=2, b=3)``; a result with its call id."""
    if message.get("tool_calls"):
        calls = "; ".join(describe_call(c) for c in message["tool_calls"] if isinstance(c, dict))
        content = as_text([message])
        return f"{message['role']}: {content + ' ' if content else ''}→ {calls}"
    if message.get("role") == "tool" and message.get("tool_call_id"):
        return f"tool ({message['tool_call_id']}): {as_text([message])}"
    return f"{message['role']}: {as_text([message])}"


def _display(value: Any, max_chars: int) -> str:
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value
    elif (
        isinstance(value, list)
        and value
        and all(isinstance(m, dict) and "role" in m for m in value)
    ):
        text = "\n".join(_message_line(m) for m in value)
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def summarize_counts(counts: Sequence[int]) -> dict[str, float]:
    return _summary(np.asarray(counts, dtype=np.int64))
