"""Read an uploaded dataset file into rows: refuse what is not one (wrong extension, binary,
not UTF-8), sniff JSON vs CSV vs Parquet, and read JSON lines, JSON arrays, CSV and Parquet with
per-row size and row-count limits.

No database, no web: the only I/O is reading the one file. Which TRL dataset type the rows make,
and whether every row is valid, is dataset_formats' job (which re-exports DatasetError).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, NamedTuple

from app.domain.dataset_rules import DatasetError


class FileRows(NamedTuple):
    rows: list[dict[str, Any]]
    columns: list[str]  # in first-seen order
    line_numbers: list[int] | None  # each row's line in the file (JSON lines, CSV), else None
    file_format: str  # "jsonl", "json" (one JSON array), "csv" or "parquet"


def describe(value: Any) -> str:
    """What a value is, for messages: "missing", "a number (3)", "a list"."""
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    kinds: dict[type, str] = {str: "text", list: "a list", dict: "an object", bytes: "binary data"}
    return kinds.get(type(value), f"a {type(value).__name__}")


def row_label(index: int, line_numbers: list[int] | None) -> str:
    """"row 3", or "row 3 (line 5)" where blank lines or a header shift the line."""
    row = index + 1
    if line_numbers and line_numbers[index] != row:
        return f"row {row} (line {line_numbers[index]})"
    return f"row {row}"


def human_size(size: int) -> str:
    for unit, scale in (("MB", 1_000_000), ("KB", 1_000)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


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


def read_file(
    path: Path, *, filename: str, max_row_bytes: int = 1_000_000, max_rows: int = 1_000_000
) -> FileRows:
    """Read the upload at ``path`` into rows, refusing what is not a dataset file.

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
        return FileRows(*_read_parquet(path, max_row_bytes, max_rows))
    if kind == "csv":
        return FileRows(*_read_csv(text, max_row_bytes, max_rows))
    return FileRows(*_read_json(text, max_row_bytes, max_rows))


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
            f"{row_label(index, lines)} is {human_size(size)}, over the "
            f"{human_size(limit)} per-row limit"
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
                        f"{describe(item)}, expected an object like {_EXAMPLE_ROW}"
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
                f"line {number} is {describe(row)}, not an object — write one "
                f"object per line, like {_EXAMPLE_ROW}"
            )
        rows.append(row)
        if len(rows) > max_rows:
            raise _too_many(max_rows)
    return rows, _columns(rows), lines, "jsonl"


def _loads_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):  # too deep to be messages: stays text
        return None


def _unclosed_quote_line(text: str, first_line: int) -> int | None:
    """The line (from ``first_line`` on) where a quote opens that no later quote closes."""
    opened, inside = None, False
    for number, line in enumerate(text.splitlines()[first_line - 1:], first_line):
        for _ in range(line.count('"')):  # "" inside a quoted value toggles twice: no change
            inside = not inside
            if inside:
                opened = number
    return opened if inside else None


def _read_csv(text: str, max_row_bytes: int, max_rows: int) -> tuple:
    # Process-wide, so only ever raised; long rows get the per-row message below instead.
    csv.field_size_limit(max(csv.field_size_limit(), max_row_bytes + 1))
    header_line = _first_line(text)
    delimiter = next((d for d in ",\t;" if d in header_line), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[dict] = []
    lines: list[int] = []
    end = 0
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
                    f"{row_label(len(rows), lines)} has {len(record)} fields but the "
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
                f"row {len(rows) + 1} is over the {human_size(max_row_bytes)} per-row limit"
            ) from None
        opened = _unclosed_quote_line(text, end + 1)
        if opened is not None:  # the reader only notices at the end of the file
            raise DatasetError(f"the CSV has an unclosed quote: the one opened on line {opened} "
                               "never closes") from None
        raise DatasetError(
            f"the CSV is malformed in the row that starts on line {end + 1} (at line "
            f"{reader.line_num}: {exc}) — check for an unclosed quote"
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
