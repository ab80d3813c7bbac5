"""TuneDeck's training overhead: the same SFT or GRPO run through TuneDeck's worker and through a
bare TRL script, measured in one run (interleaved rounds), printing seconds per step and the ratio.

    python bench/overhead.py [--strategy sft|grpo] [--steps 40] [--rounds 2] [--warmup 5]
                             [--first bare|tunedeck]

GRPO is TuneDeck's distinctive path: samples recorded every few steps, reward functions wrapped
to record their scores. Its bare script builds GRPOTrainer with TuneDeck's own GRPOConfig
arguments (``worker.training.grpo.config_arguments``) and the same library reward functions,
unwrapped, so both sides train the same run and only TuneDeck's machinery differs.

Both sides train the same token sequences: the bare script turns the rows into conversations
and lets TRL apply the chat template, as TuneDeck does by default (chat_template "auto"); each
side's tokens per step (TRL's ``num_tokens``) are printed so a reader can check it.

Seconds per step come from the wall-clock times at which steps were logged, skipping the first
steps (warm-up: 5, ``--warmup``), so model loading and process start-up do not count for either
side. Beside them, each side's CPU seconds per step between the same steps (the training
process's user + system time: from resource inside the bare script, sampled with psutil for
TuneDeck's training child), and the load average at start and end; when the load exceeds the
core count the CPU ratio is the headline. Every process started (the server, its workers, their
training children, the bare script) is stopped on success, failure and Ctrl-C, and the temporary
data directory is removed.

Both sides get the same torch thread count (``--threads``, default 1, through OMP_NUM_THREADS):
with several threads on a busy machine, OpenMP's threads spin while they wait for a core, and
that spinning is counted as CPU time, by whichever side ran while the machine was busier.
Target: TuneDeck ≤ 1.05 × bare TRL.

Each round trains the bare script first (``--first``, ``bare``), after a TuneDeck run that is not
counted: it builds the tiny model into TuneDeck's model cache, which the bare script loads from.
With ``--first tunedeck`` each round's TuneDeck run goes first and the first one builds the
model, so there is no uncounted run (what a quick smoke run such as the tests' wants, with
``--steps 3 --warmup 1``).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchproc import Children, busy, load_average  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "app" / "demo_data" / "sft_demo.jsonl"
GRPO_DATASET = ROOT / "app" / "demo_data" / "grpo_arithmetic.jsonl"
WARMUP = 5
HYPERPARAMETERS = {
    "max_steps": 40,
    "learning_rate": 2e-4,
    "per_device_train_batch_size": 4,
    "max_length": 128,
    "save_steps": 20,
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "seed": 42,
}

GRPO_HYPERPARAMETERS = {
    "max_steps": 24,
    "learning_rate": 1e-5,
    "per_device_train_batch_size": 4,
    "num_generations": 4,
    "max_completion_length": 32,
    "save_steps": 12,
    "sample_every_steps": 5,
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "seed": 42,
}
GRPO_REWARDS = [{"name": "numeric_match", "weight": 1.0}, {"name": "soft_format", "weight": 0.5}]

# Both bare scripts time their logged steps the same way: wall clock, own CPU, tokens so far.
CLOCK = r"""
import resource, time
from transformers import TrainerCallback
times = []

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

class Clock(TrainerCallback):
    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "loss" in logs:
            times.append((state.global_step, time.time(), cpu(), logs.get("num_tokens")))
"""

BARE_GRPO = r"""
import json, resource, sys, time
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import GRPOConfig, GRPOTrainer
from app.domain.rewards.registry import build_reward_functions, validate_reward_config
from app.domain.rewards.tags import ReasoningTags

model_dir, data_path, config, rewards, lora = sys.argv[1:6]
config, lora = json.loads(config), json.loads(lora)
functions, _ = build_reward_functions(validate_reward_config(json.loads(rewards)),
                                      tags=ReasoningTags())
tokenizer = AutoTokenizer.from_pretrained(model_dir)
rows = [json.loads(line) for line in open(data_path)]
if tokenizer.chat_template:  # as TuneDeck trains by default: chat-templated prompts
    rows = [{**r, "prompt": [{"role": "user", "content": r["prompt"]}]} for r in rows]
{clock}
trainer = GRPOTrainer(
    model=AutoModelForCausalLM.from_pretrained(model_dir),
    reward_funcs=functions,
    args=GRPOConfig(**config),
    train_dataset=Dataset.from_list(rows),
    processing_class=tokenizer,
    peft_config=LoraConfig(**lora),
    callbacks=[Clock()],
)
trainer.train()
print(json.dumps(times))
"""

BARE_TRL = r"""
import json, resource, sys, time
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import SFTConfig, SFTTrainer

model_dir, data_path, out_dir, hp = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
tokenizer = AutoTokenizer.from_pretrained(model_dir)
rows = [json.loads(line) for line in open(data_path)]
if tokenizer.chat_template:  # as TuneDeck trains by default: conversations, chat-templated
    rows = [{"prompt": [{"role": "user", "content": r["prompt"]}],
             "completion": [{"role": "assistant", "content": r["completion"]}]} for r in rows]
{clock}
trainer = SFTTrainer(
    model=AutoModelForCausalLM.from_pretrained(model_dir),
    processing_class=tokenizer,
    train_dataset=Dataset.from_list(rows),
    peft_config=LoraConfig(r=hp["lora_r"], lora_alpha=hp["lora_alpha"],
                           lora_dropout=hp["lora_dropout"], target_modules="all-linear",
                           task_type="CAUSAL_LM"),
    args=SFTConfig(output_dir=out_dir, max_steps=hp["max_steps"], learning_rate=hp["learning_rate"],
                   per_device_train_batch_size=hp["per_device_train_batch_size"],
                   max_length=hp["max_length"], save_steps=hp["save_steps"], save_strategy="steps",
                   logging_steps=1, seed=hp["seed"], data_seed=hp["seed"], report_to="none",
                   disable_tqdm=True, use_cpu=True, bf16=False, fp16=False,
                   activation_checkpointing=False, dataloader_pin_memory=False),
    callbacks=[Clock()],
)
trainer.train()
print(json.dumps(times))
"""
BARE_GRPO, BARE_TRL = (script.replace("{clock}", CLOCK) for script in (BARE_GRPO, BARE_TRL))


def per_step(samples: list[tuple[int, float]], warmup: int = WARMUP) -> float:
    """(step, value) samples -> value per step between the first step after warm-up and the last."""
    samples = sorted(t for t in samples if t[0] > warmup and t[1] is not None)
    (first_step, first), (last_step, last) = samples[0], samples[-1]
    return (last - first) / (last_step - first_step)


def bare_command(strategy: str, model_dir: Path, work: Path) -> list[str]:
    if strategy == "sft":
        return [sys.executable, "-c", BARE_TRL, str(model_dir), str(DATASET), str(work / "bare"),
                json.dumps(HYPERPARAMETERS)]
    from types import SimpleNamespace

    from app.domain.hyperparameters import GRPOHyperparameters
    from app.domain.rewards.run_rewards import validate_run_rewards
    from worker.training.grpo import config_arguments

    hp = GRPOHyperparameters(**GRPO_HYPERPARAMETERS)
    weights = [config.weight for config in validate_run_rewards(GRPO_REWARDS,
                                                                allow_custom=False)]
    job = SimpleNamespace(output_dir=work / "bare", reward_weights=weights)
    config = config_arguments(job, hp, on_cpu=True)  # TuneDeck's own GRPOConfig arguments
    return [sys.executable, "-c", BARE_GRPO, str(model_dir), str(GRPO_DATASET),
            json.dumps(config), json.dumps(GRPO_REWARDS), json.dumps(hp.lora_arguments())]


def bare_trl(children: Children, command: list[str], warmup: int = WARMUP) -> dict:
    out = children.run(
        command,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT)},
    )
    times = json.loads(out.stdout.strip().splitlines()[-1])
    return {"wall": per_step([(t[0], t[1]) for t in times], warmup),
            "cpu": per_step([(t[0], t[2]) for t in times], warmup),
            "tokens": per_step([(t[0], t[3]) for t in times], warmup)}


def training_child(server_pid: int) -> psutil.Process | None:
    """TuneDeck's training process under the server: ``python -m worker.train_process``, or a
    child forked from the warm process, which names itself ``tunedeck-train``."""
    with contextlib.suppress(psutil.NoSuchProcess):
        for process in psutil.Process(server_pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                if process.name() == "tunedeck-train" \
                        or "worker.train_process" in process.cmdline():
                    return process
    return None


def tunedeck_run(client: httpx.Client, request: dict, server_pid: int | None = None,
                 warmup: int = WARMUP) -> dict:
    response = client.post("/api/runs", json=request)
    if response.status_code >= 400:
        raise RuntimeError(f"launch refused: {response.text}")
    run = response.json()
    cpu_samples: list[tuple[float, float]] = []  # (wall time, training child's CPU seconds)
    child = None
    next_poll = 0.0
    while True:
        if server_pid is not None:
            child = child if child is not None and child.is_running() else training_child(
                server_pid)
            if child is not None:
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = child.cpu_times()
                    cpu_samples.append((time.time(), times.user + times.system))
        if time.monotonic() >= next_poll:
            state = client.get(f"/api/runs/{run['id']}").json()
            if state["status"] in ("completed", "failed", "cancelled"):
                break
            next_poll = time.monotonic() + 0.5
        time.sleep(0.05)
    if state["status"] != "completed":
        raise RuntimeError(f"TuneDeck run failed: {state['error']}")
    # Wall-clock times of the logged steps, straight from the metric table.
    from sqlalchemy import create_engine, text

    engine = create_engine(os.environ["BENCH_DB_URL"])
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT step, wall_time FROM metric WHERE run_id = :r AND name = 'loss'"),
            {"r": run["id"]},
        ).all()
        tokens = conn.execute(
            text("SELECT step, value FROM metric WHERE run_id = :r AND name = 'num_tokens'"),
            {"r": run["id"]},
        ).all()
    engine.dispose()
    steps = [(s, _timestamp(w)) for s, w in rows]
    result = {"wall": per_step(steps, warmup),
              "tokens": per_step(list(tokens), warmup) if tokens else None, "cpu": None}
    if len(cpu_samples) > 2:
        walls, cpus = zip(*cpu_samples, strict=True)
        # CPU seconds at the wall-clock time each step was logged, from the sampled curve.
        result["cpu"] = per_step([(s, _interpolate(w, walls, cpus)) for s, w in steps], warmup)
    return result


def _interpolate(x: float, xs: tuple[float, ...], ys: tuple[float, ...]) -> float | None:
    if x < xs[0] or x > xs[-1]:
        return None
    index = bisect.bisect_left(xs, x)
    if index == 0:
        return ys[0]
    x0, x1, y0, y1 = xs[index - 1], xs[index], ys[index - 1], ys[index]
    return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def _timestamp(value) -> float:  # type: ignore[no-untyped-def]
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", choices=("sft", "grpo"), default="sft")
    parser.add_argument("--steps", type=int, help="training steps (SFT 40, GRPO 24)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads on each side (OMP_NUM_THREADS); 0: torch's default")
    parser.add_argument("--warmup", type=int, default=WARMUP,
                        help=f"first steps of each side not timed (default {WARMUP})")
    parser.add_argument("--first", choices=("bare", "tunedeck"), default="bare",
                        help="the side that trains first in each round (default bare, after an "
                             "uncounted TuneDeck run that builds the model; tunedeck: none)")
    args = parser.parse_args()
    if args.threads:  # inherited by the bare script and by TuneDeck's server, worker and child
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    hyperparameters = HYPERPARAMETERS if args.strategy == "sft" else GRPO_HYPERPARAMETERS
    if args.steps:
        hyperparameters["max_steps"] = args.steps
    args.steps = hyperparameters["max_steps"]
    if args.steps < args.warmup + 2:
        parser.error(f"--steps must be at least --warmup + 2 ({args.warmup + 2}): the rates are "
                     "taken between the first step after the warm-up and the last")
    dataset_path = DATASET if args.strategy == "sft" else GRPO_DATASET
    print(f"load average at start: {load_average()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="tunedeck-bench-"))
    try:
        _bench(args, hyperparameters, dataset_path, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _bench(args: argparse.Namespace, hyperparameters: dict, dataset_path: Path,
           work: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "TUNEDECK_DATA_DIR": str(work / "data"),
        "TUNEDECK_PORT": str(port),
        "TOKENIZERS_PARALLELISM": "false",
    }
    env.pop("TUNEDECK_DATABASE_URL", None)
    env.pop("TUNEDECK_BROKER_URL", None)
    os.environ["BENCH_DB_URL"] = f"sqlite:///{work / 'data' / 'tunedeck.db'}"
    with Children() as children:
        server = children.start(
            [sys.executable, "-m", "app.cli", "up", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600)
        _wait_healthy(client)
        with open(dataset_path, "rb") as handle:
            dataset = client.post(
                "/api/datasets", files={"file": (dataset_path.name, handle)}
            ).json()
        request = {"dataset_id": dataset["id"], "base_model": "tiny-random-llama",
                   "strategy": args.strategy, "hyperparameters": hyperparameters}
        if args.strategy == "grpo":
            request["reward_functions"] = GRPO_REWARDS
        if args.first == "bare":
            tunedeck_run(client, request)  # builds the tiny model into the cache; not counted
        sys.path.insert(0, str(ROOT))
        os.environ["TUNEDECK_DATA_DIR"] = str(work / "data")
        from app.core.config import settings
        from worker.training.models import resolve_model

        # The server's own model cache (TUNEDECK_MODEL_CACHE, else under its data directory),
        # where its first run built the model: the bare script loads the very same files.
        bare, tuned = [], []
        for round_ in range(args.rounds):
            if args.first == "tunedeck":
                tuned.append(tunedeck_run(client, request, server.pid, args.warmup))
            model_dir = resolve_model("tiny-random-llama", settings.model_cache_dir)
            bare.append(bare_trl(children, bare_command(args.strategy, model_dir, work),
                                 args.warmup))
            if args.first == "bare":
                tuned.append(tunedeck_run(client, request, server.pid, args.warmup))
            print(f"round {round_ + 1}: bare TRL {_side(bare[-1])}; TuneDeck {_side(tuned[-1])}",
                  flush=True)
    shape = ("batch 4, max_length 128" if args.strategy == "sft" else
             "batch 4, 4 generations of up to 32 tokens, rewards numeric_match + soft_format")
    threads = f"{args.threads} torch thread(s)" if args.threads else "torch's default threads"
    print(f"\n{args.strategy.upper()}, tiny-random-llama, {args.steps} steps, {shape}, "
          f"chat-templated, {threads} per side, median of {args.rounds} interleaved rounds")
    ratios = {}
    for key, unit in (("wall", "s/step wall"), ("cpu", "CPU s/step"), ("tokens", "tokens/step")):
        b = [r[key] for r in bare if r[key] is not None]
        t = [r[key] for r in tuned if r[key] is not None]
        if not b or not t:
            print(f"{unit:12s}: not measured")
            continue
        ratios[key] = statistics.median(t) / statistics.median(b)
        print(f"{unit:12s}: bare TRL {statistics.median(b):.4f}, TuneDeck "
              f"{statistics.median(t):.4f}, ratio {ratios[key]:.3f}x")
    headline = "cpu" if busy() and "cpu" in ratios else "wall"
    why = "; load > cores, so CPU time is the headline" if headline == "cpu" else ""
    print(f"ratio      : {ratios.get(headline, float('nan')):.3f}x by {headline} time "
          f"(target <= 1.05x{why})")
    print(f"load average at end: {load_average()}")


def _side(result: dict) -> str:
    cpu = f"{result['cpu']:.4f}" if result["cpu"] is not None else "?"
    tokens = f"{result['tokens']:.0f}" if result["tokens"] is not None else "?"
    return f"{result['wall']:.4f} s/step ({cpu} CPU s/step, {tokens} tokens/step)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(client: httpx.Client) -> None:
    for _ in range(120):
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("TuneDeck did not start")


if __name__ == "__main__":
    main()
