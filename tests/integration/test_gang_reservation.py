"""Gang placement (app/domain/gang.py): the devices of every host of a run over several hosts are
reserved in one transaction, so two such runs competing for the same hosts never both hold part
of them; a run that cannot be placed says why; the other hosts' nodes are taken by their host."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app.core.config import settings
from app.core.db import make_engine
from app.core.migrate import upgrade_to_head
from app.domain import gang, placement
from app.domain.models import DeviceReservation, GangNode, Run, RunStatus
from app.domain.runs import transition
from tests.conftest import scratch_postgres
from tests.factories import add_run
from worker import claims
from worker.claims import note_waiting_while_busy

LOST = 45


def _register(session, host: str, name: str | None = None, devices: int = 1,
              queue: str = "gang") -> None:
    placement.register_worker(session, name=name or f"{host}:1", host=host, queues=[queue],
                              devices=placement.Devices("cpu", devices))
    session.commit()


def _reserve(session, run_id: int, host: str):
    return gang.reserve_gang(session, run_id=run_id, attempt=1, host=host, worker=f"{host}:1",
                             candidates=["cpu:0"], count=1, num_hosts=2, queue="gang",
                             lost_after_s=LOST)


def _held(session, run_id: int) -> list[tuple[str, str]]:
    return sorted(session.execute(select(DeviceReservation.host, DeviceReservation.device)
                                  .where(DeviceReservation.run_id == run_id)).all())


@pytest.fixture(scope="module")
def engine():
    url = scratch_postgres("gang")
    upgrade_to_head(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.mark.postgres
def test_two_gang_runs_competing_for_two_hosts_one_gets_both_the_other_none(engine):
    with Session(engine) as session:
        _register(session, "host-a")
        _register(session, "host-b")
        first, second = (add_run(session, name=n, queue="gang").id for n in ("first", "second"))

    # Both workers read the free devices before either writes: each sees both hosts free, so
    # the unique constraint alone decides between them at commit.
    both_read = threading.Barrier(2, timeout=30)
    results: dict[int, object] = {}

    def claim(run_id: int, host: str) -> None:
        with Session(engine) as session:
            @event.listens_for(session, "before_commit")
            def wait_for_the_other(session) -> None:
                if any(isinstance(row, DeviceReservation) for row in session.new):
                    both_read.wait()

            results[run_id] = _reserve(session, run_id, host)

    threads = [threading.Thread(target=claim, args=(first, "host-a")),
               threading.Thread(target=claim, args=(second, "host-b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winners = [run_id for run_id, result in results.items() if isinstance(result, list)]
    assert len(winners) == 1, results
    winner = winners[0]
    loser = second if winner == first else first
    # Its commit failed on the unique constraint; it rolled back, looked again, and waits.
    assert f"0 free of the 1 needed (devices held by run {winner})" in results[loser], results
    with Session(engine) as session:
        assert _held(session, winner) == [("host-a", "cpu:0"), ("host-b", "cpu:0")]
        assert _held(session, loser) == []  # nothing partial
        assert session.scalar(select(func.count()).select_from(GangNode)
                              .where(GangNode.run_id == loser)) == 0
        nodes = session.scalars(select(GangNode).where(GangNode.run_id == winner)
                                .order_by(GangNode.node_rank)).all()
        assert [(n.node_rank, n.state) for n in nodes] == [(0, "running"), (1, "pending")]

        # The loser waits, saying which hosts are busy and with what.
        reason = _reserve(session, loser, "host-a")
        assert isinstance(reason, str)
        assert reason.startswith("2 hosts × 1 devices needed; queue 'gang' has 2 live hosts")
        assert f"0 free of the 1 needed (devices held by run {winner})" in reason, reason

        # Once the winner runs, its other host's worker takes the pending node, and only once.
        transition(session, run_id=winner, to=RunStatus.running, attempt=1,
                   rendezvous_endpoint="127.0.0.1:29999")
        other = nodes[1].host
        # Until a worker of that host takes it, its node is pending: past the join timeout, the
        # host is named as the one that never joined.
        assert gang.node_problem(session, run_id=winner, attempt=1, lost_after_s=LOST,
                                 join_timeout_s=-1) == (
            f"host {other} (node 1 of 2) did not join within -1 s: no idle worker of that host "
            "started its part (TUNEDECK_GANG_JOIN_TIMEOUT_S)")
        node = gang.claim_node(session, host=other, worker=f"{other}:1")
        assert node is not None and (node.node_rank, node.num_nodes) == (1, 2)
        assert node.endpoint == "127.0.0.1:29999" and node.devices == ["cpu:0"]
        assert gang.claim_node(session, host=other, worker=f"{other}:2") is None
        assert gang.node_problem(session, run_id=winner, attempt=1, lost_after_s=LOST,
                                 join_timeout_s=60) is None
        # A node whose worker stopped heartbeating is a lost host, named.
        problem = gang.node_problem(session, run_id=winner, attempt=1, lost_after_s=-1,
                                    join_timeout_s=60)
        assert problem.startswith("host host-a (node 0 of 2) was lost") or problem.startswith(
            "host host-b (node 0 of 2) was lost"), problem


@pytest.mark.postgres
def test_a_gang_run_waits_with_the_reason_when_too_few_hosts_are_live(engine):
    with Session(engine) as session:
        _register(session, "host-c")
        run = add_run(session, name="lonely", queue="lonely")
        reason = gang.reserve_gang(session, run_id=run.id, attempt=1, host="host-c",
                                   worker="host-c:1", candidates=["cpu:0"], count=1,
                                   num_hosts=3, queue="lonely", lost_after_s=LOST)
        assert reason == ("3 hosts × 1 devices needed; queue 'lonely' has 1 live host: "
                          "host-c: ready")
        assert _held(session, run.id) == []


@pytest.mark.postgres
def test_a_worker_busy_with_a_node_says_why_a_gang_run_waits_and_claims_nothing(engine,
                                                                                monkeypatch):
    # Both hosts train the first run: the second's message may reach either host's worker,
    # also the one that trains its node in a thread; that worker only says why the run waits.
    gang_run = {"num_hosts": 2, "num_processes": 1}
    with Session(engine) as session:
        _register(session, "host-f", queue="busy")
        _register(session, "host-g", queue="busy")
        first = add_run(session, name="first", queue="busy", hyperparameters=gang_run).id
        second = add_run(session, name="second", queue="busy", hyperparameters=gang_run).id
        nodes = gang.reserve_gang(session, run_id=first, attempt=1, host="host-f",
                                  worker="host-f:1", candidates=["cpu:0"], count=1,
                                  num_hosts=2, queue="busy", lost_after_s=LOST)
        assert isinstance(nodes, list), nodes
        transition(session, run_id=first, to=RunStatus.running, attempt=1)

        monkeypatch.setattr(settings, "worker_host_name", "host-g")  # one device, held
        monkeypatch.setattr(claims, "offered_devices", lambda: placement.Devices("cpu", 1))
        note_waiting_while_busy(session, second)
        run = session.get(Run, second)
        session.refresh(run)
        assert (run.status, run.phase) == (RunStatus.queued, "waiting_for_devices")
        assert run.waiting_reason.startswith(
            "2 hosts × 1 devices needed; queue 'busy' has 2 live hosts"), run.waiting_reason
        assert f"host-g: 0 free of the 1 needed (devices held by run {first})" \
            in run.waiting_reason, run.waiting_reason
        assert _held(session, second) == []

        # A run that is no longer queued keeps its state.
        note_waiting_while_busy(session, first)
        session.refresh(session.get(Run, first))
        assert session.get(Run, first).phase != "waiting_for_devices"
