"""A local HTTP receiver for notification tests: records every request (time, path, headers,
body) and answers each path as told (status code, and how long to hold the answer)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    answered_at: float = 0.0


@dataclass
class Receiver:
    answers: dict[str, tuple[int, float]] = field(default_factory=dict)  # path -> (status, hold)
    requests: list[Received] = field(default_factory=list)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                item = Received(self.path.split("?")[0], dict(self.headers.items()), body,
                                time.time())
                receiver.requests.append(item)
                status, hold = receiver.answers.get(item.path, (200, 0.0))
                time.sleep(hold)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
                item.answered_at = time.time()

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def url(self, path: str, scheme: str = "json") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    def wait_for(self, predicate, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise AssertionError(f"the receiver did not get what was expected: {self.requests}")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def receiving() -> Iterator[Receiver]:
    """A started receiver, stopped afterwards: the body of a fixture of any scope
    (``yield from receiving()``)."""
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()
