"""Run a user's pasted ``def reward(completions, **kwargs) -> list[float]`` in a subprocess.

The child is a fresh ``python -I`` (stdlib and installed packages, no PYTHON* variables, no
user site, nothing from the working directory) with CPU, memory and file-size limits set by
itself, an environment holding only PATH and LANG, and an empty temporary directory as cwd.
Input and output are JSON over stdin/stdout; a wall-clock timeout kills its process group.

This contains accidents (an endless loop, a huge allocation, a crash, a leaked secret in the
environment); it is not a security boundary. The child runs as the same OS user and can read
what that user can read, so custom rewards are off unless settings.allow_custom_rewards.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from app.domain.rewards.extract import completion_text

# Caps what the child may write to files, its redirected prints included (writes past it
# fail with "File too large": Python ignores SIGXFSZ).
_OUTPUT_MB = 16
_CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
# TRL passes these along with the dataset columns; they mean nothing to pasted code.
_TRAINER_KWARGS = {"completion_ids", "trainer_state", "log_extra", "log_metric", "environments"}

_CHILD = r"""
import json, os, resource, sys, traceback

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

cpu_s, memory_mb, output_mb = (int(arg) for arg in sys.argv[1:4])
resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
resource.setrlimit(resource.RLIMIT_FSIZE, (output_mb << 20, output_mb << 20))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
payload = json.loads(sys.stdin.buffer.read())
# The reply gets a private descriptor; prints from the user's code go to stderr.
reply = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
reply.write(json.dumps(run(payload, memory_mb)))
reply.close()
"""


class CustomRewardError(Exception):
    """A custom reward failed; the message is meant for the user."""


def run_custom_reward(
    code: str,
    completions: list,
    kwargs: dict,
    *,
    timeout_s: float = 10,
    cpu_s: int = 10,
    memory_mb: int = 512,
) -> list[float | None]:
    """Call ``reward(completions, **kwargs)`` from ``code`` in a limited child process."""
    try:
        payload = json.dumps({"code": code, "completions": completions, "kwargs": kwargs})
    except (TypeError, ValueError) as exc:
        raise CustomRewardError(f"custom reward inputs are not plain JSON data: {exc}") from None
    limits = [str(int(cpu_s)), str(int(memory_mb)), str(_OUTPUT_MB)]
    with tempfile.TemporaryDirectory(prefix="tunedeck-reward-", ignore_cleanup_errors=True) as cwd:
        stderr_path = Path(cwd, ".stderr")
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-I", "-c", _CHILD, *limits],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=cwd,
                env=dict(_CLEAN_ENV),
                start_new_session=True,
            )
            try:
                out, _ = process.communicate(payload.encode(), timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                process.communicate()
                raise CustomRewardError(f"custom reward timed out after {timeout_s:g} s") from None
            finally:
                # Also ends anything the reward started in the background.
                _kill_group(process)
        reply = _read_reply(out, process.returncode, stderr_path, cpu_s=cpu_s)
    if "error" in reply:
        raise CustomRewardError(str(reply["error"]))
    return _checked_rewards(reply.get("rewards"), len(completions))


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _read_reply(out: bytes, returncode: int, stderr_path: Path, *, cpu_s: int) -> dict:
    try:
        reply = json.loads(out)
    except ValueError:
        reply = None
    if isinstance(reply, dict) and ("error" in reply or "rewards" in reply):
        return reply
    if returncode == -signal.SIGXCPU:
        return {"error": f"custom reward used more than its {cpu_s} s of CPU time"}
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return {"error": f"custom reward process was killed by signal {name}"}
    message = f"custom reward process exited with code {returncode}"
    tail = stderr_path.read_bytes()[-500:].decode("utf-8", "replace").strip()
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
