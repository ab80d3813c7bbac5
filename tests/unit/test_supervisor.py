"""The supervisor behind `tunedeck up` and `tunedeck worker --gpus`, with real child processes:
a crashing worker is restarted with a growing back-off and each restart logged while the web
server keeps running; the web server's death stops everything with a non-zero exit."""

from __future__ import annotations

import sys
import threading
import time

from app.supervisor import Child, Supervisor

SLEEP = [sys.executable, "-c", "import time; time.sleep(600)"]
CRASH = [sys.executable, "-c", "import sys; sys.exit(3)"]


def run_in_thread(supervisor: Supervisor) -> tuple[threading.Thread, dict]:
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", supervisor.run()),
                              daemon=True)
    thread.start()
    return thread, result


def wait_for(condition, timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_crashing_worker_is_restarted_with_back_off_and_the_web_keeps_serving():
    logs: list[str] = []
    web = Child("web server", SLEEP, restart=False)
    worker = Child("worker gpu0", CRASH)
    supervisor = Supervisor([web, worker], log=logs.append, poll_s=0.05, backoff_first_s=0.2,
                            backoff_max_s=0.8)
    thread, result = run_in_thread(supervisor)
    try:
        assert wait_for(lambda: worker.restarts >= 4)
        assert web.process.poll() is None  # the dashboard stays up
        assert thread.is_alive()
        delays = [line.split("restarting it in ")[1].split(" s")[0] for line in logs
                  if "restarting it in" in line]
        assert delays[:4] == ["0.2", "0.4", "0.8", "0.8"], logs
        assert any(line.startswith("worker gpu0 restarted (restart 1, pid ") for line in logs)
        assert "worker gpu0 exited with code 3" in logs[0]
    finally:
        web.process.kill()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert result["code"] != 0  # the web server died: whoever started TuneDeck must know
    assert any(line.startswith("web server exited with code") for line in logs)
    assert worker.process.poll() is not None  # and nothing is left running


def test_a_worker_that_stayed_up_starts_its_back_off_again():
    logs: list[str] = []
    flaky = Child("worker", [sys.executable, "-c", "import time, sys; time.sleep(0.6); "
                             "sys.exit(1)"])
    web = Child("web server", SLEEP, restart=False)
    supervisor = Supervisor([web, flaky], log=logs.append, poll_s=0.05, backoff_first_s=0.1,
                            stable_after_s=0.5)
    thread, _ = run_in_thread(supervisor)
    try:
        assert wait_for(lambda: flaky.restarts >= 3)
    finally:
        web.process.kill()
        thread.join(timeout=60)
    delays = {line.split("restarting it in ")[1].split(" s")[0] for line in logs
              if "restarting it in" in line}
    assert delays == {"0.1"}, logs
