"""How a worker claims a waiting run of its queue: the best one first (app/domain/queue.py), its
devices reserved before the claim (all or none, app/domain/placement.py), and for a run over
several hosts every host's devices at once, this worker becoming its node 0 (app/domain/gang.py).
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass

from sqlalchemy import select

from app.core.config import settings
from app.domain import gang, placement
from app.domain.hyperparameters import validate_hyperparameters
from app.domain.models import Run, RunStatus, utcnow
from app.domain.queue import CLAIM_ATTEMPTS, not_paused, waiting_order
from app.domain.run_phases import set_waiting_for_devices
from app.domain.runs import transition


@dataclass(frozen=True)
class Claim:
    run_id: int
    num_processes: int
    devices: list[str] | None  # None: the run waits for devices (or hosts)
    node: gang.NodeAssignment | None = None  # node 0 of a run over several hosts


def claim_best(session, *, queue: str) -> Claim | None:  # type: ignore[no-untyped-def]
    """The best waiting run of ``queue`` now claimed by this worker; its devices None when
    they are held by other runs (it waits, saying so); None when nothing there can be claimed
    (empty or paused)."""
    tried: set[int] = set()
    for _ in range(CLAIM_ATTEMPTS):
        query = (select(Run)
                 .where(Run.status == RunStatus.queued, Run.queue == queue, not_paused(),
                        Run.cancel_requested.is_(False))
                 .order_by(*waiting_order()).limit(1))
        if tried:
            query = query.where(Run.id.not_in(tried))
        candidate = session.scalar(query)
        if candidate is None:
            session.commit()
            return None
        candidate_id, attempt = candidate.id, candidate.attempt + 1
        num_processes, num_hosts = _placement(candidate)
        session.commit()  # end the read: the reservation and the claim are their own statements
        if num_hosts > 1:
            claim = _claim_gang(session, candidate_id, attempt=attempt, queue=queue,
                                num_processes=num_processes, num_hosts=num_hosts)
            if claim is not None:
                return claim
            tried.add(candidate_id)
            continue
        devices = placement.reserve_devices(
            session, host=gang.this_host(), worker=worker_identity(), run_id=candidate_id,
            candidates=offered_devices().ids, count=num_processes)
        if devices is None:
            set_waiting_for_devices(session, candidate_id)
            return Claim(candidate_id, num_processes, None)
        if transition(session, run_id=candidate_id, to=RunStatus.running, only_if=not_paused(),
                      worker=worker_identity(), heartbeat_at=utcnow(),
                      attempt=Run.attempt + 1, error=None, waiting_reason=None,
                      hosts=[{"host": gang.this_host(), "devices": devices}],
                      rendezvous_endpoint=None):
            return Claim(candidate_id, num_processes, devices)
        placement.release_devices(session, run_id=candidate_id)
        tried.add(candidate_id)  # another worker took it (or it was cancelled or paused): next
    return None


def note_waiting_while_busy(session, run_id: int) -> None:  # type: ignore[no-untyped-def]
    """This worker trains its host's node of another run, so it claims nothing: it only says
    why the queued ``run_id`` waits (for a run over several hosts, which hosts are busy with
    what), so that the run page explains the wait whichever worker the message reached."""
    run = session.get(Run, run_id)
    if run is None or run.status != RunStatus.queued:
        return
    num_processes, num_hosts = _placement(run)
    reason = None
    if num_hosts > 1:
        offers = gang.host_offers(session, queue=run.queue, own_host=gang.this_host(),
                                  own_devices=list(offered_devices().ids),
                                  lost_after_s=settings.worker_lost_after_s, own_idle=False)
        reason = gang.waiting_reason(offers, num_hosts=num_hosts, count=num_processes,
                                     queue=run.queue)
    set_waiting_for_devices(session, run_id, reason=reason)
    session.commit()


def _claim_gang(session, run_id: int, *, attempt: int, queue: str,  # type: ignore[no-untyped-def]
                num_processes: int, num_hosts: int) -> Claim | None:
    """Reserve the devices of ``num_hosts`` hosts for the run (app/domain/gang.py) and claim it
    as its node 0, with a rendezvous on this host; None when another worker took it first."""
    worker = worker_identity()
    nodes = gang.reserve_gang(
        session, run_id=run_id, attempt=attempt, host=gang.this_host(), worker=worker,
        candidates=offered_devices().ids, count=num_processes, num_hosts=num_hosts, queue=queue,
        lost_after_s=settings.worker_lost_after_s)
    if isinstance(nodes, str):
        set_waiting_for_devices(session, run_id, reason=nodes)
        session.commit()
        return Claim(run_id, num_processes, None)
    endpoint = f"{gang.this_address()}:{_free_port()}"
    if transition(session, run_id=run_id, to=RunStatus.running, only_if=not_paused(),
                  worker=worker, heartbeat_at=utcnow(), attempt=attempt, error=None,
                  waiting_reason=None, rendezvous_endpoint=endpoint,
                  hosts=[{"host": node.host, "devices": node.devices} for node in nodes]):
        return Claim(run_id, num_processes, nodes[0].devices, gang.NodeAssignment(
            run_id=run_id, attempt=attempt, node_rank=0, num_nodes=num_hosts,
            devices=nodes[0].devices, endpoint=endpoint))
    gang.release_gang(session, run_id=run_id, attempt=attempt, worker=worker)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def worker_identity() -> str:
    """"host:pid" of this worker, stored on what it claims (see reaper.dead_on_this_host)."""
    return f"{gang.this_host()}:{os.getpid()}"


@functools.cache
def offered_devices() -> placement.Devices:
    return placement.local_devices()


def _placement(run: Run) -> tuple[int, int]:
    """(processes per host, hosts) the run asks for."""
    try:
        hyperparameters = validate_hyperparameters(run.strategy, run.hyperparameters)
    except ValueError:  # the training process records what is wrong with them
        return 1, 1
    return hyperparameters.num_processes, hyperparameters.num_hosts
