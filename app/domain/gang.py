"""Runs over several hosts ("gang" placement): a run asking for H hosts × N processes starts only
once H distinct live hosts of its queue can each give N free devices and have an idle worker,
and then all of those devices are reserved in one transaction, all or none.

The worker that claims the run becomes node 0: ``reserve_gang`` writes the reservations and one
GangNode per host (node 0 its own, the others pending). Two gang runs competing for the same
hosts cannot both win: (host, device) is unique, so the second commit fails and that worker rolls
back everything it inserted and waits; rows are inserted in (host, device) order so that two such
transactions never wait for each other crosswise (no deadlock). A worker of each other host takes
its host's pending node (``claim_node``, the polling of worker/gang.py) and starts its torchrun
node at the rendezvous node 0 wrote on the run. Every node heartbeats its row; ``node_problem``
names a host that was lost (stale heartbeat) or never joined.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import and_, delete, not_, or_, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from app.core.config import settings
from app.core.sql import update_one
from app.domain.models import DeviceReservation, GangNode, Run, RunStatus, utcnow
from app.domain.placement import CLAIM_GRACE_S, held_devices, holding, live_workers

RESERVE_ATTEMPTS = 3


def this_host() -> str:
    """This worker's host as placement names it (TUNEDECK_WORKER_HOST_NAME, else the hostname)."""
    return settings.worker_host_name or socket.gethostname()


def this_address() -> str:
    """Where the other hosts of a run reach this one (TUNEDECK_WORKER_ADDRESS)."""
    if settings.worker_address:
        return settings.worker_address
    return "127.0.0.1" if settings.worker_host_name else socket.getfqdn()


@dataclass(frozen=True)
class NodePlan:
    host: str
    devices: list[str]


@dataclass
class HostOffer:
    """What one live host of the queue can give a run now."""

    host: str
    free: list[str]
    idle: bool  # one of its workers trains nothing now
    busy_with: set[int] = field(default_factory=set)  # runs holding its other devices

    def describe(self, count: int) -> str:
        held = f"devices held by run {', '.join(map(str, sorted(self.busy_with)))}" \
            if self.busy_with else ""
        if len(self.free) < count:
            return f"{self.host}: {len(self.free)} free of the {count} needed" + (
                f" ({held})" if held else "")
        if not self.idle:
            return f"{self.host}: its workers are all training"
        return f"{self.host}: ready"


def host_offers(session: Session, *, queue: str, own_host: str, own_devices: list[str],
                lost_after_s: float, own_idle: bool = True) -> dict[str, HostOffer]:
    """host → what it can give, for every live host of ``queue`` (``own_host``: this worker's,
    idle when it is claiming)."""
    cutoff = utcnow() - timedelta(seconds=CLAIM_GRACE_S)
    busy_workers = set(session.scalars(select(DeviceReservation.worker).where(holding(cutoff))))
    busy_workers |= set(session.scalars(
        select(GangNode.worker).join(Run, Run.id == GangNode.run_id)
        .where(GangNode.state == "running", Run.status == RunStatus.running,
               GangNode.attempt == Run.attempt)))
    by_host: dict[str, list] = {}
    for row in live_workers(session, lost_after_s=lost_after_s, queue=queue):
        by_host.setdefault(row.host, []).append(row)
    offers = {}
    for host in sorted(set(by_host) | {own_host}):
        held = held_devices(session, host=host)
        if host == own_host:
            candidates, idle = list(own_devices), own_idle
        else:
            candidates = list(dict.fromkeys(d for row in by_host[host] for d in row.device_ids))
            idle = any(row.name not in busy_workers for row in by_host[host])
        offers[host] = HostOffer(host=host, free=[d for d in candidates if d not in held],
                                 idle=idle, busy_with=set(held.values()))
    return offers


def waiting_reason(offers: dict[str, HostOffer], *, num_hosts: int, count: int,
                   queue: str) -> str:
    live = len(offers)
    return (f"{num_hosts} hosts × {count} devices needed; queue {queue!r} has {live} live "
            f"host{'s' if live != 1 else ''}: "
            + "; ".join(offer.describe(count) for offer in offers.values()))


def reserve_gang(session: Session, *, run_id: int, attempt: int, host: str, worker: str,
                 candidates: list[str] | tuple[str, ...], count: int, num_hosts: int, queue: str,
                 lost_after_s: float) -> list[NodePlan] | str:
    """Reserve ``count`` devices on each of ``num_hosts`` hosts (this worker's ``host`` first,
    node 0) for ``run_id``'s ``attempt``, all in one transaction, and write its GangNode rows;
    commits. Returns the nodes in node-rank order, or why the run must wait (nothing reserved).
    """
    cutoff = utcnow() - timedelta(seconds=CLAIM_GRACE_S)
    # Rows that no longer hold anything, and this run's own from an attempt that never ran.
    session.execute(delete(DeviceReservation).where(not_(holding(cutoff))))
    session.execute(delete(DeviceReservation).where(DeviceReservation.run_id == run_id,
                                                    DeviceReservation.worker == worker))
    session.commit()
    reason = ""
    for _attempt in range(RESERVE_ATTEMPTS):
        offers = host_offers(session, queue=queue, own_host=host, own_devices=list(candidates),
                             lost_after_s=lost_after_s)
        own = offers[host]
        others = [offer for name, offer in offers.items()
                  if name != host and offer.idle and len(offer.free) >= count]
        if len(own.free) < count or len(others) < num_hosts - 1:
            session.commit()
            return waiting_reason(offers, num_hosts=num_hosts, count=count, queue=queue)
        nodes = [NodePlan(host, own.free[:count])] + [
            NodePlan(offer.host, offer.free[:count]) for offer in others[:num_hosts - 1]]
        now = utcnow()
        session.add_all(
            DeviceReservation(host=name, device=device, run_id=run_id, worker=worker,
                              reserved_at=now)
            for name, device in sorted((n.host, d) for n in nodes for d in n.devices))
        session.add_all(
            GangNode(run_id=run_id, attempt=attempt, node_rank=rank, host=node.host,
                     devices=node.devices, state="running" if rank == 0 else "pending",
                     worker=worker if rank == 0 else None, heartbeat_at=now)
            for rank, node in enumerate(nodes))
        try:
            session.commit()
        except (IntegrityError, OperationalError):
            # Another run (or another worker claiming this one) took a device first: nothing of
            # ours stays; look again, then wait.
            session.rollback()
            reason = ("another run reserved devices of the same hosts first; waiting for "
                      f"{num_hosts} hosts to be free again")
            continue
        return nodes
    return reason


def release_gang(session: Session, *, run_id: int, attempt: int, worker: str) -> None:
    """Undo a reservation whose claim lost (the run was taken or cancelled meanwhile); commits."""
    session.execute(delete(DeviceReservation).where(DeviceReservation.run_id == run_id,
                                                    DeviceReservation.worker == worker))
    session.execute(delete(GangNode).where(GangNode.run_id == run_id,
                                           GangNode.attempt == attempt))
    session.commit()


@dataclass(frozen=True)
class NodeAssignment:
    """One host's part of a running run, as its worker starts it."""

    run_id: int
    attempt: int
    node_rank: int
    num_nodes: int
    devices: list[str]
    endpoint: str


def claim_node(session: Session, *, host: str, worker: str) -> NodeAssignment | None:
    """Take the oldest pending node of ``host`` of a running run for ``worker``; commits."""
    rows = session.scalars(
        select(GangNode).join(Run, Run.id == GangNode.run_id)
        .where(GangNode.host == host, GangNode.state == "pending",
               Run.status == RunStatus.running, GangNode.attempt == Run.attempt,
               Run.cancel_requested.is_(False))
        .order_by(GangNode.id)).all()
    for row in rows:
        if not update_one(session, GangNode, GangNode.id == row.id, GangNode.state == "pending",
                          state="running", worker=worker, heartbeat_at=utcnow()):
            continue  # another worker of this host took it
        run = session.get(Run, row.run_id)
        num_nodes = len(session.scalars(select(GangNode.id).where(
            GangNode.run_id == row.run_id, GangNode.attempt == row.attempt)).all())
        assignment = NodeAssignment(
            run_id=row.run_id, attempt=row.attempt, node_rank=row.node_rank, num_nodes=num_nodes,
            devices=list(row.devices), endpoint=run.rendezvous_endpoint or "")
        session.commit()
        return assignment
    session.commit()
    return None


def beat_node(session: Session, *, run_id: int, attempt: int, node_rank: int) -> None:
    """The node's worker is alive (the caller commits)."""
    update_one(session, GangNode, GangNode.run_id == run_id, GangNode.attempt == attempt,
               GangNode.node_rank == node_rank, GangNode.state == "running",
               heartbeat_at=utcnow())


def end_node(session: Session, *, run_id: int, attempt: int, node_rank: int, state: str,
             error: str | None = None) -> None:
    """The node's torchrun exited (``state`` exited or failed; the caller commits)."""
    update_one(session, GangNode, GangNode.run_id == run_id, GangNode.attempt == attempt,
               GangNode.node_rank == node_rank, state=state, error=error)


def node_problem(session: Session, *, run_id: int, attempt: int, lost_after_s: float,
                 join_timeout_s: float) -> str | None:
    """Why the run's gang is broken, naming the host: a node whose worker stopped heartbeating,
    or one that no worker of its host took in time; None while every node is fine."""
    now = utcnow()
    nodes = session.scalars(select(GangNode).where(
        GangNode.run_id == run_id, GangNode.attempt == attempt).order_by(GangNode.node_rank)
    ).all()
    # Compared in SQL: SQLite hands back naive datetimes.
    stale = set(session.scalars(select(GangNode.id).where(
        GangNode.run_id == run_id, GangNode.attempt == attempt,
        or_(and_(GangNode.state == "running",
                 GangNode.heartbeat_at < now - timedelta(seconds=lost_after_s)),
            and_(GangNode.state == "pending",
                 GangNode.heartbeat_at < now - timedelta(seconds=join_timeout_s))))))
    for node in nodes:
        if node.id not in stale:
            continue
        where = f"host {node.host} (node {node.node_rank} of {len(nodes)})"
        if node.state == "running":
            return (f"{where} was lost: its worker {node.worker} stopped heartbeating for "
                    f"{lost_after_s:g} s; the other hosts' ranks were stopped")
        return (f"{where} did not join within {join_timeout_s:g} s: no idle worker of that "
                "host started its part (TUNEDECK_GANG_JOIN_TIMEOUT_S)")
    return None


def node_host(session: Session, *, run_id: int, attempt: int, node_rank: int) -> str:
    row = session.scalar(select(GangNode.host).where(
        GangNode.run_id == run_id, GangNode.attempt == attempt, GangNode.node_rank == node_rank))
    return row or "?"
