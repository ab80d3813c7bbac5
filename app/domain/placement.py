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

from sqlalchemy import and_, delete, not_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.sql import update_one
from app.domain.models import DeviceReservation, Run, RunStatus, WorkerHost, utcnow

# A reservation made for a run that is still being claimed counts this long without it running.
CLAIM_GRACE_S = 120


@dataclass(frozen=True)
class Devices:
    kind: str  # "cpu" or "cuda"
    count: int
    ids: tuple[str, ...] = ()  # as reservations name them: "cuda:2", "cpu:0"

    def __post_init__(self) -> None:
        if not self.ids:
            object.__setattr__(self, "ids", tuple(f"{self.kind}:{i}" for i in range(self.count)))


def local_devices(environ: dict[str, str] | None = None) -> Devices:
    """What this machine gives a run without importing torch: the GPUs CUDA_VISIBLE_DEVICES pins
    (or nvidia-smi lists), else its CPU cores (one training process each)."""
    env = os.environ if environ is None else environ
    if override := env.get("TUNEDECK_WORKER_DEVICES", "").strip():
        kind, _, count = override.rpartition(":")
        return Devices(kind or "cpu", max(1, int(count)))
    gpus = _nvidia_smi_count()
    if gpus:
        pinned = env.get("CUDA_VISIBLE_DEVICES")
        indices = ([d.strip() for d in pinned.split(",") if d.strip().isdigit()]
                   if pinned is not None else [str(i) for i in range(gpus)])
        if indices:
            return Devices("cuda", len(indices), tuple(f"cuda:{i}" for i in indices))
    cores = sorted(os.sched_getaffinity(0))
    return Devices("cpu", len(cores), tuple(f"cpu:{i}" for i in cores))


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
                      queues=queues, device_kind=devices.kind, devices=devices.count,
                      device_ids=list(devices.ids)):
        session.add(WorkerHost(name=name, host=host, queues=queues, device_kind=devices.kind,
                               devices=devices.count, device_ids=list(devices.ids),
                               started_at=now, heartbeat_at=now))


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


def holding(now_cutoff):  # type: ignore[no-untyped-def]
    """Reservations that still hold their device: their run runs, or it is being claimed."""
    running = select(Run.id).where(Run.status == RunStatus.running)
    return or_(DeviceReservation.run_id.in_(running), DeviceReservation.reserved_at >= now_cutoff)


def held_devices(session: Session, *, host: str) -> dict[str, int]:
    """device → run id, for the devices of ``host`` that runs hold now."""
    cutoff = utcnow() - timedelta(seconds=CLAIM_GRACE_S)
    rows = session.execute(select(DeviceReservation.device, DeviceReservation.run_id)
                           .where(DeviceReservation.host == host, holding(cutoff)))
    return {device: run_id for device, run_id in rows}


def reserve_devices(session: Session, *, host: str, worker: str, run_id: int,
                    candidates: tuple[str, ...] | list[str], count: int) -> list[str] | None:
    """Reserve ``count`` of ``candidates`` (this worker's devices) on ``host`` for ``run_id``, all
    or none; commits. None when fewer are free: other worker processes of the host gave them to
    other runs. Two workers reserving at once cannot both win a device: (host, device) is unique.
    """
    for _attempt in range(5):
        cutoff = utcnow() - timedelta(seconds=CLAIM_GRACE_S)
        # A finished (or reaped) run's rows no longer hold anything: clear them for the insert.
        session.execute(delete(DeviceReservation).where(
            DeviceReservation.host == host, not_(holding(cutoff))))
        session.execute(delete(DeviceReservation).where(
            and_(DeviceReservation.run_id == run_id, DeviceReservation.host == host)))
        taken = held_devices(session, host=host)
        free = [device for device in candidates if device not in taken]
        if len(free) < count:
            session.commit()
            return None
        chosen = free[:count]
        session.add_all(DeviceReservation(host=host, device=device, run_id=run_id, worker=worker,
                                          reserved_at=utcnow()) for device in chosen)
        try:
            session.commit()
        except IntegrityError:  # another worker of this host took one of them first: look again
            session.rollback()
            continue
        return chosen
    return None


def release_devices(session: Session, *, run_id: int) -> None:
    """Free the run's devices (the caller commits). Also implied when the run stops running."""
    session.execute(delete(DeviceReservation).where(DeviceReservation.run_id == run_id))
