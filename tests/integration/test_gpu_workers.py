"""`tunedeck worker --gpus 0,1` on a CPU machine: two real Celery workers start, each pinned to
its GPU index and listening on the default queue plus its own, and answer the broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.postgres  # needs Redis: control commands ride on the broker
BROKER = os.environ.get("TUNEDECK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15").rsplit("/", 1)[0]
BROKER += "/14"  # its own database: the shared live server's worker must not answer


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _active_queues(deadline: float) -> dict[str, list[str]]:
    from app.core.celery_app import create_celery
    from app.core.config import Settings

    app = create_celery(Settings(broker_url=BROKER))
    replies: dict = {}
    while time.monotonic() < deadline:
        replies = app.control.inspect(timeout=2).active_queues() or {}
        if len(replies) >= 2:
            break
        time.sleep(1)
    return {name: sorted(q["name"] for q in queues) for name, queues in replies.items()}


def test_gpus_flag_starts_one_pinned_worker_per_gpu(tmp_path):
    import redis

    redis.Redis.from_url(BROKER).flushdb()
    env = {**os.environ, "TUNEDECK_DATA_DIR": str(tmp_path), "TUNEDECK_BROKER_URL": BROKER,
           "CUDA_VISIBLE_DEVICES": "stale"}
    env.pop("TUNEDECK_DATABASE_URL", None)
    log = open(tmp_path / "workers.log", "wb")  # noqa: SIM115 (closed below)
    cli = subprocess.Popen([sys.executable, "-m", "app.cli", "worker", "--gpus", "0,1"], cwd=ROOT,
                           env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        queues = _active_queues(time.monotonic() + 90)
        workers = _children(cli.pid)
        pinned = sorted(_environ(pid).get("CUDA_VISIBLE_DEVICES", "") for pid in workers)
        assert pinned == ["0", "1"], pinned
        by_prefix = {name.split("-", 1)[0]: q for name, q in queues.items()}
        assert by_prefix == {"gpu0": ["gpu-0", "training"], "gpu1": ["gpu-1", "training"]}, (
            queues, (tmp_path / "workers.log").read_text(errors="replace")[-3000:])
        # docker-compose.yml's worker health check, as the container's shell would run it.
        compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
        kind, check = compose["services"]["worker"]["healthcheck"]["test"]
        assert kind == "CMD-SHELL"
        health = subprocess.run(["sh", "-c", check.replace("$$", "$")], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
        assert health.returncode == 0, health.stdout + health.stderr
    finally:
        workers = _children(cli.pid) if cli.poll() is None else []
        cli.send_signal(signal.SIGINT)  # the CLI stops its workers on Ctrl-C
        try:
            cli.wait(timeout=30)
        except subprocess.TimeoutExpired:
            cli.kill()
        for pid in workers:  # never leave a worker behind, even if the CLI could not stop it
            try:
                if _environ(pid).get("TUNEDECK_DATA_DIR") == str(tmp_path):  # still ours
                    os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, FileNotFoundError, PermissionError):
                pass
        log.close()
