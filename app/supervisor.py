"""Keep ``tunedeck up`` and ``tunedeck worker --gpus`` running when a worker process dies.

A worker that exits is started again after a back-off (1 s, doubling to a minute, reset once it
has stayed up for a minute), and each restart is logged; the run it was training is failed by the
reaper as "worker lost" and can be resumed. The web server is not restarted: if it dies, the
supervisor stops everything and exits non-zero, so that whatever started TuneDeck (systemd,
Docker, a shell) sees the failure.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0
# A worker that stayed up this long starts its next back-off from the beginning.
STABLE_AFTER_S = 60.0


def _log(message: str) -> None:
    print(f"tunedeck: {message}", file=sys.stderr, flush=True)


@dataclass
class Child:
    name: str
    command: list[str]
    env: dict[str, str] | None = None
    restart: bool = True  # False: its exit ends the supervisor (the web server)
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0  # consecutive quick exits, for the back-off
    restart_at: float | None = None
    restarts: int = 0

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, env=self.env)
        self.started_at = time.monotonic()
        self.restart_at = None


@dataclass
class Supervisor:
    children: list[Child]
    log: Callable[[str], None] = _log
    poll_s: float = 0.5
    backoff_first_s: float = BACKOFF_FIRST_S
    backoff_max_s: float = BACKOFF_MAX_S
    stable_after_s: float = STABLE_AFTER_S
    _stopping: bool = field(default=False, init=False)

    def run(self) -> int:
        """Start every child and watch them until Ctrl-C/SIGTERM (0) or the web server dies (1)."""
        previous = signal.getsignal(signal.SIGTERM)
        if _main_thread():
            signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            for child in self.children:
                child.start()
            while not self._stopping:
                code = self.check()
                if code is not None:
                    return code
                time.sleep(self.poll_s)
            return 0
        except KeyboardInterrupt:
            self.log("stopping TuneDeck…")
            return 0
        finally:
            self.stop()
            if _main_thread():
                signal.signal(signal.SIGTERM, previous)

    def check(self) -> int | None:
        """One look at the children: restart what is due; an exit code when it is all over."""
        now = time.monotonic()
        for child in self.children:
            assert child.process is not None
            code = child.process.poll()
            if code is None:
                continue
            if not child.restart:
                self.log(f"{child.name} exited with code {code}: stopping TuneDeck")
                return code or 1
            if child.restart_at is None:
                if now - child.started_at >= self.stable_after_s:
                    child.failures = 0
                delay = min(self.backoff_max_s, self.backoff_first_s * 2 ** child.failures)
                child.failures += 1
                child.restart_at = now + delay
                self.log(f"{child.name} exited with code {code}; restarting it in {delay:g} s "
                         "(its run, if any, fails as 'worker lost' and can be resumed)")
            elif now >= child.restart_at:
                child.start()
                child.restarts += 1
                self.log(f"{child.name} restarted (restart {child.restarts}, "
                         f"pid {child.process.pid})")
        return None

    def stop(self) -> None:
        processes = [c.process for c in self.children
                     if c.process is not None and c.process.poll() is None]
        for process in processes:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _on_sigterm(self, _signum: int, _frame: object) -> None:
        self._stopping = True


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
