"""The worker's children, forked from the warm process or started fresh, behave the same: output
appended to their log, exactly the environment given, a session of their own, their exit status
(a signal's as its negative), and death with the worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from app.core.config import settings
from tests.conftest import ROOT
from worker import children

PROBE = "tests.warm_probe"


@pytest.fixture(params=["on", "off"])
def mode(request, monkeypatch):
    monkeypatch.setattr(settings, "warm_start", request.param)
    monkeypatch.setattr(children, "WARM_MODULES", {**children.WARM_MODULES, PROBE: "warm-probe"})
    children.warm_enabled.cache_clear()
    yield request.param
    children.warm_enabled.cache_clear()


def probe(*args: str) -> list[str]:
    return [sys.executable, "-m", PROBE, *args]


def said(log_path) -> dict:
    return json.loads(log_path.read_text().splitlines()[0])


def test_a_child_gets_its_arguments_environment_log_and_exit_code(mode, tmp_path, monkeypatch):
    monkeypatch.setenv("PROBE_WORKER_ONLY", "the worker's, not given to the child")
    log_path = tmp_path / "child.log"
    log_path.write_text("")  # appended to, as a resumed run's train.log is
    env = {k: v for k, v in os.environ.items() if k != "PROBE_WORKER_ONLY"}
    child = children.start(probe("3"), log_path=log_path, env={**env, "PROBE_ENV": "given"})
    assert child.wait(timeout=120) == 3 and child.returncode == 3
    first = said(log_path)
    assert first["warm"] is (mode == "on")  # torch came imported: no import time spent
    assert first["argv"] == ["3"] and first["probe_env"] == "given"
    assert first["worker_only"] is None
    assert first["name"] == ("warm-probe" if mode == "on" else "python")  # not the fork server's
    assert first["sid"] == first["pid"] == child.pid  # its own session: killpg reaches it all
    assert "to stderr" in log_path.read_text()

    children.start(probe("0"), log_path=log_path, env=env).wait(timeout=120)
    assert len(log_path.read_text().splitlines()) == 4  # appended, not truncated


def test_waiting_times_out_and_a_signal_is_its_negative(mode, tmp_path):
    log_path = tmp_path / "child.log"
    child = children.start(probe("0", "600"), log_path=log_path, env=dict(os.environ))
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(timeout=0.5)
    assert child.returncode is None
    deadline = time.monotonic() + 120
    while (not log_path.exists() or not log_path.read_text()) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(child.pid, signal.SIGTERM)
    assert child.wait(timeout=30) == -signal.SIGTERM


def test_a_signal_sent_while_a_child_starts_reaches_it(mode, tmp_path):
    # A cancel right after the claim: the warm child may not exist yet (pid None); the signal
    # is kept for it and delivered once it does, not lost until a SIGKILL follows.
    child = children.start(probe("0", "600"), log_path=tmp_path / "child.log",
                           env=dict(os.environ))
    children.signal_group(child, signal.SIGTERM)
    assert child.wait(timeout=120) == -signal.SIGTERM


WORKER = textwrap.dedent("""
    import os, sys, time
    from app.core.config import settings
    from worker import children
    settings.warm_start = sys.argv[1]
    children.WARM_MODULES = {**children.WARM_MODULES, "tests.warm_probe": "warm-probe"}
    child = children.start([sys.executable, "-m", "tests.warm_probe", "0", "600"],
                           log_path=sys.argv[2], env=dict(os.environ))
    print(child.pid is None, flush=True)  # returned before the warm process had imported
    while child.pid is None:  # a warm child is started on a thread
        time.sleep(0.1)
    print(child.pid, flush=True)
    time.sleep(600)
""")


def test_a_child_dies_with_its_worker(mode, tmp_path):
    log_path = tmp_path / "child.log"
    worker = subprocess.Popen([sys.executable, "-c", WORKER, mode, str(log_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        # start() never blocks its caller (who must heartbeat) on the warm process's imports
        assert worker.stdout.readline().strip() == str(mode == "on")
        pid = int(worker.stdout.readline())
        deadline = time.monotonic() + 120
        while (not log_path.exists() or not log_path.read_text()) \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        assert said(log_path)["pid"] == pid
        worker.kill()  # SIGKILL: no handler of its own runs
        worker.wait(timeout=10)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(pid), f"child {pid} outlived its worker"
    finally:
        worker.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_command_that_is_not_a_worker_module_starts_fresh(mode, tmp_path):
    log_path = tmp_path / "child.log"
    child = children.start([sys.executable, "-c", "import sys; print('torch' in sys.modules)"],
                           log_path=log_path, env=dict(os.environ))
    assert isinstance(child, subprocess.Popen) and child.wait(timeout=60) == 0
    assert log_path.read_text().strip() == "False"
