"""A worker's part in runs over several hosts (app/domain/gang.py).

The worker whose task claimed the run trains node 0 (worker/tasks.py); every other chosen host's
node is started by one of that host's workers, which looks for pending nodes of its host at each
registration heartbeat while it trains nothing (``poll_nodes``). While a node runs, its worker
heartbeats the node's row and watches the run (``NodeWatch``): when the run failed or was
cancelled, or another host is gone, it kills its node's process group. When its torchrun fails,
``settle_failure`` decides which host the run's error names: a rank's own error names its host;
a peer-gone error waits a moment for the host that vanished to show up as lost.
"""

from __future__ import annotations

import logging
import threading
import time

from celery.signals import worker_ready, worker_shutdown
from sqlalchemy import delete, select

from app.core.config import settings
from app.core.db import session_scope
from app.domain import gang
from app.domain.models import DeviceReservation, Run, RunStatus
from app.domain.runs import transition
from worker import children, distributed
from worker.tasks import (
    HEARTBEAT_INTERVAL_S,
    TRAINING,
    _cancel_requested,
    _cancelled_after_kill,
    _log_since,
    _log_tail,
    wait_heartbeating,
    worker_identity,
)

log = logging.getLogger(__name__)
# A node's worker heartbeats every HEARTBEAT_INTERVAL_S: three missed beats is a lost host.
LOST_AFTER_S = min(float(settings.worker_lost_after_s), 3 * HEARTBEAT_INTERVAL_S)
# How often an idle worker looks for its host's pending nodes (node 0 waits for them to join).
POLL_INTERVAL_S = min(2.0, HEARTBEAT_INTERVAL_S)


class NodeWatch:
    """Called at every heartbeat of a node's torchrun: refreshes the node's row and answers
    whether the node must stop now (the run failed or was cancelled, or another host is gone:
    then this call fails the run, naming that host)."""

    def __init__(self, node: gang.NodeAssignment) -> None:
        self.node = node

    def __call__(self) -> bool:
        node = self.node
        with session_scope() as session:
            gang.beat_node(session, run_id=node.run_id, attempt=node.attempt,
                           node_rank=node.node_rank)
            session.commit()
            row = session.execute(select(Run.status, Run.attempt)
                                  .where(Run.id == node.run_id)).one_or_none()
            if row is None:  # deleted
                return True
            status, attempt = row
            if status != RunStatus.running or attempt != node.attempt:  # a later attempt runs
                return status != RunStatus.completed  # completed: its ranks end by themselves
            problem = gang.node_problem(session, run_id=node.run_id, attempt=node.attempt,
                                        lost_after_s=LOST_AFTER_S,
                                        join_timeout_s=settings.gang_join_timeout_s + 15)
            if problem:
                log.warning("run %s: %s", node.run_id, problem)
                transition(session, run_id=node.run_id, to=RunStatus.failed, error=problem)
                return True
        return False


def node_failure(log_text: str, log_dir, *, world_size: int,  # type: ignore[no-untyped-def]
                 returncode: int, tail: str) -> tuple[str, bool]:
    """(what this node's failure says, whether it is only a consequence of another host's)."""
    cause = distributed.root_cause(distributed.rank_failures(log_text, log_dir))
    if cause is not None:
        return cause.sentence(world_size), cause.consequential
    how = (f"its torchrun was killed by signal {-returncode}" if returncode < 0
           else f"its torchrun exited with code {returncode}")
    return f"{how}\n{tail}" if tail else how, True  # rendezvous and agent errors


def settle_failure(node: gang.NodeAssignment, error: str, *, consequential: bool) -> None:
    """This node's torchrun failed: fail the run, naming the host to blame."""
    with session_scope() as session:
        gang.end_node(session, run_id=node.run_id, attempt=node.attempt,
                      node_rank=node.node_rank, state="failed", error=error)
        session.commit()
        host = gang.node_host(session, run_id=node.run_id, attempt=node.attempt,
                              node_rank=node.node_rank)
    where = f"host {host} (node {node.node_rank} of {node.num_nodes})"
    deadline = time.monotonic() + (LOST_AFTER_S + 2 * HEARTBEAT_INTERVAL_S
                                   if consequential else 0)
    while True:
        with session_scope() as session:
            if session.scalar(select(Run.status).where(Run.id == node.run_id)) \
                    != RunStatus.running:
                return  # another host's worker (or the reaper, or a cancel) settled it
            problem = gang.node_problem(session, run_id=node.run_id, attempt=node.attempt,
                                        lost_after_s=LOST_AFTER_S,
                                        join_timeout_s=settings.gang_join_timeout_s)
            if problem or time.monotonic() >= deadline:
                transition(session, run_id=node.run_id, to=RunStatus.failed,
                           error=problem or f"{where}: {error}")
                return
        time.sleep(1)


def run_node(node: gang.NodeAssignment, *, log_name: str) -> int:
    """Start this host's torchrun node of ``node``'s run and watch it until it exits; records
    its outcome. Returns torchrun's exit code.

    Node 0 heartbeats the run too and follows its cancel like a one-host run (the ranks stop
    at one step, rank 0 broadcasting the flag; one stuck past the grace gets killed)."""
    log_dir = settings.checkpoints_dir / str(node.run_id)
    log_path = log_dir / log_name
    log_dir.mkdir(parents=True, exist_ok=True)
    distributed.clear_rank_errors(log_dir)  # an earlier attempt's must not explain this one
    offset = log_path.stat().st_size if log_path.exists() else 0
    command = distributed.gang_command(
        node.run_id, num_nodes=node.num_nodes, node_rank=node.node_rank,
        num_processes=len(node.devices), endpoint=node.endpoint,
        join_timeout_s=settings.gang_join_timeout_s, local_addr=gang.this_address())
    child = children.start(command, log_path=log_path, env=children.environment(node.devices))
    first = node.node_rank == 0
    code = wait_heartbeating(
        child, Run if first else None, node.run_id, stop=NodeWatch(node),
        cancelled=(lambda: _cancel_requested(node.run_id)) if first else None)
    if code == 0:
        with session_scope() as session:
            gang.end_node(session, run_id=node.run_id, attempt=node.attempt,
                          node_rank=node.node_rank, state="exited")
        return code
    if _cancelled_after_kill(node.run_id, code):
        return code
    error, consequential = node_failure(
        _log_since(log_path, offset), log_dir, returncode=code, tail=_log_tail(log_path),
        world_size=node.num_nodes * len(node.devices))
    settle_failure(node, error, consequential=consequential)
    return code


def _release_host(run_id: int) -> None:
    with session_scope() as session:
        session.execute(delete(DeviceReservation).where(
            DeviceReservation.run_id == run_id, DeviceReservation.host == gang.this_host()))


def _train_node(node: gang.NodeAssignment) -> None:
    try:
        log.info("run %s: starting node %s of %s at %s", node.run_id, node.node_rank,
                 node.num_nodes, node.endpoint)
        run_node(node, log_name=f"train-node-{node.node_rank}.log")
    except Exception:
        log.exception("node %s of run %s failed to run", node.node_rank, node.run_id)
    finally:
        try:
            _release_host(node.run_id)
        finally:
            TRAINING.release()
            _NODE_THREADS.discard(threading.current_thread())


def poll_nodes() -> None:
    """Start this host's pending node of a running run, if this worker trains nothing now (one
    training at a time per worker: its tasks wait for the node to end)."""
    if not TRAINING.acquire(blocking=False):
        return
    try:
        with session_scope() as session:
            node = gang.claim_node(session, host=gang.this_host(), worker=worker_identity())
    except Exception:
        TRAINING.release()
        raise
    if node is None:
        TRAINING.release()
        return
    # A daemon: a cold shutdown does not wait for it (a warm one does, see stop_polling).
    thread = threading.Thread(target=_train_node, args=(node,),
                              name=f"tunedeck-node-{node.run_id}", daemon=True)
    _NODE_THREADS.add(thread)
    thread.start()


_polling_stop = threading.Event()
# This worker's polling thread and node threads (one training at a time: at most one node).
_POLLER: list[threading.Thread] = []
_NODE_THREADS: set[threading.Thread] = set()


@worker_ready.connect
def poll_at_start(**_kwargs) -> None:  # type: ignore[no-untyped-def]
    """Look for this host's nodes of runs over several hosts while the worker lives."""

    def loop() -> None:
        while not _polling_stop.wait(POLL_INTERVAL_S):
            try:
                poll_nodes()
            except Exception:  # a database blip: look again next beat
                log.exception("looking for this host's nodes of runs failed")

    poller = threading.Thread(target=loop, name="tunedeck-node-poll", daemon=True)
    _POLLER.append(poller)
    poller.start()


@worker_shutdown.connect
def stop_polling(**_kwargs) -> None:  # type: ignore[no-untyped-def]
    """A warm shutdown (sent once the worker's task has ended) takes no more nodes and lets the
    node this worker trains end as well, as Celery lets a task end: a node cut short would fail
    a running run, and one cut short as its run completes leaves node 0's torchrun waiting for
    it at its exit barrier (minutes, its worker and devices held)."""
    _polling_stop.set()
    for poller in _POLLER:  # a poll in flight may still start a node
        poller.join()
    for thread in list(_NODE_THREADS):
        if thread.is_alive():
            log.info("warm shutdown: waiting for %s to end", thread.name)
        thread.join()
