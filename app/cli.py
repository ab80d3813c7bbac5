"""The ``tunedeck`` command: up (web + worker), web, worker, migrate; and, through the Python
client (app/client/cli.py), datasets, runs and compare against a running server."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from app.core.config import settings


def migrate(_args: argparse.Namespace | None = None) -> int:
    from app.core.migrate import upgrade_to_head

    upgrade_to_head()
    return 0


def web_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:app",
        "--host",
        host,
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


def worker_command(queues: str, name: str = "tunedeck") -> list[str]:
    # Solo pool: one training task at a time in this process (the task trains in a child).
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app:celery_app",
        "worker",
        "--pool",
        "solo",
        "--concurrency",
        "1",
        "--prefetch-multiplier",
        "1",
        "-Q",
        queues,
        "-n",
        f"{name}-{os.getpid()}@%h",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
    ]


def refuse_open_bind(host: str) -> bool:
    """True (after saying why) when TuneDeck must not listen on ``host`` as configured."""
    from app.core.security import bind_refusal

    reason = bind_refusal(host, settings.auth_token)
    if reason:
        print(f"tunedeck: {reason}", file=sys.stderr, flush=True)
        return True
    # The app reads its own bind host (the allowed Host names).
    os.environ["TUNEDECK_HOST"] = host
    return False


def up(args: argparse.Namespace) -> int:
    host, port = args.host or settings.host, args.port or settings.port
    if refuse_open_bind(host):
        return 2
    migrate()
    from app.supervisor import Child, Supervisor

    children = [Child("web server", web_command(host, port), restart=False),
                *worker_children(gpus=None, queues=settings.default_queue)]
    # Big uploads are processed on their own queue, never behind an hour of training.
    children.append(Child("worker datasets", worker_command(settings.dataset_queue, "datasets")))
    print(
        f"TuneDeck is running at http://{host}:{port} (data in {settings.resolved_data_dir}); "
        "Ctrl-C stops it.",
        flush=True,
    )
    return Supervisor(children).run()


def web(args: argparse.Namespace) -> int:
    host = args.host or settings.host
    if refuse_open_bind(host):
        return 2
    migrate()
    os.execv(sys.executable, web_command(host, args.port or settings.port))
    return 0


def worker_layout(*, gpus: str | None, queues: str) -> list[tuple[dict[str, str], str, str]]:
    """(extra environment, queues, name) per worker process: one per GPU, or one without --gpus."""
    if not gpus:
        return [({}, queues, "tunedeck")]
    indices = [g.strip() for g in gpus.split(",") if g.strip()]
    if not indices or not all(g.isdigit() for g in indices) or len(set(indices)) != len(indices):
        raise SystemExit(f"--gpus takes distinct GPU indices such as 0,1 (got {gpus!r})")
    # Each GPU also listens on its own queue so a run can target it (queue "gpu-<n>").
    return [({"CUDA_VISIBLE_DEVICES": g}, f"{queues},gpu-{g}", f"gpu{g}") for g in indices]


def worker_processes(*, gpus: str | None, queues: str) -> list[subprocess.Popen]:
    """One worker process per GPU (pinned with CUDA_VISIBLE_DEVICES), or one without --gpus."""
    return [
        subprocess.Popen(worker_command(worker_queues, name), env={**os.environ, **env})
        for env, worker_queues, name in worker_layout(gpus=gpus, queues=queues)
    ]


def worker_children(*, gpus: str | None, queues: str) -> list:
    """The worker processes for the supervisor (app/supervisor.py), restarted when they die."""
    from app.supervisor import Child

    return [Child(f"worker {name}", worker_command(worker_queues, name), env={**os.environ, **env})
            for env, worker_queues, name in worker_layout(gpus=gpus, queues=queues)]


def worker(args: argparse.Namespace) -> int:
    migrate()
    from app.supervisor import Supervisor

    children = worker_children(gpus=args.gpus, queues=args.queues or settings.default_queue)
    return Supervisor(children).run()


CLIENT_COMMANDS = {"datasets", "runs", "compare"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in CLIENT_COMMANDS:
        from app.client.cli import main as client_main

        return client_main(argv)
    parser = argparse.ArgumentParser(
        prog="tunedeck", description=__doc__,
        epilog="Client commands (tunedeck datasets|runs|compare --help): datasets upload/ls, "
               "runs launch/ls/watch/download/yaml/cancel/resume, compare.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in (("up", up), ("web", web)):
        cmd = sub.add_parser(
            name, help=f"start {'web + one worker' if name == 'up' else 'the web server'}"
        )
        cmd.add_argument("--host")
        cmd.add_argument("--port", type=int)
        cmd.set_defaults(func=func)
    cmd = sub.add_parser("worker", help="start training worker(s)")
    cmd.add_argument("--gpus", help="comma-separated GPU indices: one worker process per GPU")
    cmd.add_argument("--queues", help=f"comma-separated queues (default {settings.default_queue})")
    cmd.set_defaults(func=worker)
    sub.add_parser("migrate", help="migrate the database to the latest schema").set_defaults(
        func=migrate
    )
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
