"""Where a run's processes can go: the live training workers, the devices each can give, and
whether a run's placement (processes per host × hosts) fits them.

Each worker process writes its row at start and refreshes it with its heartbeat (worker/tasks.py);
a row whose heartbeat is older than settings.worker_lost_after_s is a worker that is gone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.core.sql import update_one
from app.domain.models import WorkerHost, utcnow


@dataclass(frozen=True)
class Devices:
    kind: str  # "cpu" or "cuda"
    count: int


def local_devices(environ: dict[str, str] | None = None) -> Devices:
    """What this machine gives a run without importing torch: the GPUs CUDA_VISIBLE_DEVICES pins
    (or nvidia-smi lists), else its CPU cores (one training process each)."""
    env = os.environ if environ is None else environ
    if override := env.get("TUNEDECK_WORKER_DEVICES", "").strip():
        kind, _, count = override.rpartition(":")
        return Devices(kind or "cpu", max(1, int(count)))
    pinned = env.get("CUDA_VISIBLE_DEVICES")
    gpus = _nvidia_smi_count()
    if gpus:
        if pinned is not None:
            gpus = min(gpus, len([d for d in pinned.split(",") if d.strip()]))
        if gpus:
            return Devices("cuda", gpus)
    return Devices("cpu", len(os.sched_getaffinity(0)))


def _nvidia_smi_count() -> int:
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in listing.stdout.splitlines())


def register_worker(
    session: Session, *, name: str, host: str, queues: list[str], devices: Devices
) -> None:
    """Insert or refresh this worker's row (the caller commits)."""
    now = utcnow()
    if not update_one(session, WorkerHost, WorkerHost.name == name, heartbeat_at=now,
                      queues=queues, device_kind=devices.kind, devices=devices.count):
        session.add(WorkerHost(name=name, host=host, queues=queues, device_kind=devices.kind,
                               devices=devices.count, started_at=now, heartbeat_at=now))


def unregister_worker(session: Session, *, name: str) -> None:
    session.execute(delete(WorkerHost).where(WorkerHost.name == name))


def live_workers(session: Session, *, lost_after_s: float, queue: str | None = None
                 ) -> list[WorkerHost]:
    cutoff = utcnow() - timedelta(seconds=lost_after_s)
    rows = session.scalars(select(WorkerHost).where(WorkerHost.heartbeat_at >= cutoff)
                           .order_by(WorkerHost.host, WorkerHost.id))
    return [row for row in rows if queue is None or queue in (row.queues or [])]


def placement_problem(*, num_processes: int, num_hosts: int, distributed: str, queue: str,
                      workers: list[WorkerHost]) -> str | None:
    """Why a run asking for ``num_processes`` on each of ``num_hosts`` hosts cannot train on the
    live ``workers`` of its queue (None: it can). A single process needs no live worker: it waits
    in the queue for one like any run."""
    if num_processes == 1 and num_hosts == 1:
        return None
    if not workers:
        return (f"hyperparameters.num_processes: no live worker listens on queue {queue!r} to "
                f"say how many devices it has, and a run on {num_processes * num_hosts} "
                "processes needs to know: start one (tunedeck worker) and launch again, or set "
                "num_processes and num_hosts to 1")
    most = max(row.devices for row in workers)
    if num_processes > most:
        biggest = next(row for row in workers if row.devices == most)
        unit = "GPUs" if biggest.device_kind == "cuda" else "CPU cores"
        return (f"hyperparameters.num_processes: {num_processes} processes per host, but the "
                f"largest live worker on queue {queue!r} ({biggest.host}) has {most} {unit}: "
                f"use at most {most}")
    hosts = sorted({row.host for row in workers})
    if num_hosts > len(hosts):
        return (f"hyperparameters.num_hosts: {num_hosts} hosts, but queue {queue!r} has live "
                f"workers on {len(hosts)} ({', '.join(hosts)}): use at most {len(hosts)} or "
                "start a worker on another host")
    if distributed == "fsdp" and not any(row.device_kind == "cuda" for row in workers):
        return ("hyperparameters.distributed: fsdp shards the model over GPUs (NCCL), and no live "
                f"worker on queue {queue!r} has a CUDA GPU: use ddp")
    return None
