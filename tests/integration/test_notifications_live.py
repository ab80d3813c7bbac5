"""Notifications through a live server and a real Celery worker training tiny-random-llama: a
local HTTP receiver gets a signed JSON webhook when a run completes (and when its automatic
evaluation finishes) and when a run fails; a receiver answering 500 is retried with back-off and
never delays the run's completion, and the failure shows on the run's notifications."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime

import pytest

from tests.conftest import start_server, stop_server
from tests.receiver import receiving

SECRET = "live-test-secret"
ROWS = [{"prompt": f"Say the word number {i}.", "completion": f" Word {i % 3}."}
        for i in range(12)]
HYPERPARAMETERS = {"max_steps": 2, "save_steps": 2, "eval_steps": 2, "eval_split": 0.25,
                   "per_device_train_batch_size": 2, "max_length": 48}


@pytest.fixture(scope="module")
def receiver():
    yield from receiving()


@pytest.fixture(scope="module")
def server(receiver):
    live = start_server("notify", extra_env={
        "TUNEDECK_NOTIFY_URLS": receiver.url("/hook"),
        "TUNEDECK_NOTIFY_SECRET": SECRET,
        "TUNEDECK_NOTIFY_RETRIES": "2",
        "TUNEDECK_NOTIFY_BACKOFF_S": "1",
    })
    yield live
    stop_server(live)


def signed_payload(request) -> dict:
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-TuneDeck-Signature-256"] == expected
    return json.loads(request.body)


def events(receiver, path: str, run_id: int) -> list[str]:
    return [json.loads(r.body)["event"] for r in receiver.at(path)
            if json.loads(r.body)["run"]["id"] == run_id]


@pytest.mark.slow
def test_signed_webhooks_for_completed_and_failed_runs_and_a_failing_receiver(server, receiver):
    with server.client() as client:
        body = "\n".join(json.dumps(r) for r in ROWS).encode()
        dataset = client.post("/api/datasets", files={"file": ("n.jsonl", body)}).json()
        launch = {"dataset_id": dataset["id"], "base_model": "tiny-random-llama",
                  "hyperparameters": HYPERPARAMETERS}
        ok = client.post("/api/runs", json={**launch, "name": "notify-ok"}).json()
        bad = client.post("/api/runs", json={**launch, "name": "notify-bad",
                                             "base_model": "nobody/no-such-model"}).json()
        # Its own target, which holds each request 2 s and then answers 500.
        receiver.answers["/broken"] = (500, 2.0)
        slow = client.post("/api/runs", json={**launch, "name": "notify-500",
                                              "notify_urls": [receiver.url("/broken")]}).json()

        assert server.wait_for_run(ok["id"])["status"] == "completed"
        assert server.wait_for_run(bad["id"])["status"] == "failed"
        finished = server.wait_for_run(slow["id"])
        assert finished["status"] == "completed"

        receiver.wait_for(lambda: "run.completed" in events(receiver, "/hook", ok["id"])
                          and "run.failed" in events(receiver, "/hook", bad["id"]))
        completed = next(signed_payload(r) for r in receiver.at("/hook")
                         if json.loads(r.body)["event"] == "run.completed")
        assert completed["run"]["id"] == ok["id"] and completed["run"]["step"] == 2
        assert completed["run"]["best_checkpoint"]["metric_name"] == "eval_loss"
        failed = next(signed_payload(r) for r in receiver.at("/hook")
                      if json.loads(r.body)["event"] == "run.failed")
        assert failed["run"]["id"] == bad["id"] and failed["type"] == "failure"
        assert "notify-bad failed" in failed["message"]
        # The automatic evaluation of the completed run's best checkpoint is announced too.
        receiver.wait_for(lambda: "evaluation.completed" in events(receiver, "/hook", ok["id"]),
                          timeout=300)

        # The 500 receiver: retried (1 + 2 attempts, with back-off), only ever after the run
        # was already completed, and never told to the server's default target.
        receiver.wait_for(lambda: len(receiver.at("/broken")) >= 3
                          and all(r.answered_at for r in receiver.at("/broken")), timeout=120)
        attempts = [r for r in receiver.at("/broken")
                    if json.loads(r.body)["event"] == "run.completed"]
        assert len(attempts) == 3
        finished_at = datetime.fromisoformat(finished["finished_at"]).timestamp()
        assert attempts[0].at > finished_at
        assert attempts[1].at - attempts[0].answered_at >= 1.0  # back-off 1 s, then 2 s
        assert attempts[2].at - attempts[1].answered_at >= 2.0
        assert "run.completed" not in events(receiver, "/hook", slow["id"])

        def broken_rows():
            return client.get(f"/api/runs/{slow['id']}/notifications").json()

        receiver.wait_for(lambda: broken_rows() and broken_rows()[0]["status"] == "failed")
        row = broken_rows()[0]
        assert row["event"] == "run.completed" and row["attempts"] == 3
        assert row["error"] == f"HTTP 500 from json://127.0.0.1:{receiver.port}/…"
        sent = client.get(f"/api/runs/{ok['id']}/notifications").json()
        assert {(r["event"], r["status"]) for r in sent} >= {("run.completed", "sent")}
