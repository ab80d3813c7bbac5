"""Notifications in process (real SQLite, a real local HTTP receiver, real Apprise): signed JSON
webhooks, retries with back-off recorded on the run, failures listed by the API, URL checks at
launch. The live-worker version is tests/integration/test_notifications_live.py."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.core.config import Settings, settings
from app.core.db import SessionLocal
from app.domain import notify
from app.domain.models import Notification, Run, RunStatus
from app.domain.reaper import reap_lost
from tests.factories import add_checkpoint, add_run
from tests.receiver import receiving
from tests.unit.test_requeue import T0, factory, make_run  # noqa: F401


@pytest.fixture
def receiver():
    yield from receiving()


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(settings, "notify_secret", "test-secret")
    monkeypatch.setattr(settings, "notify_retries", 2)
    monkeypatch.setattr(settings, "notify_backoff_s", 0.05)
    monkeypatch.setattr(settings, "notify_timeout_s", 5.0)


def test_a_completed_run_sends_a_signed_json_webhook(migrated_app, client, receiver,
                                                     fast_retries):
    with SessionLocal() as session:
        run = add_run(session, name="signed", status=RunStatus.completed, step=6, max_steps=6,
                      notify_urls=[receiver.url("/hook?+X-Extra=yes")])
        add_checkpoint(session, run=run, step=6, is_best=True, metric_name="eval_loss",
                       metric_value=0.25)
    notify.notify_run_finished(run.id).join(timeout=30)

    [got] = receiver.at("/hook")
    expected = "sha256=" + hmac.new(b"test-secret", got.body, hashlib.sha256).hexdigest()
    assert got.headers["X-TuneDeck-Signature-256"] == expected
    assert got.headers["X-TuneDeck-Event"] == "run.completed"
    assert got.headers["X-Extra"] == "yes"  # Apprise's +Header=value syntax
    payload = json.loads(got.body)
    assert payload["event"] == "run.completed" and payload["type"] == "success"
    assert payload["run"]["id"] == run.id and payload["run"]["status"] == "completed"
    assert payload["run"]["best_checkpoint"] == {"step": 6, "metric_name": "eval_loss",
                                                 "metric_value": 0.25}
    assert "best checkpoint at step 6 (eval_loss 0.25)" in payload["message"]
    [row] = client.get(f"/api/runs/{run.id}/notifications").json()
    assert row["status"] == "sent" and row["attempts"] == 1 and row["error"] is None
    assert row["target"] == f"json://127.0.0.1:{receiver.port}/…"  # no path, no query shown


def test_a_receiver_answering_500_is_retried_with_backoff_then_shown_failed(
        migrated_app, client, receiver, fast_retries, monkeypatch):
    receiver.answers["/down"] = (500, 0.0)
    monkeypatch.setattr(settings, "notify_backoff_s", 0.3)
    with SessionLocal() as session:
        run = add_run(session, name="unlucky", status=RunStatus.failed, error="boom\ntrace",
                      notify_urls=[receiver.url("/down"), receiver.url("/up")])
    notify.notify_run_finished(run.id).join(timeout=30)

    down = receiver.at("/down")
    assert len(down) == 3  # 1 + notify_retries
    gaps = [b.at - a.at for a, b in zip(down, down[1:], strict=False)]
    assert gaps[0] >= 0.3 and gaps[1] >= 0.6  # the back-off doubles
    [up] = receiver.at("/up")
    assert json.loads(up.body)["message"] == f"run #{run.id} unlucky failed: boom"
    rows = client.get(f"/api/runs/{run.id}/notifications").json()
    statuses = sorted((r["status"], r["attempts"], r["error"]) for r in rows)
    assert statuses == [("failed", 3, f"HTTP 500 from json://127.0.0.1:{receiver.port}/…"),
                        ("sent", 1, None)]
    page = client.get(f"/runs/{run.id}")
    assert 'id="run-notifications"' in page.text and "run_notifications.js" in page.text


def test_an_unreachable_apprise_target_fails_with_apprises_reason(migrated_app, client,
                                                                   fast_retries):
    with SessionLocal() as session:  # ntfy on a port nothing listens on
        run = add_run(session, name="ntfy", status=RunStatus.completed,
                      notify_urls=["ntfy://127.0.0.1:9/tunedeck-test"])
    notify.notify(run.id, "run.completed", wait=True)
    [row] = client.get(f"/api/runs/{run.id}/notifications").json()
    assert row["status"] == "failed" and row["attempts"] == 3
    assert row["error"] and "127.0.0.1" in row["error"], row


def test_no_targets_means_nothing_recorded(migrated_app, client, monkeypatch):
    monkeypatch.setattr(settings, "notify_urls", [])
    with SessionLocal() as session:
        run = add_run(session, name="quiet", status=RunStatus.completed)
    assert notify.notify_run_finished(run.id) is None
    assert client.get(f"/api/runs/{run.id}/notifications").json() == []
    with SessionLocal() as session:
        cancelled = add_run(session, name="stopped", status=RunStatus.cancelled,
                            notify_urls=["json://127.0.0.1:9/x"])
    assert notify.notify_run_finished(cancelled.id) is None  # the user's own doing


def test_notify_urls_from_the_environment(monkeypatch):
    monkeypatch.setenv("TUNEDECK_NOTIFY_URLS", "ntfy://a/topic, json://h/p  slack://x/y/z")
    assert Settings().notify_urls == ["ntfy://a/topic", "json://h/p", "slack://x/y/z"]
    monkeypatch.setenv("TUNEDECK_NOTIFY_URLS", '["json://h/p?a=1,2"]')
    assert Settings().notify_urls == ["json://h/p?a=1,2"]


def test_a_run_with_a_bad_notification_url_is_refused_at_launch(client):
    rows = "\n".join(json.dumps({"prompt": f"p{i}", "completion": f"c{i}"}) for i in range(4))
    dataset = client.post("/api/datasets", files={"file": ("n.jsonl", rows.encode())}).json()
    body = {"dataset_id": dataset["id"], "base_model": "tiny-random-llama",
            "queue": "nobody-listens", "notify_urls": ["ntfy://ok/topic", "nonsense://what"]}
    response = client.post("/api/runs", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("notify_urls.1: nonsense://what is not a "
                                                "notification URL Apprise knows")
    body["notify_urls"] = ["ntfy://ok/topic"]
    assert client.post("/api/runs", json=body).status_code == 201


def test_a_run_whose_worker_is_lost_is_announced_failed(factory, receiver,  # noqa: F811
                                                        fast_retries):
    # The reaper works on whatever database it watches (here a scratch one): so do its messages.
    with factory() as session:
        run = make_run(session, status=RunStatus.running, worker="gone:1", started_at=T0,
                       heartbeat_at=T0, notify_urls=[receiver.url("/lost")])
        assert reap_lost(session, Run, lost_after_s=45, now=T0 + timedelta(seconds=60)) == [
            run.id]
    receiver.wait_for(lambda: receiver.at("/lost"), timeout=30)
    payload = json.loads(receiver.at("/lost")[0].body)
    assert payload["event"] == "run.failed"
    assert payload["message"].startswith(f"run #{run.id} r failed: worker lost")

    def row():
        with factory() as session:
            return session.scalars(select(Notification)).one()

    receiver.wait_for(lambda: row().status == "sent", timeout=30)
