"""Priorities and the queue against the migrated database: a worker's claim takes the waiting
run of its queue with the highest priority (ties by age), atomically, never from a paused queue;
the queue API shows running and waiting runs in that order and moves them."""

from __future__ import annotations

import threading
import uuid

import pytest

from app.core.db import SessionLocal
from app.domain.models import Run, RunStatus
from app.domain.queue import claim_next
from tests.factories import add_dataset, add_run

pytestmark = pytest.mark.usefixtures("migrated_app")


def _queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


def _waiting(queue: str, priorities: list[int]) -> list[int]:
    with SessionLocal() as session:
        dataset = add_dataset(session, name=queue)
        ids = []
        for index, priority in enumerate(priorities):
            run = add_run(session, dataset=dataset, name=f"{queue}-{index}", queue=queue,
                          priority=priority)
            run.queue_position = run.id
            session.commit()
            ids.append(run.id)
        return ids


def _claim(queue: str, worker: str = "w:1") -> int | None:
    with SessionLocal() as session:
        return claim_next(session, queue=queue, worker=worker, attempt=Run.attempt + 1)


def test_three_waiting_runs_are_claimed_in_priority_order_then_by_age():
    queue = _queue()
    low, high, middle, middle_later = _waiting(queue, [0, 5, 1, 1])
    other = _waiting(_queue(), [100])  # another queue's run is never taken
    assert [_claim(queue) for _ in range(5)] == [high, middle, middle_later, low, None]
    with SessionLocal() as session:
        claimed = session.get(Run, high)
        assert claimed.status == RunStatus.running and claimed.worker == "w:1"
        assert claimed.attempt == 1 and claimed.started_at is not None
        assert session.get(Run, other[0]).status == RunStatus.queued


def test_many_workers_claim_each_run_exactly_once():
    queue = _queue()
    ids = _waiting(queue, [i % 3 for i in range(12)])
    claims: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (run_id := _claim(queue, worker=name)) is not None:
            with lock:
                claims.append(run_id)

    threads = [threading.Thread(target=worker, args=(f"w:{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(claims) == sorted(ids)  # every run once, none twice


def test_paused_queue_is_not_claimed_and_resuming_publishes_again(client):
    queue = _queue()
    first, second = _waiting(queue, [0, 0])
    paused = client.post(f"/api/queues/{queue}/pause")
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert [r["id"] for r in paused.json()["waiting"]] == [first, second]
    assert _claim(queue) is None
    listed = {q["name"]: q for q in client.get("/api/queues").json()}
    assert listed[queue]["paused"] is True
    resumed = client.post(f"/api/queues/{queue}/resume")
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    assert _claim(queue) == first
    assert client.post("/api/queues/bad name!/pause").status_code in (404, 422)


def test_queue_api_orders_and_moves_waiting_runs(client):
    queue = _queue()
    a, b, c = _waiting(queue, [0, 0, 0])

    def order() -> list[int]:
        queues = {q["name"]: q for q in client.get("/api/queues").json()}
        return [r["id"] for r in queues[queue]["waiting"]]

    assert order() == [a, b, c]
    assert client.put(f"/api/runs/{c}/priority", json={"priority": 3}).status_code == 200
    assert order() == [c, a, b]
    assert client.post(f"/api/runs/{b}/move", json={"direction": "up"}).status_code == 200
    assert order() == [c, b, a]
    client.post(f"/api/runs/{c}/move", json={"direction": "down"})
    assert order() == [b, c, a]
    client.post(f"/api/runs/{b}/move", json={"direction": "up"})  # already first: no change
    assert order() == [b, c, a]
    assert _claim(queue) == b
    # The claimed run now shows as running, with its worker.
    queues = {q["name"]: q for q in client.get("/api/queues").json()}
    assert [(r["id"], r["worker"]) for r in queues[queue]["running"]] == [(b, "w:1")]
    moved = client.post(f"/api/runs/{b}/move", json={"direction": "up"})
    assert moved.status_code == 409 and "waiting" in moved.json()["detail"]
    assert client.put(f"/api/runs/{a}/priority", json={"priority": 5000}).status_code == 422
    assert client.post(f"/api/runs/{a}/move", json={"direction": "left"}).status_code == 422


def test_launch_takes_a_priority_and_the_queue_page_renders(client):
    dataset = client.post("/api/datasets", files={"file": (
        "q.jsonl", b'{"prompt": "a", "completion": "b"}\n{"prompt": "c", "completion": "d"}\n')})
    queue = _queue()
    body = {"dataset_id": dataset.json()["id"], "base_model": "tiny-random-llama",
            "queue": queue, "hyperparameters": {"max_steps": 1}}
    low = client.post("/api/runs", json=body).json()
    high = client.post("/api/runs", json={**body, "priority": 7}).json()
    assert high["priority"] == 7 and low["priority"] == 0
    assert _claim(queue) == high["id"]
    assert client.post("/api/runs", json={**body, "priority": 1001}).status_code == 422
    page = client.get("/queue")
    assert page.status_code == 200 and 'id="queues-data"' in page.text
    assert queue in page.text and "/static/queue.js" in page.text
