"""`tunedeck worker --gpus 0,1` keeps its GPUs served: SIGKILL one worker and the CLI starts it
again (logged), while the other worker and the CLI itself carry on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT
from tests.integration.test_gpu_workers import BROKER, _children, _environ

pytestmark = pytest.mark.postgres  # needs Redis, like test_gpu_workers


def _gpu_of(pid: int) -> str | None:
    try:
        return _environ(pid).get("CUDA_VISIBLE_DEVICES", "")
    except (ProcessLookupError, FileNotFoundError):  # exited meanwhile (or a zombie)
        return None


def test_a_killed_gpu_worker_is_restarted_and_the_others_keep_running(tmp_path):
    import redis

    redis.Redis.from_url(BROKER).flushdb()
    env = {**os.environ, "TUNEDECK_DATA_DIR": str(tmp_path), "TUNEDECK_BROKER_URL": BROKER}
    env.pop("TUNEDECK_DATABASE_URL", None)
    log_path = tmp_path / "workers.log"
    log = open(log_path, "wb")  # noqa: SIM115 (closed below)
    cli = subprocess.Popen([sys.executable, "-m", "app.cli", "worker", "--gpus", "0,1"], cwd=ROOT,
                           env=env, stdout=log, stderr=subprocess.STDOUT)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while len(_children(cli.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        first = {_gpu_of(pid): pid for pid in _children(cli.pid)}
        seen.update(first.values())
        os.kill(first["0"], signal.SIGKILL)
        deadline = time.monotonic() + 60
        now: dict[str, int] = {}
        while time.monotonic() < deadline:
            now = {_gpu_of(pid): pid for pid in _children(cli.pid)}
            seen.update(now.values())
            if now.get("0") not in (None, first["0"]):
                break
            time.sleep(0.2)
        assert now.get("0") not in (None, first["0"]), log_path.read_text(errors="replace")
        assert now["1"] == first["1"]  # the other GPU's worker was left alone
        assert cli.poll() is None
        text = log_path.read_text(errors="replace")
        assert "worker gpu0 exited with code -9; restarting it in 1 s" in text
        assert "worker gpu0 restarted (restart 1" in text
    finally:
        cli.send_signal(signal.SIGINT)
        try:
            cli.wait(timeout=30)
        except subprocess.TimeoutExpired:
            cli.kill()
        for pid in seen:
            try:
                if _environ(pid).get("TUNEDECK_DATA_DIR") == str(tmp_path):
                    os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, FileNotFoundError, PermissionError):
                pass
        log.close()
