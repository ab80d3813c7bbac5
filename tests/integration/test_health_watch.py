"""The worker's health watch in process (real SQLite, a real local HTTP receiver): values logged
through the reporter are checked by the health rules as they arrive, each kind of warning is told
once as run.health_warning (however often it is seen), a resumed run does not tell again what its
earlier attempt saw, and a run nobody would hear about is not watched at all. The live version:
tests/integration/test_wandb_trackio_live.py."""

from __future__ import annotations

import json
import time

import pytest

from app.core.config import settings
from app.core.db import SessionLocal
from app.domain import metrics, trackers
from app.domain.models import RunStatus, utcnow
from tests.factories import add_run
from tests.receiver import Receiver, receiving
from worker.health_watch import HealthWatch, HealthWatchedReporter, watch_health

NAN = float("nan")


@pytest.fixture
def receiver():
    yield from receiving()


class Recorder:
    """Stands in for the database reporter below the watch: keeps what it was given."""

    def __init__(self) -> None:
        self.logged: list[tuple[int, dict]] = []
        self.closed: bool | None = None

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        self.logged.append((step, values))

    def close(self, ok: bool = True) -> None:
        self.closed = ok


def told(receiver: Receiver, run_id: int) -> list[dict]:
    return [json.loads(r.body) for r in receiver.at("/hook")
            if json.loads(r.body)["run"]["id"] == run_id]


def test_each_kind_of_warning_is_told_once_as_it_appears(migrated_app, receiver, monkeypatch):
    monkeypatch.setattr(settings, "notify_retries", 0)
    with SessionLocal() as session:
        run = add_run(session, name="diverges", status=RunStatus.running,
                      notify_urls=[receiver.url("/hook")],
                      trackers={"mlflow": {"tracking_uri": "http://127.0.0.1:9"}})
    inner = Recorder()
    reporter = HealthWatchedReporter(inner, HealthWatch(run.id, interval_s=0.05))
    for step in range(1, 4):
        reporter.log_metrics(step, {"loss": 2.0, "learning_rate": 1e-4})
    time.sleep(0.5)  # ten checks of healthy curves: nothing to tell
    assert told(receiver, run.id) == []
    reporter.log_metrics(4, {"loss": NAN})
    receiver.wait_for(lambda: told(receiver, run.id), timeout=10)
    for step in range(5, 9):  # NaN again: the same kind, told no more
        reporter.log_metrics(step, {"loss": NAN})
    with SessionLocal() as session:  # a tracker failing is a health warning too
        trackers.record_status(session, run.id, "mlflow", state="failing", failed_at_step=6,
                               error="ConnectionError: refused", points=5)
    reporter.close(ok=True)

    assert inner.closed is True and len(inner.logged) == 8  # everything reached the reporter
    warnings = [payload["warning"] for payload in told(receiver, run.id)]
    assert [w["code"] for w in warnings] == ["nan_loss", "tracker_unreachable:mlflow"]
    assert warnings[0]["step"] == 4 and warnings[0]["severity"] == "error"
    payload = told(receiver, run.id)[0]
    assert payload["event"] == "run.health_warning" and payload["type"] == "warning"
    assert payload["title"] == f"TuneDeck: run #{run.id} diverges: nan_loss"
    assert payload["message"].startswith(f"run #{run.id} diverges at step 4: loss is NaN/inf")


def test_a_resumed_run_does_not_tell_again_what_its_first_attempt_saw(migrated_app, receiver):
    with SessionLocal() as session:
        run = add_run(session, name="resumed", status=RunStatus.running,
                      notify_urls=[receiver.url("/hook")])
        metrics.log_batch(session, run_id=run.id, rows=[
            (step, "loss", NAN if step == 3 else 1.0, utcnow()) for step in range(1, 5)])
        session.commit()
    watch = HealthWatch(run.id, interval_s=0.05)
    reporter = HealthWatchedReporter(Recorder(), watch)
    reporter.log_metrics(5, {"loss": NAN})
    reporter.close()
    assert watch.told == {"nan_loss"} and told(receiver, run.id) == []


def test_a_run_without_notification_targets_is_not_watched(migrated_app, monkeypatch):
    monkeypatch.setattr(settings, "notify_urls", [])
    with SessionLocal() as session:
        run = add_run(session, name="quiet", status=RunStatus.running)
    inner = Recorder()
    assert watch_health(inner, run_id=run.id) is inner
