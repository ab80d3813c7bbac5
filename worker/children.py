"""How the worker starts the processes that do its heavy work: training, evaluation, export.

Each child leads a session of its own (so a cancel can signal everything it started), dies with
the worker (``PR_SET_PDEATHSIG``), and appends its output to a log file.

On a worker without CUDA, ``python -m worker.<module> ARGS`` children are forked from a *warm*
process that has already imported torch, transformers, PEFT, TRL and datasets
(``worker/warm_imports.py``, through multiprocessing's fork server), so a run, an evaluation or
an export starts its own work in about a second instead of after ~10 s of imports on a CPU
machine. Each child is still a process of its own, freed when it exits. ``TUNEDECK_WARM_START``:
``auto`` (warm where no CUDA device is offered), ``on``, ``off``. With CUDA each child is a fresh
interpreter: unsloth must be imported before transformers, and a process must not fork once CUDA
is initialised. torchrun commands (several processes per run) always start fresh.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Protocol

from app.core.config import settings
from app.domain import placement

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG, PR_SET_NAME = 1, 15
# Modules whose children may be forked warm: they import unsloth, if at all, only on CUDA.
# Their process names (what `top` and `ps -o comm` show of a warm child; 15 bytes at most).
WARM_MODULES = {"worker.train_process": "tunedeck-train", "worker.evaluation.runner":
                "tunedeck-eval", "worker.exports.runner": "tunedeck-export"}
PRELOAD = ["worker.warm_imports"]


class Child(Protocol):
    """What the worker needs of a child: subprocess.Popen's pid, wait and returncode."""

    @property
    def pid(self) -> int | None: ...  # None while a warm child is still starting

    @property
    def returncode(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def die_with_parent() -> None:
    """In a new child: SIGKILL when its parent exits (no orphan trains on), and a session of its
    own (its helpers and sandboxes are signalled with it)."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setsid()


def environment(devices: list[str] | tuple[str, ...] = ()) -> dict[str, str]:
    """A child's environment: the worker's, unbuffered, and the GPUs among ``devices`` (those
    reserved for a run) as the only ones it sees."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    gpus = [device.split(":", 1)[1] for device in devices if device.startswith("cuda:")]
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    return env


def start(command: list[str], *, log_path: Path, env: dict[str, str]) -> Child:
    """Start ``command`` (``[sys.executable, "-m", module, *args]`` or any other), its output
    appended to ``log_path``, with exactly the environment ``env``. Returns at once: a warm start
    waits for the warm process's imports in the background (the caller heartbeats meanwhile)."""
    module = _warm_module(command)
    if module is not None and warm_enabled():
        return _Warm(command, module, log_path=log_path, env=env)
    return _fresh(command, log_path=log_path, env=env)


def _fresh(command: list[str], *, log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                preexec_fn=die_with_parent, env=env)


def _warm_module(command: list[str]) -> str | None:
    if len(command) >= 3 and command[0] == sys.executable and command[1] == "-m" \
            and command[2] in WARM_MODULES:
        return command[2]
    return None


@functools.cache
def warm_enabled() -> bool:
    if settings.warm_start == "off" or not sys.platform.startswith("linux"):
        return False
    return settings.warm_start == "on" or placement.local_devices().kind != "cuda"


def prewarm() -> None:
    """Start the warm process now (it imports in the background), so the first run is quick too."""
    if warm_enabled():
        try:
            _context()  # sets what it preloads
            multiprocessing.forkserver.ensure_running()
        except Exception:
            log.exception("the warm process did not start: children start fresh until it does")


@functools.cache
def _context() -> multiprocessing.context.BaseContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


class _Warm:
    """A child forked from the warm process, started on a thread of its own (the first one waits
    until the warm process has imported everything), else, should that fail, a fresh one."""

    def __init__(self, command: list[str], module: str, *, log_path: Path,
                 env: dict[str, str]) -> None:
        self._started = threading.Event()
        self._child: multiprocessing.process.BaseProcess | subprocess.Popen[bytes] | None = None
        self._lifeline = None
        self._lock = threading.Lock()
        self._pending: int | None = None  # a signal sent while the child was still starting
        _RUNNING.add(self)
        threading.Thread(target=self._start, args=(command, module, log_path, env), daemon=True,
                         name=f"start {module}").start()

    def _start(self, command: list[str], module: str, log_path: Path,
               env: dict[str, str]) -> None:
        child: multiprocessing.process.BaseProcess | subprocess.Popen[bytes] | None = None
        try:
            # The child's parent is the fork server, which outlives a killed worker while it has
            # children: the child watches this pipe instead, whose only writer is this worker.
            watched, self._lifeline = _context().Pipe(duplex=False)
            process = _context().Process(
                target=_enter, args=(module, command[3:], dict(env), str(log_path), watched,
                                     WARM_MODULES.get(module, module)),
                name=" ".join(command[2:]))
            process.start()
            watched.close()
            child = process
        except Exception:  # the fork server is broken: a fresh interpreter still works
            log.exception("starting %s from the warm process failed: starting it fresh", module)
            child = _fresh(command, log_path=log_path, env=env)
        finally:
            with self._lock:
                self._child = child
                pending = self._pending
            self._started.set()
        if pending is not None and child is not None and child.pid:  # sent while it started
            _kill_session(child.pid, pending)

    def signal_group(self, signum: int) -> None:
        """``signum`` to the child's session; kept for the child while it is still starting."""
        with self._lock:
            if self._child is None:
                self._pending = signum
                return
            pid = self._child.pid
        if pid:
            _kill_session(pid, signum)

    @property
    def pid(self) -> int | None:
        return None if self._child is None else self._child.pid

    @property
    def returncode(self) -> int | None:
        child = self._child
        if isinstance(child, subprocess.Popen):
            return child.poll()
        return None if child is None else child.exitcode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._started.wait(timeout):
            raise subprocess.TimeoutExpired("a warm child still starting", timeout or 0)
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        child = self._child
        if isinstance(child, subprocess.Popen):
            code = child.wait(left)
        else:
            child.join(left)  # type: ignore[union-attr]
            if child.exitcode is None:  # type: ignore[union-attr]
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
            code = child.exitcode  # type: ignore[union-attr]
        _RUNNING.discard(self)
        if self._lifeline is not None:
            self._lifeline.close()
        return code


_RUNNING: set[_Warm] = set()


def signal_group(child: Child, signum: int) -> None:
    """``signum`` to ``child`` and everything it started (its session: its helpers and
    sandboxes), also to a warm child still starting (it gets the signal once it exists)."""
    if isinstance(child, _Warm):
        child.signal_group(signum)
    elif child.pid:
        _kill_session(child.pid, signum)


def _kill_session(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:  # a just-forked child that has not called setsid yet
            os.kill(pid, signum)


def _enter(module: str, args: list[str], env: dict[str, str], log_path: str, watched,  # type: ignore[no-untyped-def]
           name: str) -> None:
    """In the forked child: what ``python -m module args`` with that environment and output
    would be, minus the imports already done."""
    die_with_parent()  # should the fork server die
    threading.Thread(target=_die_with_worker, args=(watched,), daemon=True,
                     name="die-with-worker").start()
    with contextlib.suppress(OSError):  # its command line is the fork server's
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(
            PR_SET_NAME, name.encode()[:15])
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    for stream in (sys.stdout, sys.stderr):  # PYTHONUNBUFFERED's effect, as a fresh child has
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(line_buffering=True, write_through=True)  # type: ignore[union-attr]
    os.environ.clear()
    os.environ.update(env)
    if threads := env.get("OMP_NUM_THREADS", "").strip():  # read by OpenMP when torch loaded
        with contextlib.suppress(ImportError, ValueError):
            import torch

            torch.set_num_threads(int(threads))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def _die_with_worker(watched) -> None:  # type: ignore[no-untyped-def]
    """Kill this child's session once the worker is gone (its end of the pipe closed)."""
    with contextlib.suppress(EOFError, OSError):
        while True:
            watched.recv_bytes()
    os.killpg(os.getpgid(0), signal.SIGKILL)


@atexit.register  # runs before multiprocessing's own exit handler, which would wait for them
def _kill_running() -> None:
    """The worker is exiting: its warm children go with it, as fresh ones do (PDEATHSIG)."""
    for child in list(_RUNNING):
        if child.pid and child.returncode is None:
            with contextlib.suppress(OSError):
                os.killpg(child.pid, signal.SIGKILL)
