"""Uploads at scale: 50,000 conversational rows, 300,000 prompt/completion rows and 950 rows of
100 KB, each processed as TuneDeck's worker does (app.domain.datasets.processing: rows streamed,
checked, normalised to JSONL, lengths measured with the fast tokenizer in batches), against a
baseline measured in the same run on the same file: pandas reading it, plus the same fast
tokenizer over the same texts (each text field, and the chat-templated prompts TuneDeck also
counts). Also the web request's share of a big upload (cheap checks, store the bytes, record the
row, publish the task), which is all that happens before it answers.

    python bench/upload_scale.py [--quick] [--only 50k,300k,100kb]

Each side runs in its own fresh process: wall seconds, that process's CPU seconds (user +
system, from resource), and its peak memory above idle (VmHWM minus the RSS once its libraries
and the tokenizer are loaded). Targets: processing within 1.5x the baseline's time, peak
< 500 MB above idle, the request < 2 s after the transfer. Load average printed at start and
end; every process started is stopped on success, failure and Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchproc import Children, busy, load_average  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HEADLINE_CPU = "; CPU is the headline: load > cores"
WORDS = ["the", "model", "learns", "to", "answer", "questions", "about", "numbers", "words",
         "and", "places", "with", "short", "clear", "replies", "that", "a", "reader", "can",
         "check", "quickly"]


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def write_cases(folder: Path, quick: bool, only: set[str]) -> list[tuple[str, Path, str]]:
    """(label, file, what it holds); sizes as in issue #19, a tenth of them with --quick."""
    rng = random.Random(0)
    scale = 10 if quick else 1
    cases = []
    if "50k" in only:
        path = folder / "conversations.jsonl"
        with path.open("w") as out:
            for i in range(50_000 // scale):
                out.write(json.dumps({"messages": [
                    {"role": "system", "content": "You answer briefly."},
                    {"role": "user", "content": f"Question {i}: " + _text(rng, 30)},
                    {"role": "assistant", "content": _text(rng, 50)}]}) + "\n")
        cases.append((f"{50_000 // scale:,} conversational rows", path, "messages"))
    if "300k" in only:
        path = folder / "pairs.jsonl"
        with path.open("w") as out:
            for i in range(300_000 // scale):
                out.write(json.dumps({"prompt": f"Question {i}: " + _text(rng, 40),
                                      "completion": _text(rng, 45)}) + "\n")
        cases.append((f"{300_000 // scale:,} prompt/completion rows", path, "prompt_completion"))
    if "100kb" in only:
        path = folder / "long.jsonl"
        with path.open("w") as out:
            for i in range(950 // scale):
                out.write(json.dumps({"prompt": f"Summarise document {i}.",
                                      "completion": _text(rng, 16_000)[:100_000]}) + "\n")
        cases.append((f"{950 // scale:,} rows of 100 KB", path, "prompt_completion"))
    return cases


# --- child processes: each measures itself -------------------------------------------------

def _rss_mb(field: str) -> float:
    status = Path("/proc/self/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith(field))
    return int(line.split()[1]) / 1024


def _cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_tunedeck(path: Path, out: Path) -> dict:
    from app.domain.datasets import tokens
    from app.domain.datasets.processing import process_file

    tokens.tokenizer()  # idle = a worker with its tokenizer loaded
    idle, cpu, start = _rss_mb("VmRSS"), _cpu(), time.perf_counter()
    processed = process_file(path, filename=path.name, out=out)
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    return {"seconds": seconds, "cpu": cpu, "idle_mb": idle,
            "above_idle_mb": _rss_mb("VmHWM") - idle, "rows": processed.num_rows}


def child_baseline(path: Path) -> dict:
    import pandas as pd

    from app.domain.dataset_rules import FORMAT_COLUMNS
    from app.domain.datasets import tokens
    from app.domain.datasets.stats import as_text

    tokenizer = tokens.tokenizer()
    idle, cpu, start = _rss_mb("VmRSS"), _cpu(), time.perf_counter()
    frame = pd.read_json(path, lines=True)
    fields = FORMAT_COLUMNS["messages" if "messages" in frame.columns else "prompt_completion"]
    batch = 1024
    for field in fields:
        texts = [as_text(value) for value in frame[field]]
        for i in range(0, len(texts), batch):
            tokenizer(texts[i:i + batch], add_special_tokens=False)
    if "prompt" in frame.columns:  # TuneDeck also counts prompts as the chat template wraps them
        prompts = [[{"role": "user", "content": p}] for p in frame["prompt"]]
        for i in range(0, len(prompts), batch):
            rendered = tokenizer.apply_chat_template(prompts[i:i + batch], tokenize=False,
                                                     add_generation_prompt=True)
            tokenizer(list(rendered), add_special_tokens=False)
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    return {"seconds": seconds, "cpu": cpu, "idle_mb": idle,
            "above_idle_mb": _rss_mb("VmHWM") - idle, "rows": len(frame)}


def child_request(path: Path) -> dict:
    from app.core.db import SessionLocal
    from app.core.migrate import upgrade_to_head
    from app.core.storage import make_store
    from app.services.datasets import records

    upgrade_to_head()
    store = make_store()
    with SessionLocal() as session:
        cpu, start = _cpu(), time.perf_counter()
        dataset = records.create_dataset(session, store=store, upload_path=path,
                                         filename=path.name, inline_max_bytes=0)
        seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    return {"seconds": seconds, "cpu": cpu, "status": str(dataset.status)}


def run_child(children: Children, kind: str, path: Path, work: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false",
           "TUNEDECK_DATA_DIR": str(work / "data"),
           "TUNEDECK_MODEL_CACHE": os.environ.get("TUNEDECK_MODEL_CACHE",
                                                  "/tmp/tunedeck-test-models")}
    for key in ("TUNEDECK_DATABASE_URL", "TUNEDECK_BROKER_URL", "TUNEDECK_STORAGE_URL"):
        env.pop(key, None)
    done = children.run([sys.executable, __file__, "--child", kind, str(path), str(work)],
                        cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} on {path.name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a tenth of each size")
    parser.add_argument("--only", default="50k,300k,100kb")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, path, work = args.child[0], Path(args.child[1]), Path(args.child[2])
        result = {"tunedeck": lambda: child_tunedeck(path, work / f"{path.stem}.out.jsonl"),
                  "baseline": lambda: child_baseline(path),
                  "request": lambda: child_request(path)}[kind]()
        print(json.dumps(result))
        return

    print(f"load average at start: {load_average()}", flush=True)
    failed = []
    with tempfile.TemporaryDirectory(prefix="tunedeck-upload-bench-") as folder, \
            Children() as children:
        work = Path(folder)
        for label, path, _ in write_cases(work, args.quick, set(args.only.split(","))):
            size_mb = path.stat().st_size / 1e6
            base = run_child(children, "baseline", path, work)
            tuned = run_child(children, "tunedeck", path, work)
            request = run_child(children, "request", path, work)
            ratio, cpu_ratio = tuned["seconds"] / base["seconds"], tuned["cpu"] / base["cpu"]
            print(f"\n{label}, {size_mb:.1f} MB ({tuned['rows']:,} rows processed)")
            for name, side in (("baseline (pandas + fast tokenizer)", base),
                               ("TuneDeck worker processing", tuned)):
                print(f"  {name:36s}: {side['seconds']:7.2f} s wall, {side['cpu']:7.2f} s CPU, "
                      f"peak {side['above_idle_mb']:7.1f} MB above idle "
                      f"({side['idle_mb']:.0f} MB idle)")
            print(f"  ratio TuneDeck / baseline           : {ratio:.2f}x wall, "
                  f"{cpu_ratio:.2f}x CPU (target <= 1.5x{HEADLINE_CPU if busy() else ''})")
            print(f"  web request after the transfer      : {request['seconds']:.2f} s wall, "
                  f"{request['cpu']:.2f} s CPU (target < 2 s; answered {request['status']})")
            headline = cpu_ratio if busy() else ratio
            if headline > 1.5 or tuned["above_idle_mb"] > 500 or request["seconds"] > 2:
                failed.append(label)
    print(f"\nload average at end: {load_average()}")
    print("targets met" if not failed else f"targets missed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
