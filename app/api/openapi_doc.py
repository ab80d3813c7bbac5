"""The OpenAPI schema as /docs and /openapi.json show it: every error a route can answer listed
(404 where a path names a resource, 409 where the resource's state can refuse the request), with
the one error body TuneDeck sends, and docstrings' RST ``code`` written as Markdown `code`."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA = {
    "title": "Error", "type": "object", "required": ["detail"],
    "properties": {"detail": {"type": "string", "description": "What went wrong and what to fix"}},
}
NOT_FOUND = "No such resource (it may have been deleted)"
CONFLICT = ("Its state does not allow this now (a run still training, a dataset still used by "
            "runs, the best checkpoint): the detail says why")
DOUBLE_BACKTICKS = re.compile(r"``(.+?)``", re.DOTALL)


def openapi(app: FastAPI) -> dict[str, Any]:
    """The app's schema, built once: FastAPI's plus the error responses and Markdown code."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description,
                             routes=app.routes)
        document_errors(schema)
        app.openapi_schema = schema
    return app.openapi_schema


def document_errors(schema: dict[str, Any]) -> None:
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for key in ("summary", "description"):
                if operation.get(key):
                    operation[key] = DOUBLE_BACKTICKS.sub(r"`\1`", operation[key])
            responses = operation["responses"]
            if "{" in path:
                responses.setdefault("404", {"description": NOT_FOUND, "content": error})
            if method == "delete" and "{" in path or path.endswith(("/cancel", "/resume")):
                responses.setdefault("409", {"description": CONFLICT, "content": error})
            for code in ("404", "409"):  # routes that named one gave no body schema
                if code in responses:
                    responses[code].setdefault("content", error)
