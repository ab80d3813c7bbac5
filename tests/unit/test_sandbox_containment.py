"""Hostile reward code, as an attacker pasted it into a server with custom rewards on: each test
runs the same code that escaped the old subprocess "sandbox" and asserts bubblewrap contained
it, and that the call came back within a deadline."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from app.core.config import Settings, settings
from app.domain.sandbox import CustomRewardError, run_custom_reward

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

# Generous: the machine running the tests may be loaded; a hang would be minutes, not seconds.
DEADLINE_S = 40


def contained(code: str, completions: list | None = None, **kwargs):
    started = time.monotonic()
    try:
        return run_custom_reward(code, completions or ["a"], kwargs, timeout_s=8)
    finally:
        assert time.monotonic() - started < DEADLINE_S


def no_process_with(marker: str) -> bool:
    for status in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in status.read_bytes():
                return False
        except OSError:
            continue
    return True


def wait_until(condition, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_system_secrets_are_not_there():
    code = """
def reward(completions, **kwargs):
    found = []
    for path in ["/etc/shadow", "/etc/passwd", "/root/.bash_history"]:
        try:
            open(path).read()
            found.append(path)
        except OSError:
            pass
    return [float(len(found))]
"""
    assert Path("/etc/passwd").exists()  # so that 0 means "hidden", not "absent here"
    assert contained(code) == [0.0]


def test_the_server_environment_is_out_of_reach():
    # A stand-in for the web process, started with the token in its environment.
    server = subprocess.Popen(["sleep", "60"],
                              env={**os.environ, "TUNEDECK_AUTH_TOKEN": "stolen-token-1234567890"})
    code = """
import glob
def reward(completions, server_pid, **kwargs):
    leaked = 0.0
    for path in [f"/proc/{server_pid[0]}/environ", *glob.glob("/proc/*/environ")]:
        try:
            leaked += "stolen-token" in open(path, errors="replace").read()
        except OSError:
            pass
    return [leaked]
"""
    try:
        assert contained(code, server_pid=[server.pid]) == [0.0]
    finally:
        server.kill()
        server.wait()


def test_the_data_directory_and_database_are_not_visible():
    # A stand-in beside the real database: overwriting tunedeck.db itself corrupted the database
    # of the in-process app for every test that ran after this one.
    secret = settings.resolved_data_dir / "sandbox-probe.db"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_bytes(b"SQLite format 3\x00 pretend")
    code = """
import os
import shutil
def reward(completions, path, **kwargs):
    try:
        data = open(path[0], "rb").read()
    except OSError:
        data = b""
    try:
        open(os.path.join(os.path.dirname(path[0]), "planted"), "w").write("x")
        planted = 1.0
    except OSError:
        planted = 0.0
    return [float(len(data)), planted]
"""
    assert contained(code, ["a", "b"], path=[str(secret)]) == [0.0, 0.0]
    assert not (settings.resolved_data_dir / "planted").exists()


def test_there_is_no_network_not_even_the_servers_loopback():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    code = """
import socket
def reward(completions, port, **kwargs):
    reached = 0.0
    for host, p in [("127.0.0.1", port[0]), ("127.0.0.1", 5432), ("1.1.1.1", 80)]:
        try:
            socket.create_connection((host, p), timeout=2).close()
            reached += 1
        except OSError:
            pass
    return [reached]
"""
    try:
        assert contained(code, port=[port]) == [0.0]
    finally:
        listener.close()


def test_a_setsid_daemon_holding_stdout_neither_hangs_the_call_nor_survives_it():
    code = """
import os, time
def reward(completions, **kwargs):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execvp("sleep", ["sleep", "613.25"])  # keeps stdout and stderr open
        os._exit(0)
    time.sleep(0.5)
    return [1.0]
"""
    assert contained(code) == [1.0]
    assert wait_until(lambda: no_process_with("613.25"))


def test_a_hanging_reward_with_a_daemon_is_killed_whole_at_the_deadline():
    code = """
import os, time
def reward(completions, **kwargs):
    if os.fork() == 0:
        os.setsid()
        os.execvp("sleep", ["sleep", "614.25"])
    while True:
        time.sleep(1)
"""
    with pytest.raises(CustomRewardError, match="timed out after 8 s"):
        contained(code)
    assert wait_until(lambda: no_process_with("614.25"))


def test_writes_are_limited_to_a_small_private_tmpfs():
    code = """
import os
import shutil
def reward(completions, **kwargs):
    written = 0
    try:
        with open("big", "wb") as handle:
            for _ in range(200):
                handle.write(b"x" * (1 << 20))
                written += 1
    except OSError:
        pass
    try:
        open("/usr/evil", "w")
        system = 1.0
    except OSError:
        system = 0.0
    return [float(written), system]
"""
    written, system = contained(code, ["a", "b"])
    assert written <= 64 and system == 0.0


def test_forking_is_bounded():
    code = """
import os, time
def reward(completions, **kwargs):
    children = 0
    try:
        for _ in range(500):
            if os.fork() == 0:
                time.sleep(20)
                os._exit(0)
            children += 1
    except OSError:
        pass
    return [float(children)]
"""
    [children] = contained(code)
    assert children < 40


def test_it_cannot_signal_processes_outside_and_is_not_root():
    victim = subprocess.Popen(["sleep", "60"])
    code = """
import os, signal
def reward(completions, pid, **kwargs):
    hits = 0.0
    for target in (pid[0], 1):
        try:
            os.kill(target, signal.SIGKILL)
            hits += target == pid[0]
        except OSError:
            pass
    try:
        os.setuid(0)
        root = 1.0
    except OSError:
        root = 0.0
    return [hits, root, float(os.getuid())]
"""
    try:
        hits, root, uid = contained(code, ["a", "b", "c"], pid=[victim.pid])
        assert (hits, root, uid) == (0.0, 0.0, 65534.0)
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def test_killing_its_caller_is_not_possible_and_the_caller_survives():
    code = """
import os, signal
def reward(completions, caller, **kwargs):
    try:
        os.kill(caller[0], signal.SIGKILL)
        os.killpg(os.getpgid(caller[0]), signal.SIGKILL)
    except OSError:
        pass
    return [1.0]
"""
    # A child stands in for the web process so that a failure cannot kill the test run.
    caller = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        assert contained(code, caller=[caller.pid]) == [1.0]
        assert caller.poll() is None
    finally:
        os.killpg(caller.pid, signal.SIGKILL)
        caller.wait()


def test_without_bubblewrap_custom_rewards_refuse_to_run_and_to_start(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CustomRewardError, match="apt-get install bubblewrap"):
        run_custom_reward("def reward(c, **k):\n    return [1.0]", ["a"], {})
    with pytest.raises(ValueError, match="apt-get install bubblewrap"):
        Settings(allow_custom_rewards=True)
    assert Settings(allow_custom_rewards=False).allow_custom_rewards is False
