"""Data-parallel scaling: the same SFT run at 1 and at N processes (torchrun, gloo on CPU, NCCL on
GPUs), through TuneDeck's own training layer and rank reporter, printing tokens/s, s/step, wall
and CPU time, and the scaling ratio against the 1-process run measured in the same invocation.

    python bench/distributed.py [--processes 1,2] [--steps 30] [--model tiny-random-llama]

Strong scaling: the global batch stays the same (``--global-batch``, split over the processes), so
each configuration does the same work per step and a perfect scaler doubles tokens/s with twice
the processes. Tokens/s counts TRL's ``num_tokens`` (tokens of every rank) between the first
step after warm-up and the last; model loading and process start-up do not count. CPU time is
the user + system time of every process the run started (torchrun's agent and its ranks).
On CPU torchrun gives each rank one thread (OMP_NUM_THREADS=1), the 1-process run uses all cores.
Every process is started in its own session and killed with it if the benchmark stops early.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "app" / "demo_data" / "sft_demo.jsonl"
WARMUP = 3


def child(config: dict) -> None:
    """One configuration, as rank ``RANK`` of torchrun (or a lone process)."""
    sys.path.insert(0, str(ROOT))
    from worker.reporting import RankReporter
    from worker.training import TrainingJob
    from worker.training.backends import process_rank, train

    rank = process_rank()

    class Clock:
        """Rank 0's reporter: when each step was logged and TRL's token count then."""

        def __init__(self) -> None:
            self.points: list[tuple[int, float, float]] = []

        def log_metrics(self, step, metrics):  # type: ignore[no-untyped-def]
            if "num_tokens" in metrics:
                self.points.append((step, time.time(), metrics["num_tokens"]))

        def progress(self, *args): ...  # type: ignore[no-untyped-def]
        def checkpoint_saved(self, *args): ...  # type: ignore[no-untyped-def]
        def samples(self, *args): ...  # type: ignore[no-untyped-def]
        def phase(self, *args): ...  # type: ignore[no-untyped-def]
        def flush(self): ...  # type: ignore[no-untyped-def]

        def should_stop(self) -> bool:
            return False

    clock = Clock() if rank.reports else None
    reporter = RankReporter(clock) if rank.world_size > 1 else clock
    job = TrainingJob(
        run_id=0, strategy="sft", base_model=config["model"], dataset_path=DATASET,
        dataset_format="prompt_completion", hyperparameters=config["hyperparameters"],
        output_dir=Path(config["output_dir"]), backend="trl",
        model_cache_dir=Path(config["model_cache"]),
    )
    result = train(job, reporter)  # type: ignore[arg-type]
    if clock is not None:
        Path(config["result"]).write_text(json.dumps(
            {"points": clock.points, "device": result.device, "steps": result.final_step}))


def measure(processes: int, args: argparse.Namespace, workdir: Path) -> dict:
    per_device, remainder = divmod(args.global_batch, processes)
    if remainder:
        raise SystemExit(f"--global-batch {args.global_batch} does not split over {processes}")
    result_path = workdir / f"result-{processes}.json"
    config = {
        "model": args.model, "model_cache": str(args.model_cache),
        "output_dir": str(workdir / f"out-{processes}"), "result": str(result_path),
        "hyperparameters": {
            "max_steps": args.steps, "save_steps": args.steps * 10, "logging_steps": 1,
            "per_device_train_batch_size": per_device, "max_length": 128, "seed": 42,
            "lora_dropout": 0.0, "num_processes": processes,
        },
    }
    script = [str(Path(__file__).resolve()), "--child", json.dumps(config)]
    command = ([sys.executable, *script] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
        "--nproc_per_node", str(processes), "--max_restarts", "0", *script])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    log = open(workdir / f"log-{processes}.txt", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT),
                                 "TOKENIZERS_PARALLELISM": "false"})
    try:
        code = proc.wait(timeout=args.timeout)
    finally:  # whatever happened, no rank outlives its measurement
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        tail = (workdir / f"log-{processes}.txt").read_text(errors="replace")[-3000:]
        raise SystemExit(f"{processes} process(es) failed with code {code}:\n{tail}")
    data = json.loads(result_path.read_text())
    points = [p for p in data["points"] if p[0] > WARMUP]
    (s0, t0, n0), (s1, t1, n1) = points[0], points[-1]
    return {
        "processes": processes, "per_device_batch": per_device, "device": data["device"],
        "tokens_per_s": (n1 - n0) / (t1 - t0), "s_per_step": (t1 - t0) / (s1 - s0),
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--processes", default="1,2", help="comma-separated; the first is the "
                        "baseline (default 1,2)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--global-batch", type=int, default=8)
    parser.add_argument("--model", default="tiny-random-llama")
    parser.add_argument("--model-cache", type=Path, default=Path(os.environ.get(
        "TUNEDECK_MODEL_CACHE", "/tmp/tunedeck-test-models")))
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    counts = [int(n) for n in args.processes.split(",")]
    with tempfile.TemporaryDirectory(prefix="tunedeck-bench-distributed-") as tmp:
        rows = [measure(n, args, Path(tmp)) for n in counts]
    base = rows[0]
    print(f"SFT {args.model}, global batch {args.global_batch}, {args.steps} steps "
          f"(first {WARMUP} not timed), on {base['device']}, {os.cpu_count()} CPU cores")
    print("| processes | batch/device | tokens/s | s/step | wall s | CPU s | scaling |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['processes']} | {row['per_device_batch']} | {row['tokens_per_s']:.0f} | "
              f"{row['s_per_step']:.3f} | {row['wall_s']:.1f} | {row['cpu_s']:.1f} | "
              f"{row['tokens_per_s'] / base['tokens_per_s']:.2f}× |")


if __name__ == "__main__":
    main()
