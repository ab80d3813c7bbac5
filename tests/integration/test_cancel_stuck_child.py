"""Cancel works whatever the training process is doing: the worker watches the cancel flag and,
past the grace period, terminates the child's process group, then kills it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from app.core.config import settings
from app.core.db import session_scope
from app.domain.models import Run, RunStatus
from tests.factories import add_run
from worker import children, tasks

STUBBORN = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)\n"
POLITE = "import time\ntime.sleep(600)\n"


@pytest.fixture
def running_run(migrated_app, monkeypatch):
    monkeypatch.setattr(settings, "cancel_grace_s", 1.0)
    monkeypatch.setattr(tasks, "KILL_AFTER_TERM_S", 2)
    with session_scope() as session:
        run = add_run(session, status=RunStatus.running, name="stuck")
        return run.id


def set_cancel(run_id: int) -> None:
    with session_scope() as session:
        session.get(Run, run_id).cancel_requested = True


def start(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], preexec_fn=children.die_with_parent)


@pytest.mark.parametrize(("code", "exit_code"), [(POLITE, -signal.SIGTERM),
                                                 (STUBBORN, -signal.SIGKILL)])
def test_a_cancelled_child_is_terminated_then_killed_within_a_deadline(running_run, code,
                                                                        exit_code):
    child = start(code)
    set_cancel(running_run)
    started = time.monotonic()
    try:
        returned = tasks.wait_heartbeating(
            child, Run, running_run, cancelled=lambda: tasks._cancel_requested(running_run))
    finally:
        child.kill()
    assert returned == exit_code
    assert time.monotonic() - started < 60


def test_without_a_cancel_the_child_runs_to_its_end(running_run):
    child = start("import time\ntime.sleep(3)\n")
    code = tasks.wait_heartbeating(child, Run, running_run,
                                   cancelled=lambda: tasks._cancel_requested(running_run))
    assert code == 0


TORCHRUN_LIKE = ("import signal, sys, time\n"
                 "signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))\ntime.sleep(600)\n")


def test_a_child_that_exits_with_an_error_when_terminated_after_a_cancel_is_cancelled(
        running_run):
    # torchrun answers the SIGTERM of a cancel whose ranks had not reached a step with exit
    # code 1: the run is still cancelled as asked, not failed.
    child = start(TORCHRUN_LIKE)
    set_cancel(running_run)
    try:
        code = tasks.wait_heartbeating(
            child, Run, running_run, cancelled=lambda: tasks._cancel_requested(running_run))
    finally:
        child.kill()
    assert code == 1
    assert tasks._cancelled_after_kill(running_run, code)
    with session_scope() as session:
        run = session.get(Run, running_run)
        assert run.status == RunStatus.cancelled, run.error
        assert "exited with code 1 while stopping after the cancel" in run.error


def test_a_child_that_fails_without_a_cancel_is_not_taken_for_cancelled(running_run):
    assert not tasks._cancelled_after_kill(running_run, 1)
    with session_scope() as session:
        assert session.get(Run, running_run).status == RunStatus.running
