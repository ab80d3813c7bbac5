"""The health rules (app/domain/health.py) on rank 0's curves as they arrive: each warning is
told once per run, as the notification ``run.health_warning``, to the run's notification URLs.

``watch_health`` wraps the reporter: logging a value only appends it to a copy of the few series
the rules read. A background thread checks them every ``CHECK_INTERVAL_S`` while new values
came in (and the tracker mirrors' status, whose failures are health warnings too), and sends
what is new. The end of the run checks once more, so a warning on the last steps is told too.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import asdict
from typing import Any

from app.core.db import session_scope
from app.domain import health, metrics, notify, trackers
from app.domain.models import Run

log = logging.getLogger(__name__)

EVENT = "run.health_warning"
CHECK_INTERVAL_S = 5.0
CLOSE_TIMEOUT_S = 15.0
"""How long the end of the run waits for the last warnings to be sent (then they stay
``pending`` on the run's notifications)."""


def run_flags(series: health.Metrics, run: Run | None) -> list[dict[str, Any]]:
    """Every health flag of the run: its curves' and its tracker mirrors'."""
    flags = [asdict(flag) for flag in health.check_health(series)]
    return flags + (trackers.health_flags(run) if run is not None else [])


def new_flags(flags: list[dict[str, Any]], told: set[str]) -> list[dict[str, Any]]:
    """The flags whose kind (code) was not told yet, each kind once; adds them to ``told``."""
    fresh = []
    for flag in flags:
        if flag["code"] not in told:
            told.add(flag["code"])
            fresh.append(flag)
    return fresh


class HealthWatch:
    def __init__(self, run_id: int, *, interval_s: float = CHECK_INTERVAL_S) -> None:
        self.run_id = run_id
        self.interval_s = interval_s
        self.lock = threading.Lock()
        self.fresh = False
        self.stop = threading.Event()
        with session_scope() as session:
            run = session.get(Run, run_id)
            self.mirrors = bool(run is not None and any((run.trackers or {}).values()))
            # A resumed run: what its earlier attempt logged was watched (and told) by it.
            earlier = metrics.read_series(session, run_ids=[run_id], names=list(health.METRICS))
            self.series: dict[str, list[tuple]] = defaultdict(list, earlier.get(run_id, {}))
            self.told = {flag["code"] for flag in run_flags(self.series, None)}
        self.thread = threading.Thread(target=self._loop, name="health-watch", daemon=True)
        self.thread.start()

    def put(self, step: int, values: dict[str, float]) -> None:
        watched = [(name, value) for name, value in values.items() if name in health.METRICS]
        if watched:
            with self.lock:
                for name, value in watched:
                    self.series[name].append((step, float(value)))
                self.fresh = True

    def close(self) -> None:
        self.stop.set()
        self.thread.join(CLOSE_TIMEOUT_S)

    def check(self) -> None:
        """Send the warnings not told yet (in this thread, so that the end waits for them)."""
        with self.lock:
            series = {name: list(points) for name, points in self.series.items()}
            self.fresh = False
        with session_scope() as session:
            run = session.get(Run, self.run_id) if self.mirrors else None
            flags = run_flags(series, run)
        for flag in new_flags(flags, self.told):
            log.info("run %s: health warning %s: %s", self.run_id, flag["code"], flag["message"])
            notify.notify(self.run_id, EVENT, extra={"warning": flag}, wait=True)

    def _loop(self) -> None:
        while True:
            stopping = self.stop.wait(self.interval_s)
            try:
                if stopping or self.fresh or self.mirrors:
                    self.check()
            except Exception:  # the watch is a courtesy; training never hears of it
                log.exception("checking the health of run %s failed", self.run_id)
            if stopping:
                return


class HealthWatchedReporter:
    """The reporter training talks to, with the health rules watching what it logs."""

    def __init__(self, inner, watch: HealthWatch) -> None:  # type: ignore[no-untyped-def]
        self._inner = inner
        self._watch = watch

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        self._inner.log_metrics(step, values)
        self._watch.put(step, values)

    def close(self, ok: bool = True) -> None:
        self._inner.close(ok)  # the trackers first: a mirror failing at the end is told too
        try:
            self._watch.close()
        except Exception:
            log.exception("closing the health watch failed")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def watch_health(reporter, *, run_id: int):  # type: ignore[no-untyped-def]
    """The reporter, watched by the health rules; unchanged when nobody would be told."""
    with session_scope() as session:
        run = session.get(Run, run_id)
        if run is None or not notify.targets_for(run):
            return reporter
    return HealthWatchedReporter(reporter, HealthWatch(run_id))
