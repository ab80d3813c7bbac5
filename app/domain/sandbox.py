"""Run a user's pasted ``def reward(completions, **kwargs) -> list[float]`` in a bubblewrap sandbox.

Each call starts ``bwrap`` (Debian package ``bubblewrap``) around a fresh ``python -I``:

- its own PID namespace (``--unshare-pid``): it sees only its own processes, cannot signal the
  server or the worker, and everything it started dies with it (a ``setsid`` daemon included);
  ``--die-with-parent`` ends it if its caller dies;
- its own network namespace: no network at all, not even the server's loopback;
- a filesystem of read-only system paths only (``/usr`` and the Python installation), a fresh
  ``/dev`` and ``/proc``, and a private size-limited tmpfs at ``/tmp`` as its working directory:
  no ``/etc``, no home, no data directory, no database file;
- uid/gid 65534 (nobody), no capabilities, no_new_privs, an empty environment (PATH and LANG);
- rlimits on CPU seconds, address space, processes and file size, set before user code runs.

Input goes in and the reply comes out through files (never a pipe a grandchild could hold open),
and every wait has a deadline: past it the whole sandbox is SIGKILLed. What it does not protect
against is in the README ("Security").
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from app.core.config import settings
from app.domain.rewards.extract import completion_text

# Caps what the child may write to files, its redirected prints included (writes past it
# fail with "File too large": Python ignores SIGXFSZ).
_OUTPUT_MB = 16
# The private /tmp the reward may write to.
_TMPFS_MB = 64
# Processes (threads count too) the sandbox user may have at once.
_MAX_PROCESSES = 32
# How long a killed sandbox gets to disappear before the caller gives up waiting on it.
_REAP_S = 5
_NOBODY = 65534
# TRL passes these along with the dataset columns; they mean nothing to pasted code.
_TRAINER_KWARGS = {"completion_ids", "trainer_state", "log_extra", "log_metric", "environments"}
INSTALL_HINT = (
    "custom reward functions run under bubblewrap, which is not installed: install it "
    "(Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap) or set "
    "TUNEDECK_ALLOW_CUSTOM_REWARDS=false"
)

_CHILD = r"""
import ctypes, json, os, resource, sys, traceback

def drop_privileges():
    # Run by root, bwrap keeps no user namespace: drop every capability from the bounding set
    # (PR_CAPBSET_DROP), then become nobody, which clears the permitted and effective sets.
    if os.getuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in range(64):
        libc.prctl(24, cap, 0, 0, 0)
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)

def as_number(value):
    if value is None or isinstance(value, (bool, int, float)):
        return value if value is None else float(value)
    if not isinstance(value, (str, bytes)) and hasattr(type(value), "__float__"):
        return float(value)  # numpy and torch scalars
    return {"repr": repr(value)[:80]}

def run(payload, memory_mb):
    try:
        code = compile(payload["code"], "<reward>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return {"error": f"custom reward has a syntax error at line {exc.lineno}: {exc.msg}"}
    namespace = {"__name__": "__reward__"}
    try:
        exec(code, namespace)
        reward = namespace.get("reward")
        if not callable(reward):
            return {"error": "code does not define reward(completions, **kwargs)"}
        values = reward(payload["completions"], **payload["kwargs"])
        if hasattr(values, "tolist"):
            values = values.tolist()
        if not isinstance(values, (list, tuple)):
            kind = type(values).__name__
            return {"error": f"custom reward must return a list of numbers, got {kind}"}
        return {"rewards": [as_number(v) for v in values]}
    except MemoryError:
        return {"error": f"custom reward exceeded the {memory_mb} MB memory limit"}
    except BaseException as exc:
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__)
                 if f.filename == "<reward>"]
        where = f" at line {lines[-1]}" if lines else ""
        detail = f": {str(exc)[:300]}" if str(exc) else ""
        return {"error": f"custom reward raised {type(exc).__name__}{detail}{where}"}

cpu_s, memory_mb, output_mb, processes = (int(arg) for arg in sys.argv[1:5])
payload = json.loads(sys.stdin.buffer.read())
reply = os.fdopen(os.dup(1), "w")
drop_privileges()
resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
resource.setrlimit(resource.RLIMIT_FSIZE, (output_mb << 20, output_mb << 20))
resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
# The reply gets a private descriptor; prints from the user's code go to stderr.
os.dup2(2, 1)
sys.stdin.close()
reply.write(json.dumps(run(payload, memory_mb)))
reply.close()
"""


class CustomRewardError(Exception):
    """A custom reward failed; the message is meant for the user."""


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def run_custom_reward(
    code: str,
    completions: list,
    kwargs: dict,
    *,
    timeout_s: float = 10,
    cpu_s: int = 10,
    memory_mb: int = 512,
) -> list[float | None]:
    """Call ``reward(completions, **kwargs)`` from ``code`` in a fresh sandbox (see the module)."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise CustomRewardError(INSTALL_HINT)
    try:
        payload = json.dumps({"code": code, "completions": completions, "kwargs": kwargs})
    except (TypeError, ValueError, RecursionError) as exc:
        raise CustomRewardError(f"custom reward inputs are not plain JSON data: {exc}") from None
    limits = [str(int(cpu_s)), str(int(memory_mb)), str(_OUTPUT_MB), str(_MAX_PROCESSES)]
    command = [*sandbox_prefix(bwrap), sys.executable, "-I", "-c", _CHILD, *limits]
    with tempfile.TemporaryDirectory(prefix="tunedeck-reward-", ignore_cleanup_errors=True) as io:
        paths = {name: Path(io, name) for name in ("in", "out", "err")}
        paths["in"].write_text(payload, encoding="utf-8")
        with (paths["in"].open("rb") as stdin, paths["out"].open("wb") as stdout,
              paths["err"].open("wb") as stderr):
            process = subprocess.Popen(
                command, stdin=stdin, stdout=stdout, stderr=stderr,
                cwd=io, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                start_new_session=True,
            )
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                stop_sandbox(process)
                raise CustomRewardError(f"custom reward timed out after {timeout_s:g} s") from None
            finally:
                stop_sandbox(process)
        out = _head(paths["out"], _OUTPUT_MB << 20)
        reply = _read_reply(out, process.returncode, paths["err"], cpu_s=cpu_s)
    if "error" in reply:
        raise CustomRewardError(str(reply["error"]))
    return _checked_rewards(reply.get("rewards"), len(completions))


def sandbox_prefix(bwrap: str) -> list[str]:
    """The ``bwrap`` arguments every custom reward runs under (see the module docstring)."""
    args = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv",
            "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8",
            "--setenv", "HOME", "/tmp"]
    if os.geteuid() == 0:
        # No user namespace: the child drops to nobody itself and needs these to do so.
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    else:
        args += ["--unshare-user", "--uid", str(_NOBODY), "--gid", str(_NOBODY)]
    args += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top = Path("/", name)
        if top.is_symlink():
            args += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            args += ["--ro-bind", str(top), str(top)]
    for root in _python_roots():
        for parent in reversed(root.parents[:-1]):
            args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", str(root), str(root)]
    args += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--size", str(_TMPFS_MB << 20), "--tmpfs", "/tmp"]
    for private in _private_dirs():
        # A data directory inside a bound path (say a venv next to it) is hidden under a tmpfs.
        args += ["--tmpfs", str(private)]
    return [*args, "--chdir", "/tmp"]


def _python_roots() -> list[Path]:
    """The Python installation outside /usr: prefixes and site-packages, outermost first."""
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix,
                  str(Path(sys.executable).resolve().parent.parent),
                  *(sysconfig.get_paths().get(key, "") for key in ("purelib", "platlib"))}
    roots: list[Path] = []
    for path in sorted({Path(c).resolve() for c in candidates if c}, key=lambda p: len(p.parts)):
        outside_usr = path.is_dir() and path.parts[1:2] != ("usr",) and path != Path("/")
        if outside_usr and not any(root == path or root in path.parents for root in roots):
            roots.append(path)
    return roots


def _private_dirs() -> list[Path]:
    data = settings.data_dir.expanduser().resolve()
    bound = [Path("/usr"), *_python_roots()]
    return [data] if any(b == data or b in data.parents for b in bound) else []


def stop_sandbox(process: subprocess.Popen) -> None:
    """SIGKILL the sandbox (its PID namespace goes with its bwrap) and reap it, with a deadline."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=_REAP_S)


def _head(path: Path, limit: int) -> bytes:
    with path.open("rb") as handle:
        return handle.read(limit)


def _read_reply(out: bytes, returncode: int, stderr_path: Path, *, cpu_s: int) -> dict:
    try:
        reply = json.loads(out)
    except ValueError:
        reply = None
    if isinstance(reply, dict) and ("error" in reply or "rewards" in reply):
        return reply
    if returncode > 128 and (returncode - 128) in signal.valid_signals():
        returncode = 128 - returncode  # bwrap reports a signalled reward as 128 + its number
    if returncode == -signal.SIGXCPU:
        return {"error": f"custom reward used more than its {cpu_s} s of CPU time"}
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return {"error": f"custom reward process was killed by signal {name}"}
    message = f"custom reward process exited with code {returncode}"
    with stderr_path.open("rb") as handle:
        handle.seek(max(0, stderr_path.stat().st_size - 500))
        tail = handle.read().decode("utf-8", "replace").strip()
    return {"error": f"{message}: {tail}" if tail else message}


def _checked_rewards(rewards: Any, expected: int) -> list[float | None]:
    if not isinstance(rewards, list):
        raise CustomRewardError("custom reward must return a list of numbers")
    if len(rewards) != expected:
        raise CustomRewardError(
            f"custom reward returned {len(rewards)} values for {expected} completions"
        )
    for index, value in enumerate(rewards):
        if value is None:  # TRL reads None as "not applicable to this completion"
            continue
        if isinstance(value, dict) or not isinstance(value, float):
            shown = value.get("repr") if isinstance(value, dict) else repr(value)
            raise CustomRewardError(
                f"custom reward returned a non-number at index {index}: {shown}"
            )
        if not math.isfinite(value):
            raise CustomRewardError(
                f"custom reward returned {value} at index {index}; use a finite number or None"
            )
    return rewards


class CustomRewardFunction:
    """Pasted reward code as a TRL reward function (a class so that it pickles)."""

    def __init__(self, code: str, name: str, limits: dict[str, Any]):
        self.__name__ = name
        self.code = code
        self.limits = limits

    def __call__(self, completions: Any = None, **kwargs: Any) -> list[float | None]:
        texts = [completion_text(c) for c in completions or []]
        extra = {k: v for k, v in kwargs.items() if k not in _TRAINER_KWARGS and _is_json(v)}
        return run_custom_reward(self.code, texts, extra, **self.limits)


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def make_custom_reward_function(
    code: str,
    *,
    name: str = "custom",
    timeout_s: float = 10,
    cpu_s: int = 10,
    memory_mb: int = 512,
) -> CustomRewardFunction:
    """A TRL-compatible reward function that runs ``code`` in the sandbox on every call."""
    if not isinstance(code, str) or not code.strip():
        raise CustomRewardError("paste Python code that defines reward(completions, **kwargs)")
    try:
        compile(code, "<reward>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise CustomRewardError(
            f"custom reward has a syntax error at line {exc.lineno}: {exc.msg}"
        ) from None
    limits = {"timeout_s": timeout_s, "cpu_s": cpu_s, "memory_mb": memory_mb}
    return CustomRewardFunction(code, name, limits)


def dry_run_custom_reward(code: str, rows: list[dict], **limits: Any) -> list[float | None]:
    """Call the reward on the first two dataset rows, as training would, to catch errors early."""
    sample = [row for row in rows[:2] if isinstance(row, dict)] or [{}]
    keys = sorted({key for row in sample for key in row} - {"prompt", "completion"})
    columns = {key: [row.get(key) for row in sample] for key in keys}
    function = make_custom_reward_function(code, **limits)
    return function(
        prompts=[row.get("prompt", "") for row in sample],
        completions=[_sample_completion(row) for row in sample],
        completion_ids=[[0] for _ in sample],
        **columns,
    )


def _sample_completion(row: dict) -> Any:
    """What the model might have written for this row: its reference text, else "42"."""
    for key in ("completion", "answer"):
        value = row.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if value:
            return value
    return "42"
