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
_BATCH_CHARS = 256 * 1024
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

    lengths = LengthStats(format, count_tokens_batch=count_tokens_batch,
                          count_chat_prompts_batch=count_chat_prompts_batch)
    for start in range(0, len(rows), _BATCH):
        lengths.add(rows[start : start + _BATCH])
    return lengths.result()


class LengthStats:
    """``length_stats`` over rows that arrive in batches (an upload read as a stream): per row
    only a few integers are kept, and tokens are counted a batch at a time. Without
    ``count_tokens_batch`` only characters are measured (no tokenizer installed)."""

    def __init__(
        self,
        format: str,
        *,
        count_tokens_batch: Callable[[list[str]], list[int]] | None,
        count_chat_prompts_batch: Callable[[list[list[dict]]], list[int]] | None = None,
    ) -> None:
        self.format = format
        self.count_tokens_batch = count_tokens_batch
        self.count_chat_prompts_batch = count_chat_prompts_batch
        self.num_rows = 0
        self._chars: dict[str, list[np.ndarray]] = {f: [] for f in FORMAT_COLUMNS[format]}
        self._tokens: dict[str, list[np.ndarray]] = {f: [] for f in FORMAT_COLUMNS[format]}
        self._templated: list[np.ndarray] = []

    def add(self, rows: Sequence[dict]) -> None:
        """Measure ``rows`` (at most a few thousand at a time: their texts are held at once)."""
        self.num_rows += len(rows)
        for field in FORMAT_COLUMNS[self.format]:
            texts = [as_text(row.get(field)) for row in rows]
            self._chars[field].append(np.fromiter(map(len, texts), dtype=np.int64,
                                                  count=len(texts)))
            if self.count_tokens_batch is not None:
                self._tokens[field].append(_batched_counts(texts, self.count_tokens_batch))
        if self.count_chat_prompts_batch is not None and "prompt" in FORMAT_COLUMNS[self.format]:
            self._templated.append(_templated_prompt_tokens(rows, self.count_chat_prompts_batch))

    def result(self) -> dict:
        chars = {name: _joined(parts) for name, parts in self._chars.items()}
        tokens = ({name: _joined(parts) for name, parts in self._tokens.items()}
                  if self.count_tokens_batch is not None else None)
        fields: dict[str, dict] = {}
        for name in FORMAT_COLUMNS[self.format]:
            fields[name] = {"chars": _summary(chars[name])}
            if tokens is not None:
                fields[name] = {"tokens": _summary(tokens[name]), **fields[name]}
        fields["total"] = {"chars": _summary(_total(chars, self.format))}
        if tokens is not None:
            fields["total"] = {"tokens": _summary(_total(tokens, self.format)),
                               **fields["total"]}
        stats: dict[str, Any] = {"num_rows": self.num_rows, "fields": fields}
        if self.count_chat_prompts_batch is not None and "prompt" in FORMAT_COLUMNS[self.format]:
            stats[TEMPLATED_PROMPT] = {"tokens": _summary(_joined(self._templated))}
        return stats


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _templated_prompt_tokens(
    rows: Sequence[dict], count_batch: Callable[[list[list[dict]]], list[int]]
) -> np.ndarray:
    # as_conversation is what training applies to a row's prompt (app.domain.prompts).
    prompts = [as_conversation({"prompt": row.get("prompt") or ""},
                               dataset_format="prompt_only")["prompt"] for row in rows]
    return _batched_counts(prompts, count_batch)


def _batched_counts(items: Sequence[Any], count_batch: Callable[[list], list[int]]) -> np.ndarray:
    """``count_batch`` over ``items`` in bounded batches (rows and characters: a tokenizer's
    output for 100 KB rows is many times their size), as one array in ``items``' order."""
    counts: list[int] = []
    start = 0
    while start < len(items):
        end, chars = start, 0
        while end < len(items) and end - start < _BATCH and (end == start or chars < _BATCH_CHARS):
            chars += len(items[end]) if isinstance(items[end], str) else len(as_text(items[end]))
            end += 1
        counts += count_batch(list(items[start:end]))
        start = end
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
