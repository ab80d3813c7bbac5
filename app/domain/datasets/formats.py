"""Read an uploaded dataset file, work out its TRL dataset type and check every row.

No database, no web: the only I/O is reading the one file (dataset_files). Every problem is a
DatasetError whose message says what to fix, naming the row (1-based) and column where that
applies. DatasetError and the format tables (app.domain.dataset_rules), length statistics and
preview rows (dataset_stats) are re-exported here, so callers import everything about uploads
from this module.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
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
from app.domain.datasets.files import RowStream, describe, open_rows, row_at
from app.domain.datasets.stats import length_stats, rows_for_preview
from app.domain.preference_rows import split_implicit_prompt
from app.domain.tool_calls import tool_calls_problem, tools_problem

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


def validate_rows(rows: list[dict], format: str, *, line_numbers: list[int] | None = None,
                  skip: tuple[str, ...] = ()) -> None:
    """Check the required columns (but ``skip``) of every row; stop at the first problem."""
    check = RowChecker(format, first_row=rows[0] if rows else {}, skip=skip)
    for index, row in enumerate(rows):
        check(index, row, line_numbers[index] if line_numbers else None)


class RowChecker:
    """Checks one row at a time against ``format`` (its required columns but ``skip``)."""

    def __init__(self, format: str, *, first_row: dict, skip: tuple[str, ...] = ()) -> None:
        self.required = tuple(c for c in FORMAT_COLUMNS[format] if c not in skip)
        # A prompt-only dataset may hold text or message lists, but one kind throughout.
        self.conversational = format in CONVERSATIONAL_FORMATS or (
            format == "prompt_only" and isinstance(first_row.get("prompt"), list)
        )
        self.needs = " and ".join(", ".join(self.required).rsplit(", ", 1))

    def __call__(self, index: int, row: dict, line: int | None) -> None:
        for column in self.required:
            if column not in row:
                keys = list(row)[:10]
                raise DatasetError(
                    f"{row_at(index, line)}: missing column '{column}' — every row "
                    f"needs {self.needs}; this row has columns {keys}"
                )
            problem = _value_problem(row[column], column, self.conversational)
            if problem:
                raise DatasetError(f"{row_at(index, line)}: column '{column}' {problem}")


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
        if message["role"] == "assistant" and message.get("tool_calls") is not None:
            # A tool call: TRL's assistant turn with tool_calls and no (or empty) content.
            problem = tool_calls_problem(message["tool_calls"])
            if problem:
                return f"message {number} {problem}"
            if message.get("content") not in (None, "") and not isinstance(
                    message.get("content"), str):
                return f"message {number} content is {describe(message['content'])}, expected text"
            continue
        if not isinstance(message.get("content"), str):
            return f"message {number} content is {describe(message.get('content'))}, expected text"
        if "tool_call_id" in message and not isinstance(message["tool_call_id"], (str, type(None))):
            return (f"message {number} tool_call_id is {describe(message['tool_call_id'])}, "
                    "expected text")
    return None


def _json_problem(text: str) -> str:
    try:
        json.loads(text)
    except RecursionError:
        return "nests lists or objects too deeply"
    except json.JSONDecodeError as exc:
        return f"is not valid JSON: {exc.msg} at char {exc.pos}"
    return "is not a JSON list of {role, content} objects"


class DatasetStream:
    """An upload's rows, checked and normalised one at a time as they are read (bounded memory
    whatever the file's size). ``format``, ``columns`` and ``file_format`` are known once the
    first row is; iterating yields each normalised row (absent keys of columns seen so far
    become None; ``columns_changed`` says whether a later row brought a new column, which the
    rows before it then lack) and raises DatasetError, naming the row and column, at the first
    problem."""

    def __init__(self, rows: RowStream) -> None:
        self._rows = rows
        self.format = ""
        self.columns: list[str] = []
        self.file_format = rows.file_format
        self.columns_changed = False

    @property
    def fraction(self) -> float:
        return self._rows.fraction

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rows = iter(self._rows)
        first = next(rows, None)
        if first is None:  # readers raise on an empty file; this is belt and braces
            raise DatasetError("the file holds no rows")
        first_row, first_line = first
        self.format = detect_format(self._rows.columns, first_row)
        self.file_format = self._rows.file_format
        implicit = (self.format in IMPLICIT_PREFERENCE and "prompt" not in first_row
                    and {"chosen", "rejected"} <= set(first_row))
        check = RowChecker(self.format, first_row=first_row)
        check_replies = RowChecker(self.format, first_row=first_row, skip=("prompt",))
        known = len(self._rows.columns)
        self.columns = (["prompt"] if implicit else []) + list(self._rows.columns)
        for index, (row, line) in enumerate(itertools.chain([first], rows)):
            if len(self._rows.columns) != known:
                self._new_columns(first_row, first_line, implicit)
                known = len(self._rows.columns)
            if implicit:
                check_replies(index, row, line)
                try:
                    row = split_implicit_prompt(row)
                except DatasetError as exc:
                    raise DatasetError(f"{row_at(index, line)}: {exc} (no prompt column: the "
                                       "prompt is taken from the shared start of chosen and "
                                       "rejected)") from None
            check(index, row, line)
            if "tools" in row:  # tool schemas for tool-calling conversations (TRL's column)
                problem = tools_problem(row["tools"])
                if problem:
                    raise DatasetError(f"{row_at(index, line)}: column 'tools' {problem}")
            if len(row) != len(self.columns):  # JSON rows may omit an extra column
                for column in self.columns:
                    row.setdefault(column, None)
            yield row
        self.file_format = self._rows.file_format

    def _new_columns(self, first_row: dict, first_line: int | None, implicit: bool) -> None:
        columns = list(self._rows.columns)
        # A column first seen after row 1 that changes the dataset's type means row 1 lacks a
        # column every row needs (as a whole-file read would have found).
        if detect_format(columns, first_row) != self.format:
            RowChecker(detect_format(columns, first_row), first_row=first_row)(
                0, first_row, first_line)
        self.columns = (["prompt"] if implicit else []) + columns
        self.columns_changed = True


def stream_dataset(path: Path, *, filename: str, max_row_bytes: int = 1_000_000,
                   max_rows: int = 1_000_000) -> DatasetStream:
    """The upload at ``path`` as checked rows read one at a time (see DatasetStream)."""
    return DatasetStream(open_rows(path, filename=filename, max_row_bytes=max_row_bytes,
                                   max_rows=max_rows))


def parse_dataset(
    path: Path, *, filename: str, max_row_bytes: int = 1_000_000, max_rows: int = 1_000_000
) -> ParsedDataset:
    """Read the upload at ``path`` whole, check every row and return it parsed (small files and
    tests; uploads are processed with stream_dataset). ``filename`` is the user's name for the
    file: only its extension is used."""
    stream = stream_dataset(path, filename=filename, max_row_bytes=max_row_bytes,
                            max_rows=max_rows)
    rows = list(stream)
    if stream.columns_changed:
        for row in rows:
            for column in stream.columns:
                row.setdefault(column, None)
    return ParsedDataset(rows=rows, columns=stream.columns, format=stream.format,
                         file_format=stream.file_format)
