"""No benchmark leaves a process behind: bench/overhead.py (a TuneDeck server with its workers and
training children, plus a bare TRL script) is run in its own process group, which must be empty
once it has exited, after finishing and after Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
OVERHEAD = [sys.executable, str(ROOT / "bench" / "overhead.py")]
# The smallest run that still measures both sides: the TuneDeck side first (its run builds the
# model, so no uncounted run), one warm-up step, rates between steps 2 and 3.
SMALL = ("--steps", "3", "--warmup", "1", "--first", "tunedeck", "--rounds", "1")


def group(pgid: int) -> list[str]:
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        with contextlib.suppress(ProcessLookupError, PermissionError, psutil.Error):
            if os.getpgid(process.pid) == pgid and process.info["status"] != "zombie":
                found.append(" ".join(process.info["cmdline"] or [])[:200])
    return found


def settled_group(pgid: int, timeout: float = 10) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := group(pgid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def start_bench(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for key in ("TUNEDECK_DATABASE_URL", "TUNEDECK_BROKER_URL", "TUNEDECK_STORAGE_URL"):
        env.pop(key, None)
    return subprocess.Popen([*OVERHEAD, *args], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


@pytest.mark.slow
def test_overhead_bench_leaves_its_process_group_empty_after_ctrl_c() -> None:
    bench = start_bench(*SMALL)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # until the server's Celery worker is up
            tree = psutil.Process(bench.pid).children(recursive=True)
            if any("celery" in " ".join(p.cmdline()) for p in tree):
                break
            time.sleep(0.5)
        else:
            pytest.fail("the benchmark's server never started a worker")
        assert group(bench.pid)  # the server and its workers share the bench's group
        os.killpg(bench.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        bench.communicate(timeout=120)
        assert settled_group(bench.pid) == []
    finally:
        kill_group(bench.pid)


@pytest.mark.slow
def test_overhead_bench_leaves_its_process_group_empty_when_done() -> None:
    bench = start_bench(*SMALL)
    try:
        output, _ = bench.communicate(timeout=900)
        assert bench.returncode == 0, output[-3000:]
        assert "tokens/step" in output and "load average at end" in output
        assert settled_group(bench.pid) == []
    finally:
        kill_group(bench.pid)
