"""API reference at /docs, rendered from the OpenAPI schema with no external assets (FastAPI's
default Swagger UI loads from a CDN, which TuneDeck never does at runtime)."""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.api.templating import templates

router = APIRouter(include_in_schema=False)
METHODS = ("get", "post", "put", "patch", "delete")


def _schema_name(schema: dict | None) -> str:
    if not schema:
        return ""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"list[{_schema_name(schema.get('items'))}]"
    return schema.get("type", "")


def _type_text(spec: dict) -> str:
    if "$ref" in spec or spec.get("type") == "array":
        return _schema_name(spec)
    if "anyOf" in spec:
        return " | ".join(_type_text(s) for s in spec["anyOf"])
    if "enum" in spec:
        return " | ".join(repr(v) for v in spec["enum"])
    if "const" in spec:
        return repr(spec["const"])
    return spec.get("type", "")


def body_fields(schema: dict | None, components: dict) -> list[dict]:
    """A request body's fields (name, type, required, default, description), its $ref resolved."""
    if not schema:
        return []
    if "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    required = set(schema.get("required", []))
    return [{"name": name, "type": _type_text(spec), "required": name in required,
             "default": spec.get("default"), "has_default": "default" in spec,
             "description": spec.get("description", "")}
            for name, spec in schema.get("properties", {}).items()]


def operations(openapi: dict) -> list[dict]:
    components = openapi.get("components", {}).get("schemas", {})
    found = []
    for path, item in openapi.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if not op:
                continue
            body = op.get("requestBody", {}).get("content", {})
            body_kind = next(iter(body), "")
            responses = {
                code: {"schema": _schema_name(
                    next(iter(r.get("content", {}).values()), cast(dict[str, Any], {}))
                    .get("schema")), "description": r.get("description", "")}
                for code, r in op.get("responses", {}).items()
            }
            found.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "tag": (op.get("tags") or ["other"])[0],
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "required": p.get("required", False),
                            "type": _schema_name(p.get("schema")),
                        }
                        for p in op.get("parameters", [])
                    ],
                    "body": f"{body_kind}: {_schema_name(body[body_kind].get('schema'))}"
                    if body_kind
                    else "",
                    "body_fields": body_fields(body[body_kind].get("schema"), components)
                    if body_kind == "application/json" else [],
                    "responses": responses,
                }
            )
    return found


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> HTMLResponse:
    openapi = request.app.openapi()
    return templates.TemplateResponse(
        request,
        "api_docs.html",
        {
            "operations": operations(openapi),
            "schemas": openapi.get("components", {}).get("schemas", {}),
            "active_nav": "docs",
        },
    )
