"""Runs at scale: 10,000 runs (a few hundred with metrics and checkpoints) in a fresh SQLite and,
with --postgres, a scratch PostgreSQL, then the server time and payload of the runs list API, the
runs page and one 2-second poll, against a baseline measured in the same run: the unpaged query the
list and its poll made before (every run, newest first, as GET /api/runs returned them).

    python bench/runs_scale.py [--runs 10000] [--with-metrics 300] [--postgres URL]

Each database is measured in its own process (settings are read at import). Times go through the
in-process app (FastAPI TestClient): routing, the queries and JSON or HTML rendering, without a
network; wall time and the CPU time of the same call. Targets: first page < 200 ms and < 100 KB,
poll < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_PAGE_S, TARGET_PAGE_BYTES, TARGET_POLL_S = 0.2, 100_000, 0.05
STATUSES = ("completed", "completed", "completed", "failed", "cancelled")


def fill(session_factory, *, runs: int, with_metrics: int, running: int) -> list[int]:
    from sqlalchemy import insert, select

    from app.domain.hyperparameters import validate_hyperparameters
    from app.domain.models import Checkpoint, Dataset, Metric, Run, RunStatus, utcnow

    hyperparameters = validate_hyperparameters("sft", {}).model_dump(mode="json")
    start = utcnow() - timedelta(days=30)
    with session_factory() as session:
        datasets = [Dataset(name=f"bench-{i}", original_filename="bench.jsonl",
                            storage_key=f"bench-{i}", file_format="jsonl",
                            format="prompt_completion", num_rows=1,
                            columns=["prompt", "completion"], size_bytes=1) for i in range(5)]
        session.add_all(datasets)
        session.flush()
        rows = []
        for i in range(runs):
            at = start + timedelta(minutes=4 * i)
            done = i < runs - running
            rows.append({
                "name": f"sweep-lr-{i}", "strategy": ("sft", "grpo", "dpo")[i % 3],
                "base_model": "smollm2-135m-instruct", "dataset_id": datasets[i % 5].id,
                "hyperparameters": {**hyperparameters, "learning_rate": 1e-5 * (1 + i % 20)},
                "reward_functions": [], "requested_backend": "auto", "queue": "training",
                "status": RunStatus(STATUSES[i % 5]) if done else RunStatus.running,
                "step": 100, "max_steps": 100, "attempt": 1, "cancel_requested": False,
                "publish_count": 1, "training_seconds": 200.0, "resume_points": [],
                "created_at": at, "started_at": at, "updated_at": at,
                "finished_at": at + timedelta(minutes=3) if done else None,
                # Running runs heartbeat (the reaper would fail them as lost otherwise).
                "heartbeat_at": None if done else utcnow() + timedelta(hours=1),
            })
        for chunk in range(0, len(rows), 2000):
            session.execute(insert(Run), rows[chunk:chunk + 2000])
        session.commit()
        ids = list(session.scalars(select(Run.id).order_by(Run.id)))
        metric_rows, checkpoints = [], []
        for run_id in ids[-with_metrics:]:
            for step in range(1, 101):
                for name in ("loss", "eval_loss", "learning_rate"):
                    metric_rows.append({"run_id": run_id, "step": step, "name": name,
                                        "value": 1.0 / step, "special": None, "wall_time": start})
            for step in (50, 100):
                checkpoints.append({"run_id": run_id, "step": step,
                                    "storage_key": f"b/{run_id}/{step}",
                                    "metric_name": "eval_loss", "metric_value": 1.0 / step,
                                    "metric_mode": "lower", "is_best": step == 100,
                                    "created_at": start})
        for chunk in range(0, len(metric_rows), 20000):
            session.execute(insert(Metric), metric_rows[chunk:chunk + 20000])
        session.execute(insert(Checkpoint), checkpoints)
        session.commit()
    return ids


def cpu_timed(fn, repeat: int = 5, setup=None) -> tuple[float, float, int]:
    """(best wall s, CPU s of that call, bytes): CPU time is what a busy machine cannot inflate.
    ``setup`` runs before each call, outside the timing."""
    best = (math.inf, math.inf, 0)
    for _ in range(repeat):
        if setup is not None:
            setup()
        wall, cpu = time.perf_counter(), time.process_time()
        size = fn()
        took = (time.perf_counter() - wall, time.process_time() - cpu, size)
        best = min(best, took, key=lambda r: r[0])
    return best


def measure(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="tunedeck-bench-runs-"))
    os.environ["TUNEDECK_DATA_DIR"] = str(work)
    os.environ["TUNEDECK_ALLOWED_HOSTS"] = '["127.0.0.1", "testserver"]'
    os.environ.pop("TUNEDECK_AUTH_TOKEN", None)
    if args.postgres:
        os.environ["TUNEDECK_DATABASE_URL"] = args.postgres
        from sqlalchemy import create_engine, text

        scratch = create_engine(args.postgres)
        with scratch.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        scratch.dispose()
    else:
        os.environ.pop("TUNEDECK_DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    try:
        from app.core.migrate import upgrade_to_head

        upgrade_to_head()
        from fastapi.testclient import TestClient
        from sqlalchemy import update

        from app.core.db import SessionLocal, engine
        from app.domain.models import Run, utcnow
        from app.main import app
        from app.schemas import RunPublic
        from app.services.jobs import launch
        from app.services.jobs import runs as run_service

        fill_start = time.perf_counter()
        ids = fill(SessionLocal, runs=args.runs, with_metrics=args.with_metrics, running=3)
        fill_s = time.perf_counter() - fill_start
        if args.postgres:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        print(f"\n== {engine.url.get_backend_name()}: {len(ids):,} runs, {args.with_metrics} with "
              f"metrics and checkpoints, filled in {fill_s:.1f} s; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

        def baseline() -> int:
            """Before: every run, newest first, serialised as GET /api/runs sent them."""
            with SessionLocal() as session:
                runs = launch.runs_public(session, run_service.list_runs(session))
                body = json.dumps([RunPublic.model_dump(r, mode="json") for r in runs])
            return len(body.encode())

        with TestClient(app, base_url="http://127.0.0.1") as client:
            def get(path: str, **params) -> int:
                response = client.get(path, params=params)
                assert response.status_code == 200, response.text[:500]
                return len(response.content)

            cursor = client.get("/api/runs/changes").json()["cursor"]
            time.sleep(args.poll_gap_s)  # runs older than the poll's overlap count as unchanged
            cursor = client.get("/api/runs/changes").json()["cursor"]
            running = ids[-3:]

            def progress() -> None:
                # The three running runs report progress between polls, as workers do.
                with SessionLocal() as session:
                    session.execute(update(Run).where(Run.id.in_(running)).values(
                        step=Run.step + 1, heartbeat_at=utcnow()))
                    session.commit()

            base = cpu_timed(baseline, repeat=2)
            results = [
                ("before: unpaged list (list and poll)", base),
                ("GET /api/runs first page", cpu_timed(lambda: get("/api/runs"))),
                ("GET /api/runs page 100", cpu_timed(lambda: get("/api/runs", offset=4950))),
                ("GET /api/runs?status=running", cpu_timed(
                    lambda: get("/api/runs", status="running"))),
                ("GET /api/runs?q=lr-99 (name search)", cpu_timed(
                    lambda: get("/api/runs", q="lr-99"))),
                ("GET /runs page (HTML)", cpu_timed(lambda: get("/runs"))),
                ("poll /api/runs/changes (3 changed)", cpu_timed(
                    lambda: get("/api/runs/changes", since=cursor), setup=progress)),
            ]
        print(f"{'measurement':40} {'wall':>8} {'CPU':>8} {'payload':>10} {'wall/before':>12} "
              f"{'bytes/before':>13}")
        for label, (wall, cpu, size) in results:
            print(f"{label:40} {wall * 1000:6.1f}ms {cpu * 1000:6.1f}ms {size / 1000:8.1f}KB "
                  f"{wall / base[0]:11.4f}x {size / base[2]:12.4f}x")
        first = results[1][1]
        poll_result = results[-1][1]
        print(f"targets: first page {first[0] * 1000:.1f} ms (< {TARGET_PAGE_S * 1000:.0f}) and "
              f"{first[2] / 1000:.1f} KB (< {TARGET_PAGE_BYTES / 1000:.0f}); poll "
              f"{poll_result[0] * 1000:.1f} ms (< {TARGET_POLL_S * 1000:.0f})")
        engine.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--with-metrics", type=int, default=300)
    parser.add_argument("--postgres", help="a scratch PostgreSQL URL (its tables are replaced)")
    parser.add_argument("--poll-gap-s", type=float, default=6.0, help=argparse.SUPPRESS)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        measure(args)
        return
    common = [sys.executable, __file__, "--one", "--runs", str(args.runs),
              "--with-metrics", str(args.with_metrics)]
    # Each database in a fresh process: its settings (the database URL) are read at import.
    subprocess.run(common, check=True)
    if args.postgres:
        subprocess.run([*common, "--postgres", args.postgres], check=True)
    else:
        print("\n(PostgreSQL skipped: pass --postgres URL of a scratch database)")


if __name__ == "__main__":
    main()
