"""bench/gpu_backends.py on a CPU machine: its arithmetic, its table, its refusal without CUDA, and
one measuring child run end to end on the tiny model (the GPU numbers need a GPU)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "bench" / "gpu_backends.py"
spec = importlib.util.spec_from_file_location("gpu_backends", SCRIPT)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_rates_skip_warmup_steps():
    points = [(1, 0.0, 10.0), (5, 100.0, 50.0), (6, 101.0, 60.0), (8, 102.0, 80.0),
              (11, 103.5, 110.0)]
    steps_per_s, tokens_per_s = bench.rates(points, warmup=5)
    assert steps_per_s == pytest.approx(5 / 2.5)  # steps 6 → 11 in 2.5 s; step 5 is warm-up
    assert tokens_per_s == pytest.approx(50 / 2.5)
    assert bench.rates([(1, 0.0, None), (2, 1.0, None)], warmup=5) == (1.0, None)
    assert bench.rates([(7, 0.0, 1.0)], warmup=5) == (None, None)


def test_table_puts_backends_side_by_side_with_ratios():
    table = bench.markdown_table([
        {"strategy": "sft", "backend": "trl", "steps_per_s": 2.0, "tokens_per_s": 4000.0,
         "peak_memory_gib": 4.0},
        {"strategy": "sft", "backend": "unsloth", "steps_per_s": 4.0, "tokens_per_s": 8000.0,
         "peak_memory_gib": 1.0, "note": "vLLM generation"},
        {"strategy": "grpo", "backend": "unsloth", "error": "ModuleNotFoundError: unsloth"},
    ])
    lines = table.splitlines()
    assert lines[0].startswith("| strategy | backend | steps/s | tokens/s | peak GPU memory")
    assert lines[2] == "| sft | trl | 2.00 | 4,000 | 4.00 |  |"
    assert lines[3] == ("| sft | unsloth | 4.00 | 8,000 | 1.00 | 2.00× speed, 0.25× memory of "
                        "trl; vLLM generation |")
    assert lines[4] == "| grpo | unsloth | – | – | – | ModuleNotFoundError: unsloth |"


def test_without_cuda_it_says_so_and_exits_0():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0
    assert "needs a CUDA GPU" in result.stdout


@pytest.mark.slow
def test_a_measuring_child_trains_and_reports(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--steps", "7", "--model", "tiny-random-llama",
         "--child", "sft", "trl"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    measured = json.loads(lines[-1].removeprefix("RESULT "))
    assert measured["backend"] == "trl" and measured["steps"] == 7
    assert measured["steps_per_s"] > 0 and measured["tokens_per_s"] > 0


def test_unknown_backends_and_strategies_are_refused_before_anything_runs(capsys):
    with pytest.raises(SystemExit) as refused:
        bench.main(["--backends", "trl,unslot", "--strategies", "sft,ppo"])
    assert refused.value.code == 2
    message = capsys.readouterr().err
    assert "unknown unslot, ppo" in message and "unsloth-novllm" in message
