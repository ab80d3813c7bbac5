"""Read an uploaded dataset file, work out its TRL dataset type and check every row.

No database, no web: the only I/O is reading the one file. Every problem is a DatasetError whose
message says what to fix, naming the row (1-based) and column where that applies. Length
statistics and preview rows live in dataset_stats and are re-exported here.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.services.dataset_stats import length_stats, rows_for_preview

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


class DatasetError(ValueError):
    """A problem with an uploaded dataset, worded for the person who uploaded it."""


@dataclass
class ParsedDataset:
    rows: list[dict[str, Any]]  # every row has every column (absent JSON keys become None)
    columns: list[str]
    format: str  # a FORMAT_COLUMNS key
    file_format: str  # "jsonl", "json" (one JSON array), "csv" or "parquet"


# Required columns per TRL dataset type; any other column is kept (GRPO reward kwargs).
FORMAT_COLUMNS: dict[str, tuple[str, ...]] = {
    "prompt_completion": ("prompt", "completion"),
    "conversational_prompt_completion": ("prompt", "completion"),
    "messages": ("messages",),
    "text": ("text",),
    "prompt_only": ("prompt",),
    "preference": ("prompt", "chosen", "rejected"),
    "conversational_preference": ("prompt", "chosen", "rejected"),
}
FORMAT_LABELS = {
    "prompt_completion": "prompt/completion text",
    "conversational_prompt_completion": "prompt/completion message lists",
    "messages": "chat messages",
    "text": "plain text",
    "prompt_only": "prompts only",
    "preference": "prompt/chosen/rejected text",
    "conversational_preference": "prompt/chosen/rejected message lists",
}
_CONVERSATIONAL = {"conversational_prompt_completion", "messages", "conversational_preference"}
ROLES = ("system", "user", "assistant", "tool")

STRATEGY_FORMATS: dict[str, set[str]] = {
    "sft": {"prompt_completion", "conversational_prompt_completion", "messages", "text"},
    # GRPO generates its own completions from the prompt; other columns go to reward functions.
    "grpo": {"prompt_only", "prompt_completion", "conversational_prompt_completion"},
    "dpo": {"preference", "conversational_preference"},
}
_STRATEGY_NEEDS = {
    "sft": "prompt and completion columns, a messages column, or a text column",
    "grpo": "a prompt column (text or messages), plus any columns your reward functions read "
    "such as answer",
    "dpo": "prompt, chosen and rejected columns",
}
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


def check_format_for_strategy(
    format: str, strategy: str, *, columns: list[str] | None = None
) -> None:
    """Raise DatasetError naming the columns ``strategy`` needs when ``format`` can't feed it."""
    if strategy not in STRATEGY_FORMATS:
        raise ValueError(f"unknown strategy {strategy!r}")
    if format in STRATEGY_FORMATS[strategy]:
        return
    found = f" (columns {list(columns)})" if columns else ""
    raise DatasetError(
        f"{strategy.upper()} needs {_STRATEGY_NEEDS[strategy]}; this dataset is "
        f"{FORMAT_LABELS.get(format, format)}{found}"
    )


def validate_rows(rows: list[dict], format: str, *, line_numbers: list[int] | None = None) -> None:
    """Check the required columns of every row; stop at the first problem."""
    required = FORMAT_COLUMNS[format]
    # A prompt-only dataset may hold text or message lists, but one kind throughout.
    conversational = format in _CONVERSATIONAL or (
        format == "prompt_only" and bool(rows) and isinstance(rows[0].get("prompt"), list)
    )
    needs = " and ".join(", ".join(required).rsplit(", ", 1))
    for index, row in enumerate(rows):
        for column in required:
            if column not in row:
                keys = list(row)[:10]
                raise DatasetError(
                    f"{_where(index, line_numbers)}: missing column '{column}' — every row needs "
                    f"{needs}; this row has columns {keys}"
                )
            problem = _value_problem(row[column], column, conversational)
            if problem:
                raise DatasetError(f"{_where(index, line_numbers)}: column '{column}' {problem}")


def _value_problem(value: Any, column: str, conversational: bool) -> str | None:
    if value is None:
        return f"is null — every row needs a non-empty {column}"
    if conversational:
        return _messages_problem(value)
    if not isinstance(value, str):
        return f"is {_describe(value)}, expected text"
    if not value.strip():
        return f"is empty — every row needs a non-empty {column}"
    return None


def _messages_problem(value: Any) -> str | None:
    if not isinstance(value, list):
        hint = ""
        if isinstance(value, str) and value.lstrip().startswith("["):
            hint = f" (it starts with '[' but {_json_problem(value)})"
        return (
            f"is {_describe(value)}, expected a list of messages like "
            f'[{{"role": "user", "content": "..."}}]{hint}'
        )
    if not value:
        return "is an empty list — every row needs at least one message"
    for number, message in enumerate(value, 1):
        if not isinstance(message, dict):
            return (
                f"message {number} is {_describe(message)}, expected an object with role "
                "and content"
            )
        if message.get("role") not in ROLES:
            role = f"role {message['role']!r}" if "role" in message else "no role"
            return f"message {number} has {role} — use one of {', '.join(ROLES)}"
        if not isinstance(message.get("content"), str):
            return f"message {number} content is {_describe(message.get('content'))}, expected text"
    return None


def _json_problem(text: str) -> str:
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"is not valid JSON: {exc.msg} at char {exc.pos}"
    return "is not a JSON list of {role, content} objects"


def _describe(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    kinds = {str: "text", list: "a list", dict: "an object", bytes: "binary data"}
    return kinds.get(type(value), f"a {type(value).__name__}")


def _where(index: int, line_numbers: list[int] | None) -> str:
    row = index + 1
    if line_numbers and line_numbers[index] != row:
        return f"row {row} (line {line_numbers[index]})"
    return f"row {row}"


def _human_size(size: int) -> str:
    for unit, scale in (("MB", 1_000_000), ("KB", 1_000)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


# Reading the file ---------------------------------------------------------------------------

_KIND_BY_EXTENSION = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
_KIND_NAMES = {"json": "JSON", "csv": "CSV", "parquet": "Parquet"}
_EXTENSION_BY_KIND = {"json": ".jsonl", "csv": ".csv", "parquet": ".parquet"}
_UPLOAD_HINT = "upload .jsonl, .json, .csv or .parquet"
_EXAMPLE_ROW = '{"prompt": "...", "completion": "..."}'
_BINARY_MAGIC = (
    (b"\x89PNG", "a PNG image", _UPLOAD_HINT),
    (b"\xff\xd8\xff", "a JPEG image", _UPLOAD_HINT),
    (b"GIF8", "a GIF image", _UPLOAD_HINT),
    (b"%PDF", "a PDF document", _UPLOAD_HINT),
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook is one)", "export the sheet as CSV"),
    (b"\x1f\x8b", "gzip-compressed", "decompress it first"),
    (b"\xd0\xcf\x11\xe0", "an Office document", "export the sheet as CSV"),
)


def parse_dataset(
    path: Path, *, filename: str, max_row_bytes: int = 1_000_000, max_rows: int = 1_000_000
) -> ParsedDataset:
    """Read the upload at ``path``, check every row and return it parsed.

    ``filename`` is the user's name for the file: only its extension is used, and the content
    must agree with it (a Parquet file named .jsonl is refused with a rename hint).
    """
    extension = Path(filename).suffix.lower()
    if extension not in _KIND_BY_EXTENSION:
        raise DatasetError(_unsupported(extension))
    expected = _KIND_BY_EXTENSION[extension]
    with path.open("rb") as handle:
        is_parquet = handle.read(4) == b"PAR1"
    text = "" if is_parquet else _decode(path.read_bytes())
    kind = "parquet" if is_parquet else _sniff_text(text, expected)
    if kind != expected:
        verb = "is" if is_parquet else "looks like"
        raise DatasetError(
            f"the file {verb} {_KIND_NAMES[kind]} but is named {extension} — "
            f"rename it to {_EXTENSION_BY_KIND[kind]}"
        )
    if kind == "parquet":
        rows, columns, lines, file_format = _read_parquet(path, max_row_bytes, max_rows)
    elif kind == "csv":
        rows, columns, lines, file_format = _read_csv(text, max_row_bytes, max_rows)
    else:
        rows, columns, lines, file_format = _read_json(text, max_row_bytes, max_rows)
    format = detect_format(columns, rows[0])
    validate_rows(rows, format, line_numbers=lines)
    for row in rows:  # JSON rows may omit an extra column; give every row the same shape
        if len(row) != len(columns):
            for column in columns:
                row.setdefault(column, None)
    return ParsedDataset(rows=rows, columns=columns, format=format, file_format=file_format)


def _unsupported(extension: str) -> str:
    if extension in (".xlsx", ".xls"):
        return f"Excel files ({extension}) are not supported — export the sheet as CSV"
    if not extension:
        return f"the file name has no extension — {_UPLOAD_HINT}"
    return f"unsupported file type '{extension}' — {_UPLOAD_HINT}"


def _decode(data: bytes) -> str:
    if not data:
        raise DatasetError("the file is empty")
    for magic, what, fix in _BINARY_MAGIC:
        if data.startswith(magic):
            raise DatasetError(f"the file is {what}, not a dataset — {fix}")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DatasetError("the file is UTF-16 text — save it as UTF-8")
    if b"\x00" in data[:4096]:
        raise DatasetError(
            "the file holds NUL bytes: it is binary, or UTF-16 without a "
            "byte-order mark — save it as UTF-8 text"
        )
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + bom
        line = data.count(b"\n", 0, offset) + 1
        raise DatasetError(
            f"the file is not UTF-8 text (byte 0x{data[offset]:02x} at offset "
            f"{offset}, line {line}) — save it as UTF-8"
        ) from None
    if text.isspace():
        raise DatasetError("the file is empty (only whitespace)")
    return text


def _first_line(text: str) -> str:
    start = len(text) - len(text.lstrip()) if text[:1].isspace() else 0
    end = text.find("\n", start)
    return text[start:] if end < 0 else text[start:end]


def _sniff_text(text: str, expected: str) -> str:
    line = _first_line(text)
    if line.startswith(("{", "[")):
        return "json"
    if expected == "csv":
        return "csv"
    # Neither JSON nor separated values: let the JSON reader say which line is broken.
    return "csv" if "," in line or "\t" in line else "json"


def _too_many(max_rows: int) -> DatasetError:
    return DatasetError(f"the file has more than {max_rows:,} rows — split it or upload a sample")


def _check_size(index: int, size: int, limit: int, lines: list[int] | None) -> None:
    if size > limit:
        raise DatasetError(
            f"{_where(index, lines)} is {_human_size(size)}, over the "
            f"{_human_size(limit)} per-row limit"
        )


def _row_size(row: dict, limit: int) -> int:
    # Characters bound UTF-8 bytes within 4x, so encode only rows that could be over the limit.
    chars = json.dumps(row, ensure_ascii=False, default=str)
    return len(chars) if len(chars) * 4 <= limit else len(chars.encode())


def _columns(rows: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _read_json(text: str, max_row_bytes: int, max_rows: int) -> tuple:
    if _first_line(text).startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if not exc.msg.startswith("Extra data"):  # extra data: JSON lines holding lists
                raise DatasetError(
                    f"the file is not valid JSON ({exc.msg} at line {exc.lineno} "
                    f"column {exc.colno})"
                ) from None
        else:
            if not data:
                raise DatasetError("the JSON array is empty — it holds no rows")
            if len(data) > max_rows:
                raise _too_many(max_rows)
            for index, item in enumerate(data):
                if not isinstance(item, dict):
                    raise DatasetError(
                        f"item {index + 1} of the JSON array is "
                        f"{_describe(item)}, expected an object like {_EXAMPLE_ROW}"
                    )
                _check_size(index, _row_size(item, max_row_bytes), max_row_bytes, None)
            return data, _columns(data), None, "json"
    rows: list[dict] = []
    lines: list[int] = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line or line.isspace():
            continue
        lines.append(number)
        if len(line) * 4 > max_row_bytes:
            _check_size(len(rows), len(line.encode()), max_row_bytes, lines)
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            if not rows and isinstance(_loads_or_none(text), dict):
                raise DatasetError(
                    "the file is one JSON object spread over several lines — "
                    "write one object per line (JSON lines), or put the rows in "
                    "a JSON array"
                ) from None
            raise DatasetError(
                f"line {number} is not valid JSON ({exc.msg} at char {exc.pos})"
            ) from None
        if not isinstance(row, dict):
            raise DatasetError(
                f"line {number} is {_describe(row)}, not an object — write one "
                f"object per line, like {_EXAMPLE_ROW}"
            )
        rows.append(row)
        if len(rows) > max_rows:
            raise _too_many(max_rows)
    return rows, _columns(rows), lines, "jsonl"


def _loads_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _read_csv(text: str, max_row_bytes: int, max_rows: int) -> tuple:
    # Process-wide, so only ever raised; long rows get the per-row message below instead.
    csv.field_size_limit(max(csv.field_size_limit(), max_row_bytes + 1))
    header_line = _first_line(text)
    delimiter = next((d for d in ",\t;" if d in header_line), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[dict] = []
    lines: list[int] = []
    try:
        columns = _csv_header(next(record for record in reader if record))
        end = reader.line_num
        for record in reader:
            start, end = end + 1, reader.line_num
            if not record:
                continue
            lines.append(start)
            if len(record) != len(columns):
                raise DatasetError(
                    f"{_where(len(rows), lines)} has {len(record)} fields but the "
                    f"header has {len(columns)} — quote values that hold commas"
                )
            if sum(map(len, record)) * 4 > max_row_bytes:
                size = sum(len(value.encode()) for value in record)
                _check_size(len(rows), size, max_row_bytes, lines)
            rows.append(dict(zip(columns, map(_csv_cell, record), strict=True)))
            if len(rows) > max_rows:
                raise _too_many(max_rows)
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise DatasetError(
                f"row {len(rows) + 1} is over the {_human_size(max_row_bytes)} per-row limit"
            ) from None
        raise DatasetError(
            f"the CSV is malformed at line {reader.line_num} ({exc}) — check for an unclosed quote"
        ) from None
    if not rows:
        raise DatasetError("the CSV has a header but no data rows")
    return rows, columns, lines, "csv"


def _csv_header(header: list[str]) -> list[str]:
    columns = [name.strip() for name in header]
    seen: set[str] = set()
    for number, name in enumerate(columns, 1):
        if not name:
            raise DatasetError(
                f"column {number} of the CSV header is empty — give every column a name"
            )
        if name in seen:
            raise DatasetError(f"duplicate column '{name}' in the CSV header")
        seen.add(name)
    return columns


def _csv_cell(value: str) -> Any:
    """A cell holding a JSON list of message objects becomes that list; anything else stays text
    (a prompt such as "[INST] ..." or "[1, 2]" is not mistaken for messages)."""
    if not value.lstrip().startswith("["):
        return value
    parsed = _loads_or_none(value)
    if isinstance(parsed, list) and parsed and all(isinstance(m, dict) for m in parsed):
        return parsed
    return value


def _read_parquet(path: Path, max_row_bytes: int, max_rows: int) -> tuple:
    import pyarrow as pa  # imported here: only Parquet uploads pay for it
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        num_rows = parquet.metadata.num_rows
        table = parquet.read() if 0 < num_rows <= max_rows else None
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(
            f"the Parquet file is corrupt or truncated ({str(exc)[:200]}) — export it again"
        ) from None
    if num_rows == 0:
        raise DatasetError("the Parquet file has no rows")
    if table is None:
        raise _too_many(max_rows)
    # pandas stores a non-default index as a column; it is not data.
    columns = [name for name in table.column_names if not name.startswith("__index_level_")]
    if len(set(columns)) != len(columns):
        duplicate = next(name for name in columns if columns.count(name) > 1)
        raise DatasetError(f"duplicate column '{duplicate}' in the Parquet file")
    rows = table.select(columns).to_pylist()
    for index, row in enumerate(rows):
        _check_size(index, _row_size(row, max_row_bytes), max_row_bytes, None)
    return rows, columns, None, "parquet"
