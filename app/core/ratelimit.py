"""Per-client throttling of failed logins and bearer tokens: after ``max_failures`` misses within
``window_s`` a client gets 429 with Retry-After, right token or not, until its oldest miss ages
out. In memory, per web process: it slows guessing from 40 tries a second to 10 a minute."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque


class FailureLimiter:
    def __init__(self, *, max_failures: int = 10, window_s: float = 60,
                 max_clients: int = 10_000) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str, now: float | None = None) -> int | None:
        """Seconds until ``client`` may try again, or None when it may now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            misses = self._recent(client, now)
            if misses is None or len(misses) < self.max_failures:
                return None
            return max(1, math.ceil(misses[0] + self.window_s - now))

    def fail(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            misses = self._recent(client, now)
            if misses is None:
                misses = self._failures[client] = deque(maxlen=self.max_failures)
                while len(self._failures) > self.max_clients:
                    self._failures.popitem(last=False)
            misses.append(now)
            self._failures.move_to_end(client)

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()

    def _recent(self, client: str, now: float) -> deque[float] | None:
        misses = self._failures.get(client)
        while misses and misses[0] <= now - self.window_s:
            misses.popleft()
        return misses


# Shared by the bearer check (core/security.py) and the login form (api/routes/auth.py).
AUTH_FAILURES = FailureLimiter()
