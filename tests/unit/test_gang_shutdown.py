"""A worker's warm shutdown and its host's node of a run over several hosts: Celery lets the
worker's task end before the worker exits, and the node this worker trains on a thread of its own
ends too (cut short, it would fail its run, or leave node 0's torchrun waiting for it at its exit
barrier for minutes)."""

from __future__ import annotations

import contextlib
import threading
from types import SimpleNamespace

from worker import gang as nodes


def test_a_warm_shutdown_lets_the_node_this_worker_trains_end(monkeypatch):
    monkeypatch.setattr(nodes, "_polling_stop", threading.Event())
    monkeypatch.setattr(nodes, "_POLLER", [])
    monkeypatch.setattr(nodes, "_NODE_THREADS", set())
    node = SimpleNamespace(run_id=7, node_rank=1, num_nodes=2, endpoint="127.0.0.1:1")
    monkeypatch.setattr(nodes, "session_scope", contextlib.nullcontext)
    monkeypatch.setattr(nodes.gang, "claim_node", lambda session, **_: node)
    monkeypatch.setattr(nodes.gang, "this_host", lambda: "host-b")
    training, may_end, events = threading.Event(), threading.Event(), []

    def run_node(claimed, *, log_name):
        assert claimed is node and log_name == "train-node-1.log"
        training.set()
        may_end.wait(30)
        events.append("node ended")
        return 0

    monkeypatch.setattr(nodes, "run_node", run_node)
    monkeypatch.setattr(nodes, "_release_host", lambda run_id: events.append(f"released {run_id}"))

    nodes.poll_nodes()
    assert training.wait(30)
    assert not nodes.TRAINING.acquire(blocking=False)  # held by the node
    stopper = threading.Thread(target=nodes.stop_polling)
    stopper.start()
    stopper.join(0.5)
    assert stopper.is_alive() and events == []  # still waiting for the node
    may_end.set()
    stopper.join(30)
    assert not stopper.is_alive()
    assert events == ["node ended", "released 7"]
    assert nodes.TRAINING.acquire(blocking=False)  # released by the node's end
    nodes.TRAINING.release()
    assert nodes._polling_stop.is_set() and not nodes._NODE_THREADS
