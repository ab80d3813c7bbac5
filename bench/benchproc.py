"""What every benchmark shares: the processes it starts are stopped, whole process group and all,
on success, failure and Ctrl-C; each side's CPU time is measured beside wall time; and the
machine's load average is printed at start and end, so a busy machine cannot fool a figure.

    with Children() as children:
        server = children.start([...])
        ...
    # the server and everything it started are gone here, however the block ended

A benchmark script puts its own directory first on sys.path (``python bench/x.py``), so this
module is imported as ``benchproc``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from typing import Any

import psutil


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} cores"


def busy() -> bool:
    """Load above the core count: then CPU-time ratios, not wall-clock ones, are the headline."""
    return os.getloadavg()[0] > (os.cpu_count() or 1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and all its live descendants so far."""
    total = 0.0
    try:
        process = psutil.Process(pid)
        family = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = member.cpu_times()
            total += times.user + times.system
    return total


class Children:
    """Starts benchmark processes and, on exit, stops each one with every descendant it has
    (found by parent pid, so a grandchild in its own session is found too): SIGTERM, then SIGKILL
    for what is left after ``grace_s``. Children stay in the benchmark's process group, so a test
    can check that the group is empty once the benchmark has exited."""

    def __init__(self, grace_s: float = 15.0) -> None:
        self.grace_s = grace_s
        self.processes: list[subprocess.Popen] = []
        self._previous: Any = None

    def start(self, args: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        process = subprocess.Popen(list(args), **kwargs)
        self.processes.append(process)
        return process

    def run(self, args: Sequence[str], *, timeout: float | None = None, check: bool = False,
            **kwargs: Any) -> subprocess.CompletedProcess:
        """``subprocess.run``, but stopped with the others on Ctrl-C or failure."""
        if kwargs.pop("capture_output", False):
            kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
        process = self.start(args, **kwargs)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        finally:
            self.stop(process)
        done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        if check:
            done.check_returncode()
        return done

    def __enter__(self) -> Children:
        # SIGTERM (a CI timeout, kill) unwinds like Ctrl-C, so the exit below still runs.
        self._previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
        signal.signal(signal.SIGTERM, self._previous or signal.SIG_DFL)

    def stop(self, process: subprocess.Popen) -> None:
        self._stop_trees([process])

    def stop_all(self) -> None:
        self._stop_trees(self.processes)

    def _stop_trees(self, processes: list[subprocess.Popen]) -> None:
        family: list[psutil.Process] = []
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                root = psutil.Process(process.pid)
                family += [root, *root.children(recursive=True)]
        for member in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.terminate()
        _, alive = psutil.wait_procs(family, timeout=self.grace_s)
        for member in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        psutil.wait_procs(alive, timeout=5)
        for process in processes:  # reap, so no zombie is left either
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def group_members(pgid: int) -> list[int]:
    """Pids still in process group ``pgid``."""
    found = []
    for pid in psutil.pids():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pgid:
                found.append(pid)
    return found
