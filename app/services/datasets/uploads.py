"""Stream a multipart upload to a temporary file, enforcing the size limit as bytes arrive
(413 before the disk fills), without trusting the client's file name for anything but display."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from app.core.numbers import parse_count
from app.domain.errors import BadRequest, TooLarge


class UploadTooLarge(TooLarge):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(
            f"the upload is larger than the {limit_bytes // (1024 * 1024)} MB limit "
            "(TUNEDECK_MAX_UPLOAD_MB): split the dataset or raise the limit"
        )


# Form fields besides the file: each, and all of them together.
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS_BYTES = 256 * 1024


class UploadInvalid(BadRequest):
    def __init__(self, problem: object) -> None:
        super().__init__(f"malformed upload: {problem}")


@dataclass
class ReceivedUpload:
    path: Path | None = None
    filename: str = ""
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


async def receive_upload(
    request: Request, *, file_field: str, max_bytes: int, tmp_dir: Path
) -> ReceivedUpload:
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise UploadInvalid(f"send the file as multipart/form-data in a field named '{file_field}'")
    declared = request.headers.get("content-length")
    declared_bytes = parse_count(declared)
    if declared_bytes is not None and declared_bytes > max_bytes + 64 * 1024:
        raise UploadTooLarge(max_bytes)

    received = ReceivedUpload()
    state: dict = {
        "headers": {},
        "header_field": b"",
        "header_value": b"",
        "name": None,
        "file": None,
        "value": bytearray(),
        "size": 0,
        "fields_size": 0,
    }

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["header_field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["header_value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["header_field"].lower()] = state["header_value"]
        state["header_field"], state["header_value"] = b"", b""

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(state["headers"].get(b"content-disposition", b""))
        state["name"] = disposition.get(b"name", b"").decode("utf-8", "replace")
        if state["name"] == file_field and b"filename" in disposition:
            if received.path is not None:
                raise UploadInvalid(f"send exactly one file in the '{file_field}' field")
            received.filename = disposition[b"filename"].decode("utf-8", "replace")
            handle, name = tempfile.mkstemp(dir=tmp_dir, suffix=".upload")
            state["file"] = os.fdopen(handle, "wb")
            received.path = Path(name)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["file"] is not None:
            state["size"] += end - start
            if state["size"] > max_bytes:
                raise UploadTooLarge(max_bytes)
            state["file"].write(data[start:end])
        elif len(state["value"]) + (end - start) > MAX_FIELD_BYTES:
            raise UploadInvalid(f"form field '{state['name'][:60]}' is over the "
                                f"{MAX_FIELD_BYTES >> 10} KB limit for a field")
        else:
            state["fields_size"] += end - start
            if state["fields_size"] > MAX_FIELDS_BYTES:
                raise UploadInvalid(f"the form fields besides the file are over "
                                    f"{MAX_FIELDS_BYTES >> 10} KB together: send the file and "
                                    "its name only")
            state["value"] += data[start:end]

    def on_part_end() -> None:
        if state["file"] is not None:
            state["file"].close()
            state["file"] = None
        elif state["name"]:
            received.fields[state["name"]] = state["value"].decode("utf-8", "replace")
        state["headers"], state["value"], state["name"] = {}, bytearray(), None

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except BaseException as exc:
        if state["file"] is not None:
            state["file"].close()
        received.discard()
        if isinstance(exc, MultipartParseError):
            raise UploadInvalid(exc) from exc
        raise
    if received.path is None:
        raise UploadInvalid(f"no file: send the dataset in a multipart field named '{file_field}'")
    return received
