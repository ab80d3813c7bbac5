"""TRL + PEFT against Unsloth on one CUDA GPU: SFT and GRPO on smollm2-135m-instruct through
TuneDeck's own training layer, printing steps/s, tokens/s and peak GPU memory side by side.

    python bench/gpu_backends.py [--steps 40] [--markdown docs/gpu-results.md]
                                 [--backends trl,unsloth,unsloth-novllm]

Each (strategy, backend) trains in its own process: Unsloth patches transformers and TRL when it
is imported, so the TRL baseline must never share a process with it. Rates are measured between
the log times of the first step after warm-up and the last step, so model loading, compilation
and vLLM start-up do not count; peak memory is torch.cuda.max_memory_allocated() over the whole
run. "unsloth-novllm" is Unsloth with vLLM hidden (GRPO then generates through Unsloth's own
inference), for comparing the training kernels alone where vllm is installed: vLLM's up-front
reservation would otherwise dominate GRPO's peak memory. Without CUDA it says so and exits 0 (see
docs/benchmarks.md for running it on a GPU).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchproc import Children, load_average  # noqa: E402

MODEL = "smollm2-135m-instruct"
WARMUP = 5
DATASETS = {  # (file, format) per strategy: the demo datasets TuneDeck ships
    "sft": (ROOT / "app" / "demo_data" / "sft_demo.jsonl", "prompt_completion"),
    "grpo": (ROOT / "app" / "demo_data" / "grpo_arithmetic.jsonl", "prompt_only"),
}
HYPERPARAMETERS = {
    "sft": {"per_device_train_batch_size": 8, "max_length": 256, "learning_rate": 2e-4},
    "grpo": {"per_device_train_batch_size": 8, "num_generations": 4,
             "max_completion_length": 128, "learning_rate": 1e-5},
}
SHARED = {"lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "logging_steps": 1, "seed": 42,
          "save_steps": 1_000_000}  # no checkpoint writes inside the timed window


def rates(points: list[tuple[int, float, float | None]], warmup: int = WARMUP):
    """(steps/s, tokens/s or None) from (step, wall time, cumulative tokens) log points."""
    timed = [point for point in points if point[0] > warmup] or points
    if len(timed) < 2:
        return None, None
    (step0, time0, tokens0), (step1, time1, tokens1) = timed[0], timed[-1]
    if time1 <= time0:
        return None, None
    tokens = (tokens1 - tokens0) / (time1 - time0) if None not in (tokens0, tokens1) else None
    return (step1 - step0) / (time1 - time0), tokens


def markdown_table(results: list[dict]) -> str:
    """One row per strategy and backend, plus Unsloth's ratio to TRL where both ran."""
    lines = ["| strategy | backend | steps/s | tokens/s | peak GPU memory (GiB) | note |",
             "| --- | --- | ---: | ---: | ---: | --- |"]
    by_key = {(r["strategy"], r["backend"]): r for r in results}
    for r in results:
        if r.get("error"):
            lines.append(f"| {r['strategy']} | {r['backend']} | – | – | – | {r['error']} |")
            continue
        base = by_key.get((r["strategy"], "trl"))
        note = r.get("note", "")
        if r["backend"] != "trl" and base and not base.get("error"):
            speed = _ratio(r["steps_per_s"], base["steps_per_s"])
            memory = _ratio(r["peak_memory_gib"], base["peak_memory_gib"])
            note = f"{speed} speed, {memory} memory of trl" + (f"; {note}" if note else "")
        lines.append(f"| {r['strategy']} | {r['backend']} | {_num(r['steps_per_s'], 2)} | "
                     f"{_num(r['tokens_per_s'], 0)} | {_num(r['peak_memory_gib'], 2)} | {note} |")
    return "\n".join(lines)


def _num(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}×" if value and base else "–"


class ClockReporter:
    """The Reporter protocol in memory: when each step was logged and the tokens seen by then."""

    def __init__(self) -> None:
        self.points: list[tuple[int, float, float | None]] = []

    def log_metrics(self, step, metrics):  # type: ignore[no-untyped-def]
        if "loss" in metrics or "reward" in metrics:
            self.points.append((step, time.perf_counter(), metrics.get("num_tokens")))

    def progress(self, step, max_steps, epoch): ...  # type: ignore[no-untyped-def]

    def checkpoint_saved(self, step, path): ...  # type: ignore[no-untyped-def]

    def samples(self, step, rows): ...  # type: ignore[no-untyped-def]

    def should_stop(self) -> bool:
        return False

    def phase(self, name: str) -> None: ...

    def flush(self) -> None: ...


def measure(strategy: str, backend: str, steps: int, model: str = MODEL) -> dict:
    """Train one run in this process and return its numbers (called in a fresh child)."""
    if backend.startswith("unsloth"):
        import unsloth  # noqa: F401  (before transformers/trl, which it patches)
    import torch

    from worker.training import TrainingJob, unsloth_backend
    from worker.training.backends import train
    from worker.training.unsloth_backend import use_fast_inference

    if backend == "unsloth-novllm":  # UnslothBackend asks this module whether vllm is there
        unsloth_backend.vllm_installed = lambda: False

    rewards, weights = [], None
    if strategy == "grpo":
        from app.domain.rewards import ReasoningTags
        from app.domain.rewards.run_rewards import build_run_rewards, validate_run_rewards

        configs = validate_run_rewards([{"name": "numeric_match", "params": {"column": "answer"}},
                                        {"name": "soft_format", "weight": 0.5}],
                                       allow_custom=False)
        rewards, weights = build_run_rewards(configs, tags=ReasoningTags())
    path, data_format = DATASETS[strategy]
    with tempfile.TemporaryDirectory() as output_dir:
        job = TrainingJob(run_id=0, strategy=strategy, base_model=model, dataset_path=path,
                          dataset_format=data_format, output_dir=Path(output_dir),
                          hyperparameters={**SHARED, **HYPERPARAMETERS[strategy],
                                           "max_steps": steps},
                          reward_functions=rewards, reward_weights=weights,
                          backend=backend.removesuffix("-novllm"))
        reporter = ClockReporter()
        cuda = torch.cuda.is_available()  # False only when the tests run a child on a CPU
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        result = train(job, reporter)
    steps_per_s, tokens_per_s = rates(reporter.points)
    fast = result.backend == "unsloth" and use_fast_inference(
        strategy, vllm_installed=unsloth_backend.vllm_installed()
    )
    return {"strategy": strategy, "backend": backend, "steps": result.final_step,
            "steps_per_s": steps_per_s, "tokens_per_s": tokens_per_s,
            "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
            "note": "vLLM generation (its reservation counts in the peak)" if fast else ""}


def _versions() -> str:
    import importlib.metadata as metadata

    import torch

    found = []
    for name in ("torch", "transformers", "trl", "peft", "datasets", "unsloth", "unsloth_zoo",
                 "bitsandbytes", "xformers", "vllm"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{name} {metadata.version(name)}")
    return f"{torch.cuda.get_device_name(0)}; " + ", ".join(found)


BACKENDS = ("trl", "unsloth", "unsloth-novllm")


def run_child(strategy: str, backend: str, args: argparse.Namespace,
              children: Children | None = None) -> dict:
    """One measurement in a fresh process (stopped with everything it started, whatever
    happens); its output goes to --logs when given."""
    command = [sys.executable, __file__, "--steps", str(args.steps), "--model", args.model,
               "--child", strategy, backend]
    try:
        with contextlib.ExitStack() as stack:
            runner = children or stack.enter_context(Children())
            child = runner.run(command, capture_output=True, text=True, cwd=ROOT,
                               timeout=args.child_timeout)
    except subprocess.TimeoutExpired as timeout:
        stdout, stderr, code = timeout.stdout or "", timeout.stderr or "", None
    else:
        stdout, stderr, code = child.stdout, child.stderr, child.returncode
    if isinstance(stdout, bytes):  # TimeoutExpired keeps bytes even in text mode
        stdout, stderr = stdout.decode(errors="replace"), (stderr or b"").decode(errors="replace")
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
        (args.logs / f"{strategy}-{backend}.log").write_text(stdout + "\n--- stderr ---\n" + stderr)
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    if code == 0 and lines:
        return json.loads(lines[-1].removeprefix("RESULT "))
    if code is None:
        error = f"timed out after {args.child_timeout} s"
    else:
        error = (stderr.strip().splitlines() or [f"exit status {code}, no output"])[-1]
    return {"strategy": strategy, "backend": backend, "error": error[:200].replace("|", "/")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--strategies", default="sft,grpo")
    parser.add_argument("--backends", default="trl,unsloth", help=f"from {', '.join(BACKENDS)}")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--logs", type=Path, help="write each run's output to this folder")
    parser.add_argument("--child-timeout", type=int, default=900, help="seconds per run")
    parser.add_argument("--model", default=MODEL, help=argparse.SUPPRESS)  # tests: a tiny one
    parser.add_argument("--child", nargs=2, metavar=("STRATEGY", "BACKEND"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(measure(*args.child, args.steps, args.model)), flush=True)
        return 0
    strategies, backends = args.strategies.split(","), args.backends.split(",")
    unknown = [b for b in backends if b not in BACKENDS] + [
        s for s in strategies if s not in DATASETS
    ]
    if unknown:
        parser.error(f"unknown {', '.join(unknown)}: backends are {', '.join(BACKENDS)}, "
                     f"strategies {', '.join(DATASETS)}")

    import torch

    if not torch.cuda.is_available():
        print("bench/gpu_backends.py needs a CUDA GPU (torch.cuda.is_available() is False): "
              "nothing measured. See docs/benchmarks.md for running it on a GPU machine.")
        return 0
    header = f"{_versions()}; {args.steps} steps, rates after {WARMUP} warm-up steps"
    print(f"load average at start: {load_average()}", flush=True)
    results = []
    with Children() as children:
        for strategy in strategies:
            for backend in backends:
                print(f"… {strategy} with {backend} ({args.steps} steps)", flush=True)
                results.append(run_child(strategy, backend, args, children))
                report = f"{header}\n\n{markdown_table(results)}\n"
                if args.markdown:  # after every run: a later one that hangs keeps earlier rows
                    args.markdown.write_text(report)
    print(report)
    print(f"load average at end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
