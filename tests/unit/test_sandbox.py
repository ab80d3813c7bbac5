"""Pasted reward code runs in a limited child process and fails with a readable message."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import pytest

from app.domain.sandbox import (
    CustomRewardError,
    dry_run_custom_reward,
    make_custom_reward_function,
    run_custom_reward,
)

LENGTHS = """
def reward(completions, **kwargs):
    return [len(c) / 10 for c in completions]
"""


def test_a_correct_function_returns_its_rewards():
    assert run_custom_reward(LENGTHS, ["ab", "abcd"], {}) == [0.2, 0.4]


def test_kwargs_reach_the_function_and_none_means_not_applicable():
    code = """
def reward(completions, answer, **kwargs):
    return [None if a is None else float(c.strip() == a) for c, a in zip(completions, answer)]
"""
    assert run_custom_reward(code, ["12", " 7", "x"], {"answer": ["12", "8", None]}) == [
        1.0,
        0.0,
        None,
    ]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "def reward(completions, **kwargs):\n    x = 1\n    return [x / 0]",
            "custom reward raised ZeroDivisionError: division by zero at line 3",
        ),
        (
            "def reward(completions, answer, **kwargs):\n    return [1.0]",
            "custom reward raised TypeError",
        ),
        ("import nonexistent_module_xyz\n", "raised ModuleNotFoundError"),
        ("def reward(completions, **kwargs):\n    raise SystemExit(3)", "raised SystemExit: 3"),
        ("def reward(completions, **kwargs)\n    return []", "syntax error at line 1"),
        ("y = 1\n", "code does not define reward(completions, **kwargs)"),
        ("reward = 3\n", "code does not define reward(completions, **kwargs)"),
        (
            "def reward(completions, **kwargs):\n    return [1.0, 0.5, 0.0]",
            "custom reward returned 3 values for 2 completions",
        ),
        (
            "def reward(completions, **kwargs):\n    return [1.0, 'x']",
            "custom reward returned a non-number at index 1: 'x'",
        ),
        (
            "def reward(completions, **kwargs):\n    return [1.0, [2]]",
            "non-number at index 1: [2]",
        ),
        ("def reward(completions, **kwargs):\n    return 1.0", "must return a list of numbers"),
        (
            "def reward(completions, **kwargs):\n    return [1.0, float('inf')]",
            "returned inf at index 1",
        ),
        (
            "import os, signal\ndef reward(completions, **kwargs):\n"
            "    os.kill(os.getpid(), signal.SIGSEGV)",
            "custom reward process was killed by signal SIGSEGV",
        ),
        (
            "import os\ndef reward(completions, **kwargs):\n    os._exit(3)",
            "custom reward process exited with code 3",
        ),
        (
            "def reward(completions, **kwargs):\n    print('x' * (20 << 20))\n    return [1.0]",
            "raised OSError: [Errno 27] File too large at line 2",
        ),
    ],
)
def test_failures_have_readable_messages(code, message):
    with pytest.raises(CustomRewardError) as caught:
        run_custom_reward(code, ["a", "b"], {}, timeout_s=5)
    assert message in str(caught.value)


def test_an_endless_loop_is_stopped_by_the_wall_clock():
    code = "def reward(completions, **kwargs):\n    while True:\n        pass"
    started = time.monotonic()
    with pytest.raises(CustomRewardError, match="timed out after 1.5 s"):
        run_custom_reward(code, ["a"], {}, timeout_s=1.5)
    assert time.monotonic() - started < 5


def test_a_cpu_hog_is_stopped_by_the_cpu_limit():
    code = "def reward(completions, **kwargs):\n    while True:\n        pass"
    with pytest.raises(CustomRewardError, match="more than its 1 s of CPU time"):
        run_custom_reward(code, ["a"], {}, timeout_s=20, cpu_s=1)


def test_a_huge_allocation_hits_the_memory_limit():
    code = "def reward(completions, **kwargs):\n    data = bytearray(2 * 1024**3)\n    return [1.0]"
    with pytest.raises(CustomRewardError, match="exceeded the 256 MB memory limit"):
        run_custom_reward(code, ["a"], {}, memory_mb=256)


def test_the_child_sees_no_secrets_and_an_empty_working_directory(monkeypatch):
    monkeypatch.setenv("TUNEDECK_AUTH_TOKEN", "s3cret")
    code = """
import os
def reward(completions, **kwargs):
    return [float("TUNEDECK_AUTH_TOKEN" in os.environ),
            float(set(os.environ) <= {"HOME", "LANG", "LC_CTYPE", "PATH", "PWD"}),
            float(os.listdir(".") == [])]
"""
    assert run_custom_reward(code, ["a", "b", "c"], {}) == [0.0, 1.0, 1.0]


def test_prints_do_not_corrupt_the_reply():
    code = """
import os, sys
def reward(completions, **kwargs):
    print("debugging", completions)
    sys.stdout.write("not json")
    os.write(1, b"raw bytes")
    return [1.0 for _ in completions]
"""
    assert run_custom_reward(code, ["a"], {}) == [1.0]


def test_processes_started_by_the_reward_are_killed():
    code = """
import subprocess
def reward(completions, **kwargs):
    subprocess.Popen(["sleep", "612.75"])
    return [1.0]
"""
    assert run_custom_reward(code, ["a"], {}) == [1.0]

    def sleeping() -> bool:
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if b"612.75" in cmdline.read_bytes():
                    return True
            except OSError:
                continue
        return False

    deadline = time.monotonic() + 10
    while sleeping() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not sleeping()


def test_trl_style_call_passes_text_and_json_columns_only():
    code = """
def reward(completions, **kwargs):
    return [float(c == "hi" and sorted(kwargs) == ["answer", "prompts"]) for c in completions]
"""
    function = make_custom_reward_function(code, name="greeting")
    assert function.__name__ == "greeting"
    rewards = function(
        prompts=["say hi", "say hi"],
        completions=["hi", [{"role": "assistant", "content": "hi"}]],
        completion_ids=[[1], [2]],
        answer=["hi", "hi"],
        trainer_state=object(),
        log_metric=print,
    )
    assert rewards == [1.0, 1.0]
    assert pickle.loads(pickle.dumps(function))(
        completions=["hi"], prompts=["p"], answer=["a"]
    ) == [1.0]


def test_make_refuses_code_that_cannot_run():
    with pytest.raises(CustomRewardError, match="syntax error at line 2"):
        make_custom_reward_function("def reward(completions, **kwargs):\n    return [")
    with pytest.raises(CustomRewardError, match="paste Python code"):
        make_custom_reward_function("   ")


def test_the_trl_function_raises_so_the_run_can_fail():
    function = make_custom_reward_function("def reward(completions, **kwargs):\n    return []")
    with pytest.raises(CustomRewardError, match="returned 0 values for 1 completions"):
        function(prompts=["p"], completions=["x"])


def test_dry_run_uses_two_rows_like_training_would():
    code = """
def reward(completions, answer, prompts, **kwargs):
    assert prompts == ["q1", "q2"] and "prompt" not in kwargs
    return [float(c == a) for c, a in zip(completions, answer)]
"""
    rows = [{"prompt": "q1", "answer": "12"}, {"prompt": "q2", "answer": 7}, {"prompt": "q3"}]
    assert dry_run_custom_reward(code, rows) == [1.0, 0.0]  # 7 is sent as "7" vs column 7


def test_dry_run_falls_back_to_42_and_reports_errors():
    code = "def reward(completions, **kwargs):\n    return [float(c) for c in completions]"
    assert dry_run_custom_reward(code, [{"prompt": "q"}]) == [42.0]
    assert dry_run_custom_reward(code, [{"prompt": "q", "completion": "3"}, {"x": 1}]) == [3, 42]
    with pytest.raises(CustomRewardError, match="could not convert string to float"):
        dry_run_custom_reward(code, [{"prompt": "q", "answer": "twelve"}])
    with pytest.raises(CustomRewardError, match="timed out after 1 s"):
        dry_run_custom_reward("def reward(c, **k):\n    while True: pass", [{}], timeout_s=1)
