"""The runs list at scale: GET /api/runs pages and filters in SQL, and its poll
(GET /api/runs/changes) sends only the page's runs that changed since its cursor, with the
page's ids so that the page drops runs that left it."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import update

from app.core.db import SessionLocal
from app.domain.models import Run, RunStatus, utcnow
from app.domain.runs import transition
from tests.factories import add_dataset, add_run


def _runs(prefix: str, count: int, **fields) -> tuple[int, list[int]]:
    with SessionLocal() as session:
        dataset = add_dataset(session, name=f"{prefix}-data")
        session.commit()
        ids = [add_run(session, dataset=dataset, name=f"{prefix}-{i}", **fields).id
               for i in range(count)]
        return dataset.id, ids


def test_pages_are_newest_first_with_the_total(client):
    dataset_id, ids = _runs("paged", 7)
    first = client.get(f"/api/runs?dataset_id={dataset_id}&limit=3")
    assert first.status_code == 200
    assert first.headers["X-Total-Count"] == "7"
    assert [r["id"] for r in first.json()] == ids[::-1][:3]
    third = client.get(f"/api/runs?dataset_id={dataset_id}&limit=3&offset=6").json()
    assert [r["id"] for r in third] == [ids[0]]
    assert client.get("/api/runs?limit=0").status_code == 422
    assert client.get("/api/runs?limit=100000").status_code == 422


def test_name_search_is_any_case_and_literal(client):
    dataset_id, _ = _runs("Search", 2)
    with SessionLocal() as session:
        dataset = session.get(Run, _runs("other", 1)[1][0]).dataset
        add_run(session, dataset=dataset, name="lr_1e-4%odd")
        add_run(session, dataset=dataset, name="lrx1e-4 plain")
    found = client.get("/api/runs?q=search-1").json()
    assert [r["name"] for r in found] == ["Search-1"]
    # "_" and "%" match themselves, not any character.
    assert [r["name"] for r in client.get("/api/runs", params={"q": "lr_1e-4%"}).json()] == [
        "lr_1e-4%odd"]
    assert client.get("/api/runs", params={"q": "x" * 201}).status_code == 422


def test_poll_sends_only_what_changed_and_the_page_order(client):
    dataset_id, ids = _runs("poll", 4)
    base = "/api/runs/changes"
    page = {"dataset_id": dataset_id, "limit": 3}
    everything = client.get(base, params=page).json()
    assert everything["total"] == 4
    assert everything["page_ids"] == ids[::-1][:3]
    assert [r["id"] for r in everything["runs"]] == everything["page_ids"]

    cursor = everything["cursor"]
    # As if the runs were written well before the cursor (beyond the poll's overlap for skew).
    with SessionLocal() as session:
        session.execute(update(Run).where(Run.id.in_(ids)).values(
            updated_at=utcnow() - timedelta(hours=1)))
        session.commit()
    since = {**page, "since": cursor}
    quiet = client.get(base, params=since).json()
    assert quiet["runs"] == [] and quiet["page_ids"] == ids[::-1][:3]

    with SessionLocal() as session:  # a worker claims one run: only it comes back
        assert transition(session, run_id=ids[-1], to=RunStatus.running, worker="w:1")
    changed = client.get(base, params=since).json()
    assert [(r["id"], r["status"]) for r in changed["runs"]] == [(ids[-1], "running")]

    # Filtered on status, the run that finished leaves the page: its id is gone from page_ids.
    running = {"dataset_id": dataset_id, "status": "running"}
    assert client.get(base, params=running).json()["page_ids"] == [ids[-1]]
    with SessionLocal() as session:
        transition(session, run_id=ids[-1], to=RunStatus.completed)
    after = client.get(base, params={**running, "since": cursor}).json()
    assert after["page_ids"] == [] and after["total"] == 0
    assert client.get(base, params={"since": "yesterday"}).status_code == 422


def test_runs_page_pages_and_keeps_its_filters(client):
    dataset_id, ids = _runs("pagehtml", 53)
    first = client.get(f"/runs?dataset_id={dataset_id}")
    assert first.status_code == 200
    assert "1–50 of 53" in first.text
    assert f'href="/runs?dataset_id={dataset_id}&amp;offset=50"' in first.text
    assert 'rel="prev"' not in first.text
    shown = set(map(int, re.findall(r'<tr data-run-id="(\d+)"', first.text)))
    assert shown == set(ids[3:])
    second = client.get(f"/runs?dataset_id={dataset_id}&offset=50").text
    assert "51–53 of 53" in second and 'rel="prev"' in second and 'rel="next"' not in second
    assert set(map(int, re.findall(r'<tr data-run-id="(\d+)"', second))) == set(ids[:3])
    searched = client.get("/runs?q=PAGEHTML-52").text
    assert set(map(int, re.findall(r'<tr data-run-id="(\d+)"', searched))) == {ids[52]}
    assert "container-wide" not in first.text  # centred like every other page
