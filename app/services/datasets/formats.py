"""Read an uploaded dataset file, work out its TRL dataset type and check every row.

No database, no web: the only I/O is reading the one file (dataset_files). Every problem is a
DatasetError whose message says what to fix, naming the row (1-based) and column where that
applies. DatasetError and the format tables (app.domain.dataset_rules), length statistics and
preview rows (dataset_stats) are re-exported here, so callers import everything about uploads
from this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.domain.dataset_rules import (
    CONVERSATIONAL_FORMATS,
    FORMAT_COLUMNS,
    FORMAT_LABELS,
    IMPLICIT_PREFERENCE,
    STRATEGY_FORMATS,
    DatasetError,
    check_format_for_strategy,
)
from app.domain.preference_rows import split_implicit_prompt
from app.services.datasets.files import describe, read_file, row_label
from app.services.datasets.stats import length_stats, rows_for_preview

__all__ = [
    "DatasetError",
    "ParsedDataset",
    "parse_dataset",
    "detect_format",
    "validate_rows",
    "check_format_for_strategy",
    "STRATEGY_FORMATS",
    "FORMAT_COLUMNS",
    "FORMAT_LABELS",
    "length_stats",
    "rows_for_preview",
]


@dataclass
class ParsedDataset:
    rows: list[dict[str, Any]]  # every row has every column (absent JSON keys become None)
    columns: list[str]
    format: str  # a FORMAT_COLUMNS key
    file_format: str  # "jsonl", "json" (one JSON array), "csv" or "parquet"


ROLES = ("system", "user", "assistant", "tool")
# Column names other tools use, to suggest a rename when nothing matches.
_ALIASES = {
    "instruction": "prompt",
    "question": "prompt",
    "input": "prompt",
    "query": "prompt",
    "output": "completion",
    "response": "completion",
    "conversations": "messages",
}


def detect_format(columns: list[str], first_row: dict) -> str:
    """The TRL dataset type these columns make; the first row decides text vs message lists."""
    present = set(columns)

    def conversational(*names: str) -> bool:
        return any(isinstance(first_row.get(name), list) for name in names)

    if present & {"chosen", "rejected"}:
        # Without a prompt column both replies start with the prompt (TRL's implicit prompt):
        # parse_dataset splits it off, then checks the rows as ordinary preference rows.
        if conversational("prompt", "chosen", "rejected"):
            return "conversational_preference"
        return "preference"
    if "completion" in present:
        if conversational("prompt", "completion"):
            return "conversational_prompt_completion"
        return "prompt_completion"
    for name, format in (("messages", "messages"), ("text", "text"), ("prompt", "prompt_only")):
        if name in present:
            return format
    renames = [f"'{c}' → '{_ALIASES[c]}'" for c in columns if c in _ALIASES]
    hint = f" (rename {', '.join(renames)}?)" if renames else ""
    raise DatasetError(
        f"no recognised columns: found {list(columns)}; expected prompt/completion, messages, "
        f"text, prompt/chosen/rejected, or prompt (+ extra columns such as answer){hint}"
    )


def _split_implicit_prompts(rows: list[dict], lines: list[int] | None) -> list[dict]:
    split = []
    for index, row in enumerate(rows):
        try:
            split.append(split_implicit_prompt(row))
        except DatasetError as exc:
            raise DatasetError(f"{row_label(index, lines)}: {exc} (no prompt column: the "
                               "prompt is taken from the shared start of chosen and "
                               "rejected)") from None
    return split


def validate_rows(rows: list[dict], format: str, *, line_numbers: list[int] | None = None,
                  skip: tuple[str, ...] = ()) -> None:
    """Check the required columns (but ``skip``) of every row; stop at the first problem."""
    required = tuple(c for c in FORMAT_COLUMNS[format] if c not in skip)
    # A prompt-only dataset may hold text or message lists, but one kind throughout.
    conversational = format in CONVERSATIONAL_FORMATS or (
        format == "prompt_only" and bool(rows) and isinstance(rows[0].get("prompt"), list)
    )
    needs = " and ".join(", ".join(required).rsplit(", ", 1))
    for index, row in enumerate(rows):
        for column in required:
            if column not in row:
                keys = list(row)[:10]
                raise DatasetError(
                    f"{row_label(index, line_numbers)}: missing column '{column}' — every row "
                    f"needs {needs}; this row has columns {keys}"
                )
            problem = _value_problem(row[column], column, conversational)
            if problem:
                raise DatasetError(f"{row_label(index, line_numbers)}: column '{column}' {problem}")


def _value_problem(value: Any, column: str, conversational: bool) -> str | None:
    if value is None:
        return f"is null — every row needs a non-empty {column}"
    if conversational:
        return _messages_problem(value)
    if not isinstance(value, str):
        return f"is {describe(value)}, expected text"
    if not value.strip():
        return f"is empty — every row needs a non-empty {column}"
    return None


def _messages_problem(value: Any) -> str | None:
    if not isinstance(value, list):
        hint = ""
        if isinstance(value, str) and value.lstrip().startswith("["):
            hint = f" (it starts with '[' but {_json_problem(value)})"
        return (
            f"is {describe(value)}, expected a list of messages like "
            f'[{{"role": "user", "content": "..."}}]{hint}'
        )
    if not value:
        return "is an empty list — every row needs at least one message"
    for number, message in enumerate(value, 1):
        if not isinstance(message, dict):
            return (
                f"message {number} is {describe(message)}, expected an object with role "
                "and content"
            )
        if message.get("role") not in ROLES:
            role = f"role {message['role']!r}" if "role" in message else "no role"
            return f"message {number} has {role} — use one of {', '.join(ROLES)}"
        if not isinstance(message.get("content"), str):
            return f"message {number} content is {describe(message.get('content'))}, expected text"
    return None


def _json_problem(text: str) -> str:
    try:
        json.loads(text)
    except RecursionError:
        return "nests lists or objects too deeply"
    except json.JSONDecodeError as exc:
        return f"is not valid JSON: {exc.msg} at char {exc.pos}"
    return "is not a JSON list of {role, content} objects"


def parse_dataset(
    path: Path, *, filename: str, max_row_bytes: int = 1_000_000, max_rows: int = 1_000_000
) -> ParsedDataset:
    """Read the upload at ``path`` (dataset_files.read_file), check every row and return it
    parsed. ``filename`` is the user's name for the file: only its extension is used."""
    try:
        rows, columns, lines, file_format = read_file(
            path, filename=filename, max_row_bytes=max_row_bytes, max_rows=max_rows)
    except RecursionError:  # the JSON readers recurse once per level of [ or {
        raise DatasetError(
            "the file nests lists or objects too deeply (hundreds of levels of [ or {): "
            "a dataset row holds text, or a list of {role, content} messages"
        ) from None
    format = detect_format(columns, rows[0])
    if format in IMPLICIT_PREFERENCE and "prompt" not in columns and {"chosen", "rejected"} <= set(
            columns):
        validate_rows(rows, format, line_numbers=lines, skip=("prompt",))
        rows, columns = _split_implicit_prompts(rows, lines), ["prompt", *columns]
    validate_rows(rows, format, line_numbers=lines)
    for row in rows:  # JSON rows may omit an extra column; give every row the same shape
        if len(row) != len(columns):
            for column in columns:
                row.setdefault(column, None)
    return ParsedDataset(rows=rows, columns=columns, format=format, file_format=file_format)
