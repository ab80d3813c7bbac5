"""Read an uploaded dataset file into rows: refuse what is not one (wrong extension, binary,
not UTF-8), sniff JSON vs CSV vs Parquet, and read JSON lines, JSON arrays, CSV and Parquet with
per-row size and row-count limits.

No database, no web: the only I/O is reading the one file. Which TRL dataset type the rows make,
and whether every row is valid, is dataset_formats' job (which re-exports DatasetError).
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Iterator
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


def rowrow_at(index: int, line_numbers: list[int] | None) -> str:
    """"row 3", or "row 3 (line 5)" where blank lines or a header shift the line."""
    return row_at(index, line_numbers[index] if line_numbers else None)


def row_at(index: int, line: int | None) -> str:
    row = index + 1
    return f"row {row} (line {line})" if line is not None and line != row else f"row {row}"


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
    stream = open_rows(path, filename=filename, max_row_bytes=max_row_bytes, max_rows=max_rows)
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    for row, line in stream:
        rows.append(row)
        if line is not None:
            lines.append(line)
    return FileRows(rows, stream.columns, lines or None, stream.file_format)


def check_upload(path: Path, *, filename: str, max_rows: int = 1_000_000) -> str:
    """The cheap checks an upload gets before it is accepted for processing: the extension, the
    first bytes (binary, UTF-16, empty), whether the content agrees with the extension and, for
    Parquet, the footer (readable, a row count within the limit). Returns the file's kind."""
    kind = _kind(path, filename)
    if kind == "parquet":
        _parquet_metadata(path, max_rows)
    return kind


class RowStream:
    """The rows of an upload, read one at a time (JSON lines, CSV) or in bounded batches
    (Parquet), so memory stays flat whatever the file's size; iterating yields ``(row, line)``
    (the row's line in the file for JSON lines and CSV, else None) and raises DatasetError at the
    first problem. ``columns`` grows in first-seen order as rows are read; ``fraction`` is how
    much of the file has been read."""

    def __init__(self, path: Path, kind: str, max_row_bytes: int, max_rows: int) -> None:
        self.path, self.kind = path, kind
        self.max_row_bytes, self.max_rows = max_row_bytes, max_rows
        self.columns: list[str] = []
        self.file_format = kind if kind != "json" else "jsonl"
        self._size = max(path.stat().st_size, 1)
        self._done = 0  # bytes (text) or rows (Parquet) read so far
        self._total = self._size

    @property
    def fraction(self) -> float:
        return min(self._done / max(self._total, 1), 1.0)

    def __iter__(self) -> Iterator[tuple[dict[str, Any], int | None]]:
        if self.kind == "parquet":
            return self._parquet()
        if self.kind == "csv":
            return self._csv()
        return self._json()

    def _add_columns(self, row: dict) -> None:
        if len(row) != len(self.columns) or any(key not in self._seen for key in row):
            for key in row:
                if key not in self._seen:
                    self._seen.add(key)
                    self.columns.append(key)

    _seen: set[str]

    def _lines(self) -> Iterator[tuple[int, str]]:
        """(line number, text) of every line, decoded one at a time with the byte offset of the
        first byte that is not UTF-8."""
        offset = 0
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, 1):
                start = offset
                offset += len(raw)
                self._done = offset
                if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw, start = raw[3:], start + 3
                try:
                    yield number, raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise DatasetError(
                        f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                        f"{start + exc.start}, line {number}) — save it as UTF-8"
                    ) from None

    def _json(self) -> Iterator[tuple[dict[str, Any], int | None]]:
        self._seen = set()
        lines = self._lines()
        for number, line in lines:
            if line.isspace() or not line:
                continue
            if line.lstrip().startswith("["):
                array = self._json_array()
                if array is not None:
                    self.file_format = "json"
                    yield from array
                    return
            yield from self._json_lines(number, line, lines)
            return
        raise DatasetError("the file is empty (only whitespace)")

    def _json_array(self) -> Iterator[tuple[dict[str, Any], None]] | None:
        # A JSON array is read whole (bounded by the upload limit): JSON lines stream.
        text = "".join(line for _, line in self._lines())
        try:
            data = json.loads(text)
        except RecursionError:  # the JSON reader recurses once per level of [ or {
            raise _too_deep() from None
        except json.JSONDecodeError as exc:
            if exc.msg.startswith("Extra data"):  # JSON lines holding lists
                return None
            raise DatasetError(
                f"the file is not valid JSON ({exc.msg} at line {exc.lineno} "
                f"column {exc.colno})"
            ) from None
        del text
        if not data:
            raise DatasetError("the JSON array is empty — it holds no rows")
        if len(data) > self.max_rows:
            raise _too_many(self.max_rows)

        def items() -> Iterator[tuple[dict[str, Any], None]]:
            for index, item in enumerate(data):
                if not isinstance(item, dict):
                    raise DatasetError(
                        f"item {index + 1} of the JSON array is "
                        f"{describe(item)}, expected an object like {_EXAMPLE_ROW}"
                    )
                _check_size(index, _row_size(item, self.max_row_bytes), self.max_row_bytes,
                            None)
                self._add_columns(item)
                self._done = int(self._total * (index + 1) / len(data))
                yield item, None

        return items()

    def _json_lines(self, number: int, line: str, lines: Iterator[tuple[int, str]]
                    ) -> Iterator[tuple[dict[str, Any], int | None]]:
        count = 0
        for number, line in itertools.chain([(number, line)], lines):  # noqa: B020
            if not line or line.isspace():
                continue
            if len(line) * 4 > self.max_row_bytes:
                _check_size_at(count, number, len(line.encode()), self.max_row_bytes)
            try:
                row = json.loads(line)
            except RecursionError:  # the JSON reader recurses once per level of [ or {
                raise _too_deep() from None
            except json.JSONDecodeError as exc:
                if not count and isinstance(self._whole_json_or_none(), dict):
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
            count += 1
            if count > self.max_rows:
                raise _too_many(self.max_rows)
            self._add_columns(row)
            yield row, number

    def _whole_json_or_none(self) -> Any:
        if self._size > 16 * 1024 * 1024:  # only to word an error better; not worth the memory
            return None
        return _loads_or_none("".join(line for _, line in self._lines()))

    def _csv(self) -> Iterator[tuple[dict[str, Any], int | None]]:
        # Process-wide, so only ever raised; long rows get the per-row message below instead.
        csv.field_size_limit(max(csv.field_size_limit(), self.max_row_bytes + 1))
        first = _first_text_line(self.path)
        delimiter = next((d for d in ",\t;" if d in first), ",")
        reader = csv.reader((line for _, line in self._lines()), delimiter=delimiter,
                            strict=True)
        count = 0
        end = 0
        try:
            header = next((record for record in reader if record), None)
            if header is None:
                raise DatasetError("the file is empty (only whitespace)")
            columns = _csv_header(header)
            self.columns = columns
            end = reader.line_num
            for record in reader:
                start, end = end + 1, reader.line_num
                if not record:
                    continue
                if len(record) != len(columns):
                    raise DatasetError(
                        f"{row_at(count, start)} has {len(record)} fields but the "
                        f"header has {len(columns)} — quote values that hold commas"
                    )
                if sum(map(len, record)) * 4 > self.max_row_bytes:
                    size = sum(len(value.encode()) for value in record)
                    _check_size_at(count, start, size, self.max_row_bytes)
                count += 1
                if count > self.max_rows:
                    raise _too_many(self.max_rows)
                yield dict(zip(columns, map(_csv_cell, record), strict=True)), start
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise DatasetError(
                    f"row {count + 1} is over the {human_size(self.max_row_bytes)} per-row limit"
                ) from None
            opened = _unclosed_quote_line(self.path, end + 1)
            if opened is not None:  # the reader only notices at the end of the file
                raise DatasetError(f"the CSV has an unclosed quote: the one opened on line "
                                   f"{opened} never closes") from None
            raise DatasetError(
                f"the CSV is malformed in the row that starts on line {end + 1} (at line "
                f"{reader.line_num}: {exc}) — check for an unclosed quote"
            ) from None
        if not count:
            raise DatasetError("the CSV has a header but no data rows")

    def _parquet(self) -> Iterator[tuple[dict[str, Any], int | None]]:
        import pyarrow as pa

        metadata = _parquet_metadata(self.path, self.max_rows)
        self._total = metadata.num_rows
        try:
            parquet, columns, batch_rows = _parquet_reader(self.path, metadata,
                                                           self.max_row_bytes)
        except (pa.ArrowException, OSError) as exc:
            raise _corrupt(exc) from None
        self.columns = columns
        index = 0
        try:
            for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns,
                                              use_pandas_metadata=False):
                # Sizes from Arrow before any value becomes a Python object: a dictionary-encoded
                # value repeated on every row is refused at its first row, not decoded 1,000 times.
                sizes = _arrow_row_sizes(batch)
                over = next((i for i, size in enumerate(sizes) if size > self.max_row_bytes),
                            None)
                if over is not None:
                    _check_size(index + over, int(sizes[over]), self.max_row_bytes, None)
                for row in batch.to_pylist():
                    _check_size(index, _row_size(row, self.max_row_bytes), self.max_row_bytes,
                                None)
                    index += 1
                    self._done = index
                    yield row, None
        except (pa.ArrowException, OSError) as exc:
            raise _corrupt(exc) from None


def open_rows(path: Path, *, filename: str, max_row_bytes: int = 1_000_000,
              max_rows: int = 1_000_000) -> RowStream:
    """The rows of the upload at ``path``, to iterate once (see RowStream); the cheap checks of
    ``check_upload`` are made now."""
    kind = check_upload(path, filename=filename, max_rows=max_rows)
    return RowStream(path, kind, max_row_bytes, max_rows)


def _kind(path: Path, filename: str) -> str:
    extension = Path(filename).suffix.lower()
    if extension not in _KIND_BY_EXTENSION:
        raise DatasetError(_unsupported(extension))
    expected = _KIND_BY_EXTENSION[extension]
    with path.open("rb") as handle:
        head = handle.read(64 * 1024)
    is_parquet = head[:4] == b"PAR1"
    kind = "parquet" if is_parquet else _sniff_text(_check_head(head, path), expected)
    if kind != expected:
        verb = "is" if is_parquet else "looks like"
        raise DatasetError(
            f"the file {verb} {_KIND_NAMES[kind]} but is named {extension} — "
            f"rename it to {_EXTENSION_BY_KIND[kind]}"
        )
    return kind


def _check_head(head: bytes, path: Path) -> str:
    """The first line of text, after refusing what the first bytes show is not UTF-8 text."""
    if not head:
        raise DatasetError("the file is empty")
    for magic, what, fix in _BINARY_MAGIC:
        if head.startswith(magic):
            raise DatasetError(f"the file is {what}, not a dataset — {fix}")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DatasetError("the file is UTF-16 text — save it as UTF-8")
    if b"\x00" in head[:4096]:
        raise DatasetError(
            "the file holds NUL bytes: it is binary, or UTF-16 without a "
            "byte-order mark — save it as UTF-8 text"
        )
    return _first_text_line(path)


def _first_text_line(path: Path) -> str:
    """The first line that is not blank, without its leading whitespace ("" if none)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            text = raw.decode("utf-8", "replace")
            if text.strip():
                return text.lstrip().rstrip("\r\n")
    return ""


def _corrupt(exc: BaseException) -> DatasetError:
    return DatasetError(
        f"the Parquet file is corrupt or truncated ({str(exc)[:200]}) — export it again")


def _parquet_metadata(path: Path, max_rows: int):  # type: ignore[no-untyped-def]
    import pyarrow as pa  # imported here: only Parquet uploads pay for it
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_metadata(path)
    except (pa.ArrowException, OSError) as exc:
        raise _corrupt(exc) from None
    if metadata.num_rows == 0:
        raise DatasetError("the Parquet file has no rows")
    if metadata.num_rows > max_rows:
        raise _too_many(max_rows)
    return metadata


# Arrow memory one Parquet batch may decode into (from the metadata's uncompressed sizes).
_PARQUET_BATCH_BYTES = 32 * 1024 * 1024


def _parquet_reader(path: Path, metadata, max_row_bytes: int):  # type: ignore[no-untyped-def]
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = metadata.schema.to_arrow_schema()
    # pandas stores a non-default index as a column; it is not data.
    columns = [name for name in schema.names if not name.startswith("__index_level_")]
    if len(set(columns)) != len(columns):
        duplicate = next(name for name in columns if columns.count(name) > 1)
        raise DatasetError(f"duplicate column '{duplicate}' in the Parquet file")
    text = [field.name for field in schema if field.name in columns and (
        pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
        or pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type))]
    # Rows per batch so that a batch decodes into a bounded amount of memory, judged from the
    # uncompressed sizes the footer records (a compressed run of one character is no surprise).
    per_row = 1.0
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        size = sum(row_group.column(c).total_uncompressed_size
                   for c in range(row_group.num_columns))
        per_row = max(per_row, size / max(row_group.num_rows, 1))
    if per_row > max_row_bytes * 4:
        raise DatasetError(
            f"the Parquet file's rows average {human_size(int(per_row))} uncompressed, over the "
            f"{human_size(max_row_bytes)} per-row limit")
    batch_rows = int(max(1, min(1024, _PARQUET_BATCH_BYTES // per_row)))
    # Text columns stay dictionary-encoded, so a repeated value is held once, not per row.
    return pq.ParquetFile(path, read_dictionary=text), columns, batch_rows


def _arrow_row_sizes(batch) -> list[int]:  # type: ignore[no-untyped-def]
    """Bytes of each row's values as Arrow holds them (text: its UTF-8 length), without making
    Python objects of the values."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    sizes = np.zeros(batch.num_rows, dtype=np.int64)
    for array in batch.columns:
        if pa.types.is_dictionary(array.type):
            values = array.dictionary
            if pa.types.is_string(values.type) or pa.types.is_binary(values.type) or \
                    pa.types.is_large_string(values.type):
                lengths = pc.binary_length(values).fill_null(0).to_numpy(zero_copy_only=False)
                indices = array.indices.fill_null(0).to_numpy(zero_copy_only=False)
                if len(lengths):
                    sizes += lengths[indices]
                continue
            array = array.dictionary_decode()
        if pa.types.is_string(array.type) or pa.types.is_binary(array.type) or \
                pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type):
            sizes += pc.binary_length(array).fill_null(0).to_numpy(zero_copy_only=False)
        else:
            sizes += np.fromiter((array.slice(i, 1).nbytes for i in range(len(array))),
                                 dtype=np.int64, count=len(array))
    return sizes.tolist()


def _unsupported(extension: str) -> str:
    if extension in (".xlsx", ".xls"):
        return f"Excel files ({extension}) are not supported — export the sheet as CSV"
    if not extension:
        return f"the file name has no extension — {_UPLOAD_HINT}"
    return f"unsupported file type '{extension}' — {_UPLOAD_HINT}"


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
            f"{rowrow_at(index, lines)} is {human_size(size)}, over the "
            f"{human_size(limit)} per-row limit"
        )


def _check_size_at(index: int, line: int | None, size: int, limit: int) -> None:
    if size > limit:
        raise DatasetError(
            f"{row_at(index, line)} is {human_size(size)}, over the {human_size(limit)} "
            "per-row limit"
        )


def _row_size(row: dict, limit: int) -> int:
    # Characters bound UTF-8 bytes within 4x, so encode only rows that could be over the limit.
    chars = json.dumps(row, ensure_ascii=False, default=str)
    return len(chars) if len(chars) * 4 <= limit else len(chars.encode())


def _too_deep() -> DatasetError:
    return DatasetError(
        "the file nests lists or objects too deeply (hundreds of levels of [ or {): "
        "a dataset row holds text, or a list of {role, content} messages")


def _loads_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):  # too deep to be messages: stays text
        return None


def _unclosed_quote_line(path: Path, first_line: int) -> int | None:
    """The line (from ``first_line`` on) where a quote opens that no later quote closes."""
    opened, inside = None, False
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        for number, line in enumerate(handle, 1):
            if number < first_line:
                continue
            for _ in range(line.count('"')):  # "" inside a quoted value toggles twice
                inside = not inside
                if inside:
                    opened = number
    return opened if inside else None


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
