"""The run page's "waiting for a worker" notice: its queue, and after a while how to start a
worker there; runs written straight into the in-process app's database (no worker runs here)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from app.core.config import settings
from app.domain.models import Run, RunStatus, utcnow
from tests.factories import add_dataset, add_run


@pytest.fixture
def db(client):
    from app.core.db import SessionLocal

    with SessionLocal() as session:
        yield session


def make_run(session, *, queue: str, status=RunStatus.queued, waited_s: float = 0,
             publish_count: int = 1) -> Run:
    published = utcnow() - timedelta(seconds=waited_s)
    return add_run(session, name=f"queued-on-{queue}", base_model="tiny",
                   dataset=add_dataset(session, name="queue-notice"), queue=queue,
                   status=status, created_at=published, published_at=published,
                   publish_count=publish_count)


def tag(page: str, element_id: str) -> str:
    """The opening tag of the element with ``element_id``."""
    match = re.search(rf'<[a-z]+ [^>]*id="{element_id}"[^>]*>', page)
    assert match, f"#{element_id} is not on the page"
    return match.group(0)


def notice_text(page: str) -> str:
    start = page.index('id="queue-notice"')
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page[start:page.index("</div>", start)]))


def test_a_fresh_queued_run_names_its_queue_and_holds_back_the_hint(client, db):
    from app.domain.workers import forget_presence, record_presence

    record_presence(db, "gpu3@box", ["gpu-3", "training"])  # a live worker serves the queue
    run = make_run(db, queue="gpu-3")
    page = client.get(f"/runs/{run.id}").text
    assert " hidden" not in tag(page, "queue-notice")
    assert "Waiting for a worker on queue gpu-3." in notice_text(page)
    assert " hidden" in tag(page, "queue-hint")  # it may simply not have been picked up yet

    body = client.get(f"/api/runs/{run.id}").json()
    assert (body["queue"], body["publish_count"]) == ("gpu-3", 1) and body["published_at"]
    assert 'id="no-worker"' not in page
    forget_presence(db, "gpu3@box")


def test_a_queue_no_live_worker_serves_is_said_at_once(client, db):
    run = make_run(db, queue="gpu-7")  # just published, and no worker listens on gpu-7
    page = client.get(f"/runs/{run.id}").text
    assert "No worker is listening on this queue right now." in notice_text(page)
    assert " hidden" not in tag(page, "queue-hint")
    assert "data-no-worker" in tag(page, "queue-notice")
    assert "start one with tunedeck worker --gpus 7;" in notice_text(page)


def test_a_long_queued_run_says_which_worker_to_start(client, db):
    run = make_run(db, queue="gpu-3", waited_s=60)
    page = client.get(f"/runs/{run.id}").text
    assert " hidden" not in tag(page, "queue-hint")
    text = notice_text(page)
    assert "start one with tunedeck worker --gpus 3;" in text, text
    after = f"after {settings.requeue_after_s} s in the queue (TUNEDECK_REQUEUE_AFTER_S)"
    assert settings.requeue_after_s and after in text, text
    assert "re-sent it" not in text  # published once: nothing re-sent yet

    default = make_run(db, queue="training", waited_s=60)
    assert "start one with tunedeck worker;" in notice_text(client.get(f"/runs/{default.id}").text)


def test_a_re_sent_run_shows_the_hint_and_how_often(client, db):
    run = make_run(db, queue="nightly", publish_count=3)  # published 1 s ago, the third time
    page = client.get(f"/runs/{run.id}").text
    assert " hidden" not in tag(page, "queue-hint")
    text = notice_text(page)
    assert "start one with tunedeck worker --queues nightly;" in text, text
    assert "it has re-sent it 2 times so far." in text, text


def test_a_completed_run_has_no_queue_notice(client, db):
    run = make_run(db, queue="gpu-3", status=RunStatus.completed, waited_s=600, publish_count=4)
    assert " hidden" in tag(client.get(f"/runs/{run.id}").text, "queue-notice")
