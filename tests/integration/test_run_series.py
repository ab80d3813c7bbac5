"""The run page's curves come from GET /api/runs/{id}/series: every metric downsampled by the
compare page's series service (extremes kept), so a long run's poll stays small; /metrics keeps
the full resolution for API users."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_compare_api import make_run


@pytest.fixture
def db(client):
    from app.core.db import SessionLocal

    with SessionLocal() as session:
        yield session


def test_series_is_downsampled_with_the_spike_kept(client, db):
    steps = 3000
    loss = {s: 1.0 for s in range(1, steps + 1)}
    loss[1234] = 50.0  # one spike the chart must still show
    run = make_run(db, name="long", steps=steps, series={"loss": loss,
                                                         "grad_norm": dict.fromkeys(loss, 0.5)})
    full = client.get(f"/api/runs/{run.id}/metrics")
    small = client.get(f"/api/runs/{run.id}/series?max_points=100")
    assert full.status_code == small.status_code == 200
    curves = small.json()["metrics"]
    assert set(curves) == {"loss", "grad_norm"}
    assert all(len(points) <= 100 for points in curves.values())
    assert max(v for _, v in curves["loss"]) == 50.0  # the extreme survives downsampling
    assert curves["loss"][0][0] == 1 and curves["loss"][-1][0] == steps
    assert len(full.json()["metrics"]["loss"]) == steps
    assert len(small.content) * 10 < len(full.content)
    assert json.loads(small.content)["max_points"] == 100


def test_series_refuses_a_bad_point_budget(client, db):
    run = make_run(db, name="short")
    response = client.get(f"/api/runs/{run.id}/series?max_points=1")
    assert response.status_code == 422 and "max_points" in response.text
