"""TuneDeck's training overhead: the same SFT run through TuneDeck's worker and through a bare TRL
script, measured in one run (interleaved rounds), printing seconds per step and the ratio.

    python bench/overhead.py [--steps 40] [--rounds 2]

Seconds per step come from the wall-clock times at which steps were logged, skipping the first
steps (warm-up), so model loading and process start-up do not count for either side.
Target: TuneDeck ≤ 1.05 × bare TRL.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "app" / "demo_data" / "sft_demo.jsonl"
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

BARE_TRL = r"""
import json, sys, time
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import SFTConfig, SFTTrainer

model_dir, data_path, out_dir, hp = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
rows = [json.loads(line) for line in open(data_path)]
times = []

class Clock(TrainerCallback):
    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "loss" in logs:
            times.append((state.global_step, time.time()))

trainer = SFTTrainer(
    model=AutoModelForCausalLM.from_pretrained(model_dir),
    processing_class=AutoTokenizer.from_pretrained(model_dir),
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


def seconds_per_step(times: list[tuple[int, float]]) -> float:
    times = sorted(t for t in times if t[0] > WARMUP)
    (first_step, first_time), (last_step, last_time) = times[0], times[-1]
    return (last_time - first_time) / (last_step - first_step)


def bare_trl(model_dir: Path, work: Path) -> float:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            BARE_TRL,
            str(model_dir),
            str(DATASET),
            str(work / "bare"),
            json.dumps(HYPERPARAMETERS),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
    )
    return seconds_per_step(json.loads(out.stdout.strip().splitlines()[-1]))


def tunedeck_run(client: httpx.Client, dataset_id: int) -> float:
    run = client.post(
        "/api/runs",
        json={
            "dataset_id": dataset_id,
            "base_model": "tiny-random-llama",
            "hyperparameters": HYPERPARAMETERS,
        },
    ).json()
    while (state := client.get(f"/api/runs/{run['id']}").json())["status"] not in (
        "completed",
        "failed",
        "cancelled",
    ):
        time.sleep(0.5)
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
    engine.dispose()
    return seconds_per_step([(s, _timestamp(w)) for s, w in rows])


def _timestamp(value) -> float:  # type: ignore[no-untyped-def]
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    HYPERPARAMETERS["max_steps"] = args.steps
    work = Path(tempfile.mkdtemp(prefix="tunedeck-bench-"))
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
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "up", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        _wait_healthy(client)
        with open(DATASET, "rb") as handle:
            dataset = client.post(
                "/api/datasets", files={"file": ("sft_demo.jsonl", handle)}
            ).json()
        tunedeck_run(client, dataset["id"])  # builds the tiny model into the cache; not counted
        sys.path.insert(0, str(ROOT))
        os.environ["TUNEDECK_DATA_DIR"] = str(work / "data")
        from worker.training.models import resolve_model

        model_dir = resolve_model("tiny-random-llama", work / "data" / "models")
        bare, tuned = [], []
        for round_ in range(args.rounds):
            bare.append(bare_trl(model_dir, work))
            tuned.append(tunedeck_run(client, dataset["id"]))
            print(
                f"round {round_ + 1}: bare TRL {bare[-1]:.4f} s/step, "
                f"TuneDeck {tuned[-1]:.4f} s/step",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    bare_s, tuned_s = statistics.median(bare), statistics.median(tuned)
    print(
        f"\nSFT, tiny-random-llama, {args.steps} steps, batch 4, max_length 128, median of "
        f"{args.rounds} interleaved rounds"
    )
    print(f"bare TRL : {bare_s:.4f} s/step")
    print(f"TuneDeck : {tuned_s:.4f} s/step")
    print(f"ratio    : {tuned_s / bare_s:.3f}x (target <= 1.05x)")


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
