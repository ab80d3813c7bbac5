"""The run page's "Download as YAML" and "Notifications" cards in a real browser: the YAML
downloaded through the link is the run's request, and a notification that could not be sent is
listed with its attempts and error (rendered by run_notifications.js)."""

from __future__ import annotations

import json

import pytest
import yaml
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app.domain.models import Notification
from tests.conftest import start_server, stop_server

pytestmark = pytest.mark.browser
ROWS = [{"prompt": f"Spell {w}.", "completion": " " + "-".join(w)} for w in ("cat", "dog", "owl")]


@pytest.fixture(scope="module")
def server():
    live = start_server("run-file-page", worker=False)  # runs stay queued
    yield live
    stop_server(live)


def test_download_as_yaml_and_failed_notifications_on_the_run_page(page, server, tmp_path):
    with server.client() as client:
        body = "\n".join(json.dumps(row) for row in ROWS).encode()
        dataset = client.post("/api/datasets", files={"file": ("spell.jsonl", body)}).json()
        run = client.post("/api/runs", json={
            "dataset_id": dataset["id"], "base_model": "tiny-random-llama", "name": "page-yaml",
            "hyperparameters": {"max_steps": 3, "learning_rate": 3e-4}}).json()
    engine = create_engine(f"sqlite:///{server.data_dir / 'tunedeck.db'}")
    with Session(engine) as session:  # what the worker's sender records after three 500s
        session.add_all([
            Notification(run_id=run["id"], event="run.completed", target="json://hooks.test/…",
                         status="failed", attempts=4, error="HTTP 500 from json://hooks.test/…"),
            Notification(run_id=run["id"], event="run.completed", target="ntfy://ntfy.sh/…",
                         status="sent", attempts=1),
        ])
        session.commit()
    engine.dispose()

    page.goto(f"{server.url}/runs/{run['id']}")
    card = page.locator("#run-notifications")
    card.wait_for(state="visible")
    rows = page.locator("#run-notification-rows tr")
    assert rows.count() == 2
    failed = page.locator('#run-notification-rows tr[data-status="failed"]')
    assert "HTTP 500 from json://hooks.test/…" in failed.inner_text()
    assert "4" in failed.locator("td").nth(3).inner_text()
    assert "could not be sent" in page.locator("#run-notifications-failed").inner_text()

    with page.expect_download() as info:
        page.click("#download-run-yaml")
    saved = tmp_path / "run.yaml"
    info.value.save_as(saved)
    request = yaml.safe_load(saved.read_text())
    assert request["dataset_id"] == dataset["id"] and request["name"] == "page-yaml"
    assert request["hyperparameters"]["max_steps"] == 3
    assert request["hyperparameters"]["learning_rate"] == pytest.approx(3e-4)
