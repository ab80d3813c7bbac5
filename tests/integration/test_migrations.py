"""Alembic owns the schema: migrating an empty database must produce exactly the ORM's tables."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.core.db import make_engine
from app.core.migrate import upgrade_to_head
from app.domain.models import Base
from tests.conftest import scratch_postgres


def _diff(url: str) -> list:
    upgrade_to_head(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert {"dataset", "run", "metric", "checkpoint"} <= tables
    return diff


def test_sqlite_migrations_match_models(tmp_path):
    assert _diff(f"sqlite:///{tmp_path / 'fresh.db'}") == []


@pytest.mark.postgres
def test_postgres_migrations_match_models():
    assert _diff(scratch_postgres("tunedeck_migrations")) == []


def test_sqlite_uses_wal_and_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    engine.dispose()
