"""Serving throughput: a deployed endpoint (``transformers serve`` behind TuneDeck's pass-through)
vs the playground's one-off generation task, with 1 and 8 concurrent clients, in one run.

    python bench/serve.py [--model tiny-random-llama] [--requests 8] [--max-tokens 32]

Starts TuneDeck (web + one worker, SQLite + the embedded broker) in a scratch folder, trains a
2-step SFT run, deploys its best checkpoint, then sends the same chat prompts to the endpoint
(official ``openai`` client) and to ``POST /api/playground`` (one request = the adapter's and the
base model's answer, each a task on the worker). Prints requests/s and completion tokens/s (the
playground's counted with the model's tokenizer), the wall time and the CPU seconds TuneDeck's
processes (web, worker and all their children) spent, and the endpoint's ratio to the playground
measured here. Stops every process it started.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPTS = ["Say the word number {i}.", "Name a colour, number {i}.", "Count to {i}.",
           "Write one sentence about the number {i}."]
ROWS = [{"prompt": f"Say the word number {i}.", "completion": f" Word {i % 3}."}
        for i in range(16)]


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) of these processes and every descendant alive now."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                times = p.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
        except psutil.NoSuchProcess:
            continue
    return total


def start(data_dir: Path, port: int, model_cache: Path) -> tuple[list[subprocess.Popen], dict]:
    from app.cli import web_command, worker_command

    env = {**os.environ, "TUNEDECK_DATA_DIR": str(data_dir), "TUNEDECK_PORT": str(port),
           "TUNEDECK_MODEL_CACHE": str(model_cache), "PYTHONUNBUFFERED": "1"}
    for key in ("TUNEDECK_DATABASE_URL", "TUNEDECK_BROKER_URL", "TUNEDECK_AUTH_TOKEN",
                "TUNEDECK_STORAGE_URL"):
        env.pop(key, None)
    subprocess.run([sys.executable, "-m", "app.cli", "migrate"], cwd=ROOT, env=env, check=True)
    logs = [open(data_dir / name, "wb") for name in ("web.log", "worker.log")]  # noqa: SIM115
    procs = [subprocess.Popen(web_command("127.0.0.1", port), cwd=ROOT, env=env,
                              stdout=logs[0], stderr=subprocess.STDOUT),
             subprocess.Popen(worker_command("training", "bench"), cwd=ROOT, env=env,
                              stdout=logs[1], stderr=subprocess.STDOUT)]
    return procs, env


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def measure(label: str, one, prompts: list[str], clients: int, pids: list[int]) -> dict:
    cpu0, t0 = cpu_seconds(pids), time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        tokens = sum(pool.map(one, prompts))
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(pids) - cpu0
    return {"path": label, "clients": clients, "requests": len(prompts), "wall_s": wall,
            "cpu_s": cpu, "req_per_s": len(prompts) / wall, "tok_per_s": tokens / wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random-llama")
    parser.add_argument("--requests", type=int, default=8, help="per measurement")
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()

    import httpx
    import openai
    from transformers import AutoTokenizer

    data_dir = Path(tempfile.mkdtemp(prefix="tunedeck-bench-serve-"))
    model_cache = Path(os.environ.get("TUNEDECK_MODEL_CACHE",
                                      Path(tempfile.gettempdir()) / "tunedeck-bench-models"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    procs, _env = start(data_dir, port, model_cache)
    pids = [p.pid for p in procs]
    results = []
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300)
        wait(lambda: _ok(client, "/healthz"), 120, "the web server")
        body = "\n".join(json.dumps(r) for r in ROWS).encode()
        dataset = client.post("/api/datasets", files={"file": ("bench.jsonl", body)}).json()
        run = client.post("/api/runs", json={
            "dataset_id": dataset["id"], "strategy": "sft", "base_model": args.model,
            "name": "bench-serve", "hyperparameters": {"max_steps": 2, "save_steps": 2,
                                                       "max_length": 64}}).json()
        run = wait(lambda: _done(client, f"/api/runs/{run['id']}"), 1800, "training")
        assert run["status"] == "completed", run["error"]
        deployment = client.post(f"/api/runs/{run['id']}/deployments", json={}).json()
        deployment = wait(lambda: _status(client, deployment["id"]), 1200, "the deployment")
        assert deployment["status"] == "serving", deployment["error"]
        endpoint = openai.OpenAI(base_url=deployment["base_url"], api_key="none", timeout=600)
        tokenizer = AutoTokenizer.from_pretrained(model_cache / args.model)
        name = deployment["model_name"]

        def served(prompt: str) -> int:
            answer = endpoint.chat.completions.create(
                model=name, messages=[{"role": "user", "content": prompt}],
                max_tokens=args.max_tokens, temperature=0)
            return answer.usage.completion_tokens

        def playground(prompt: str) -> int:
            created = client.post("/api/playground", json={
                "run_id": run["id"], "prompt": prompt, "temperature": 0,
                "max_new_tokens": args.max_tokens}).json()
            done = wait(lambda: _done(client, f"/api/playground/{created['id']}"), 1800,
                        "a playground answer")
            return sum(len(tokenizer(done[k] or "", add_special_tokens=False)["input_ids"])
                       for k in ("tuned_output", "base_output"))

        prompts = [PROMPTS[i % 4].format(i=i) for i in range(args.requests)]
        served(prompts[0])  # warm-up: the first request pays for loading
        for clients in (1, 8):
            results.append(measure("endpoint", served, prompts, clients, pids))
            results.append(measure("playground", playground, prompts, clients, pids))
        client.post(f"/api/deployments/{deployment['id']}/stop")
        wait(lambda: _status(client, deployment["id"], ("stopped", "failed")), 120, "the stop")
    finally:
        stop(procs)

    print(f"model {args.model}, {args.requests} requests per row, up to {args.max_tokens} "
          "completion tokens each (a playground request = tuned + base answer)")
    print(f"{'path':<11} {'clients':>7} {'wall s':>8} {'CPU s':>8} {'req/s':>7} {'tok/s':>8}")
    for row in results:
        print(f"{row['path']:<11} {row['clients']:>7} {row['wall_s']:>8.1f} {row['cpu_s']:>8.1f} "
              f"{row['req_per_s']:>7.2f} {row['tok_per_s']:>8.1f}")
    for clients in (1, 8):
        ep, pg = (next(r for r in results if r["path"] == p and r["clients"] == clients)
                  for p in ("endpoint", "playground"))
        print(f"{clients} client(s): endpoint {ep['req_per_s'] / pg['req_per_s']:.1f}x the "
              f"playground's requests/s, {ep['tok_per_s'] / max(pg['tok_per_s'], 1e-9):.1f}x "
              "its tokens/s")
    return 0


def _ok(client, path: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        return client.get(path).status_code == 200
    except Exception:  # noqa: BLE001 - not up yet
        return False


def _done(client, path: str):  # type: ignore[no-untyped-def]
    row = client.get(path).json()
    return row if row["status"] in ("completed", "failed", "cancelled") else None


def _status(client, deployment_id: int, statuses=("serving", "failed")):  # type: ignore[no-untyped-def]
    row = client.get(f"/api/deployments/{deployment_id}").json()
    return row if row["status"] in statuses else None


if __name__ == "__main__":
    sys.exit(main())
