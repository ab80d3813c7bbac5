"""Request body limits, enforced as bytes arrive: a JSON or form body past
``settings.max_json_kb``, or a multipart upload past ``settings.max_upload_mb`` (plus room for its
headers and fields), is answered 413 with the limit named, before it is buffered."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import settings
from app.core.numbers import parse_count

# What a multipart body may carry besides the file: part headers, the boundary, a name field.
MULTIPART_OVERHEAD = 1024 * 1024


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    def _limit(scope: Scope) -> tuple[int, str]:
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        if content_type.startswith("multipart/form-data"):
            limit = (settings.max_upload_mb << 20) + MULTIPART_OVERHEAD
            return limit, (f"the upload is larger than the {settings.max_upload_mb} MB limit "
                           "(TUNEDECK_MAX_UPLOAD_MB): split the dataset or raise the limit")
        limit = settings.max_json_kb << 10
        return limit, (f"the request body is larger than the {limit >> 10} KB limit for JSON and "
                       "form requests (TUNEDECK_MAX_JSON_KB); upload datasets as files instead")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit, message = self._limit(scope)
        declared = parse_count(dict(scope.get("headers") or []).get(b"content-length", b"")
                               .decode("latin-1"))
        if declared is not None and declared > limit:
            await _refuse(send, message)
            return
        received, refused = 0, False

        async def counted() -> Message:
            # Past the limit: answer 413 now, and tell the app the client went away.
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > limit:
                    refused = True
                    await _refuse(send, message)
                    return {"type": "http.disconnect"}
            return event

        async def guarded(event: Message) -> None:
            if not refused:  # after a 413, whatever the app answers is dropped
                await send(event)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not refused:  # the app failing on the cut-off body is expected
                raise


async def _refuse(send: Send, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
