"""The thin pass-through in front of a deployment's engine: the engine listens on localhost only
(``transformers serve`` has no API-key option), and this checks the key, answers ``/v1/models``
with the deployment's name, puts the engine's own model name into requests, and streams the
OpenAI paths through unchanged otherwise. CORS is open so the run page's chat box can call it
from the browser (the key still guards it)."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "Authorization, "
        "Content-Type", "Access-Control-Allow-Methods": "GET, POST, OPTIONS"}
HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}


def error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status,
                        headers=CORS)


def make_app(*, upstream: str, model_name: str, engine_model: str, api_key_hash: str | None
             ) -> Starlette:
    client = httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(600, connect=10))

    def authorised(request: Request) -> bool:
        if api_key_hash is None:
            return True
        header = request.headers.get("authorization", "")
        key = header[7:] if header.lower().startswith("bearer ") else ""
        return hmac.compare_digest(hashlib.sha256(key.encode()).hexdigest(), api_key_hash)

    async def health(_request: Request) -> Response:
        response = await client.get("/health")
        return JSONResponse({"status": "ok" if response.status_code == 200 else "starting"},
                            status_code=response.status_code, headers=CORS)

    async def openai(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=CORS)
        if not authorised(request):
            return error(401, "missing or wrong API key: send Authorization: Bearer <key> (the "
                              "key TuneDeck showed when the deployment was created)",
                         "invalid_api_key")
        path = request.url.path
        if path.rstrip("/") == "/v1/models":
            return JSONResponse({"object": "list", "data": [
                {"id": model_name, "object": "model", "created": 0, "owned_by": "tunedeck"}]},
                headers=CORS)
        body = await request.body()
        if body and "json" in request.headers.get("content-type", ""):
            try:
                payload = json.loads(body)
            except ValueError:
                return error(400, "the request body is not JSON", "invalid_request_error")
            if isinstance(payload, dict):
                if payload.get("model") not in (None, model_name, engine_model):
                    return error(404, f"this endpoint serves {model_name!r} only",
                                 "model_not_found")
                payload["model"] = engine_model
                body = json.dumps(payload).encode()
        upstream_request = client.build_request(
            request.method, path, params=request.query_params, content=body,
            headers={"content-type": request.headers.get("content-type", "application/json")})
        response = await client.send(upstream_request, stream=True)
        headers = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
        if "text/event-stream" in response.headers.get("content-type", ""):
            async def chunks():
                try:
                    async for chunk in response.aiter_raw():
                        yield chunk
                finally:
                    await response.aclose()
            return StreamingResponse(chunks(), status_code=response.status_code,
                                     headers={**headers, **CORS})
        content = await response.aread()
        await response.aclose()
        try:
            data = json.loads(content)
            if isinstance(data, dict) and data.get("model") == engine_model:
                data["model"] = model_name
                content = json.dumps(data).encode()
        except ValueError:
            pass
        return Response(content, status_code=response.status_code, headers={**headers, **CORS})

    return Starlette(routes=[
        Route("/health", health),
        Route("/v1/{path:path}", openai, methods=["GET", "POST", "OPTIONS"]),
    ])
