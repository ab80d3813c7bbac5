"""The ``tunedeck`` command: up (web + worker), web, worker, migrate."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from app.core.config import settings


def migrate(_args: argparse.Namespace | None = None) -> int:
    from app.core.migrate import upgrade_to_head

    upgrade_to_head()
    return 0


def web_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "app.main:app", "--host", host, "--port", str(port),
            "--log-level", "warning"]


def worker_command(queues: str, name: str = "tunedeck") -> list[str]:
    # Solo pool: one training task at a time in this process (the task trains in a child).
    return [sys.executable, "-m", "celery", "-A", "worker.celery_app:celery_app", "worker",
            "--pool", "solo", "--concurrency", "1", "--prefetch-multiplier", "1",
            "-Q", queues, "-n", f"{name}-{os.getpid()}@%h", "--loglevel", "INFO", "--without-gossip",
            "--without-mingle"]


def _stop(processes: list[subprocess.Popen]) -> None:
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in processes:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


def _supervise(processes: list[subprocess.Popen]) -> int:
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping TuneDeck…", flush=True)
    finally:
        _stop(processes)
    return 0


def up(args: argparse.Namespace) -> int:
    migrate()
    host, port = args.host or settings.host, args.port or settings.port
    processes = [subprocess.Popen(web_command(host, port))]
    processes += worker_processes(gpus=None, queues=settings.default_queue)
    print(f"TuneDeck is running at http://{host}:{port} (data in {settings.resolved_data_dir}); "
          "Ctrl-C stops it.", flush=True)
    return _supervise(processes)


def web(args: argparse.Namespace) -> int:
    migrate()
    os.execv(sys.executable, web_command(args.host or settings.host, args.port or settings.port))
    return 0


def worker_processes(*, gpus: str | None, queues: str) -> list[subprocess.Popen]:
    """One worker process per GPU (pinned with CUDA_VISIBLE_DEVICES), or one without --gpus."""
    if not gpus:
        return [subprocess.Popen(worker_command(queues))]
    processes = []
    for gpu in [g.strip() for g in gpus.split(",") if g.strip()]:
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": gpu}
        # Each GPU also listens on its own queue so a run can target it (queue "gpu-<n>").
        processes.append(subprocess.Popen(worker_command(f"{queues},gpu-{gpu}", f"gpu{gpu}"), env=env))
    return processes


def worker(args: argparse.Namespace) -> int:
    migrate()
    return _supervise(worker_processes(gpus=args.gpus, queues=args.queues or settings.default_queue))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tunedeck", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in (("up", up), ("web", web)):
        cmd = sub.add_parser(name, help=f"start {'web + one worker' if name == 'up' else 'the web server'}")
        cmd.add_argument("--host")
        cmd.add_argument("--port", type=int)
        cmd.set_defaults(func=func)
    cmd = sub.add_parser("worker", help="start training worker(s)")
    cmd.add_argument("--gpus", help="comma-separated GPU indices: one worker process per GPU")
    cmd.add_argument("--queues", help=f"comma-separated queues (default {settings.default_queue})")
    cmd.set_defaults(func=worker)
    sub.add_parser("migrate", help="migrate the database to the latest schema").set_defaults(func=migrate)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
