"""Shared fixtures: an isolated data directory per test session, a migrated database, and live
TuneDeck servers (uvicorn + a real Celery worker) on SQLite + the embedded broker or on
PostgreSQL + Redis."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
SESSION_DIR = Path(tempfile.mkdtemp(prefix="tunedeck-tests-"))
# Models are shared by every server the tests start: building them once saves minutes.
MODEL_CACHE = Path(os.environ.get("TUNEDECK_TEST_MODEL_CACHE", "/tmp/tunedeck-test-models"))
POSTGRES_URL = os.environ.get(
    "TUNEDECK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TUNEDECK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Under pytest-xdist (`-n 2`) each worker process after the first gets a PostgreSQL database and
# a Redis db of its own: the session's live servers reset theirs when they start. Redis dbs 13
# and 14 are taken by single tests (test_requeue, test_gpu_workers), so workers step down by 5.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
if XDIST_WORKER != "gw0":
    POSTGRES_URL = f"{POSTGRES_URL}_{XDIST_WORKER}"
    _base, _db = REDIS_URL.rsplit("/", 1)
    REDIS_URL = f"{_base}/{(int(_db) - 5 * int(XDIST_WORKER[2:])) % 16}"
    os.environ["TUNEDECK_TEST_POSTGRES_URL"], os.environ["TUNEDECK_TEST_REDIS_URL"] = (
        POSTGRES_URL, REDIS_URL)

# In-process app under test: settings are read at import, so set them before any app import.
os.environ["TUNEDECK_DATA_DIR"] = str(SESSION_DIR / "inprocess")
os.environ["TUNEDECK_MODEL_CACHE"] = str(MODEL_CACHE)
for key in (
    "TUNEDECK_DATABASE_URL",
    "TUNEDECK_BROKER_URL",
    "TUNEDECK_STORAGE_URL",
    "TUNEDECK_HOST",
    "TUNEDECK_AUTH_TOKEN",
):
    os.environ.pop(key, None)


def _create_database(url: str) -> None:
    """Create the database ``url`` names when it is missing (an xdist worker's own)."""
    from sqlalchemy import create_engine, text

    base, name = url.rsplit("/", 1)
    engine = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}) is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


if XDIST_WORKER != "gw0":
    _create_database(POSTGRES_URL)

# TestClient's requests say "Host: testserver" (the Host check refuses unknown names).
os.environ["TUNEDECK_ALLOWED_HOSTS"] = '["testserver"]'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reset_postgres(url: str = POSTGRES_URL) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def scratch_postgres(name: str) -> str:
    """A fresh database beside the test one, so schema tests never touch a live server's. Its
    name carries the test database's, so two checkouts testing at once never share one."""
    from sqlalchemy import create_engine, text

    name = f"{POSTGRES_URL.rsplit('/', 1)[1]}_{name}"

    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"


def reset_redis(url: str = REDIS_URL) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    env: dict
    processes: list

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def wait_for_run(
        self, run_id: int, statuses=("completed", "failed", "cancelled"), timeout: float = 240
    ) -> dict:
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while time.monotonic() < deadline:
                run = client.get(f"/api/runs/{run_id}").json()
                if run["status"] in statuses:
                    return run
                time.sleep(0.5)
        raise AssertionError(f"run {run_id} did not reach {statuses}: {run}\n{self.logs()}")

    def logs(self) -> str:
        out = []
        for path in sorted(self.data_dir.glob("*.log")) + sorted(self.data_dir.rglob("train.log")):
            out.append(f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(out)


def start_server(name: str, *, extra_env: dict | None = None, worker: bool = True) -> LiveServer:
    data_dir = SESSION_DIR / name
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "TUNEDECK_DATA_DIR": str(data_dir),
        "TUNEDECK_MODEL_CACHE": str(MODEL_CACHE),
        "TUNEDECK_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    from app.cli import web_command, worker_command
    from app.core.migrate import upgrade_to_head

    # What `tunedeck migrate` does with this environment, without a Python start of its own.
    upgrade_to_head(env.get("TUNEDECK_DATABASE_URL") or f"sqlite:///{data_dir / 'tunedeck.db'}")

    processes = []
    web_log = open(data_dir / "web.log", "wb")  # noqa: SIM115 (closed with the process)
    processes.append(
        subprocess.Popen(
            web_command("127.0.0.1", port),
            cwd=ROOT,
            env=env,
            stdout=web_log,
            stderr=subprocess.STDOUT,
        )
    )
    if worker:
        worker_log = open(data_dir / "worker.log", "wb")  # noqa: SIM115
        processes.append(
            subprocess.Popen(
                worker_command("training,datasets", name),
                cwd=ROOT,
                env=env,
                stdout=worker_log,
                stderr=subprocess.STDOUT,
            )
        )
    server = LiveServer(
        url=f"http://127.0.0.1:{port}", data_dir=data_dir, env=env, processes=processes
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(server)
    raise RuntimeError(f"server {name} did not start:\n{server.logs()}")


def stop_server(server: LiveServer) -> None:
    for proc in server.processes:
        if proc.poll() is None:
            proc.terminate()
    for proc in server.processes:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def live_server():
    """TuneDeck on its embedded defaults: SQLite (WAL) + the filesystem broker."""
    server = start_server("embedded")
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def live_server_postgres():
    """TuneDeck on its production parts: PostgreSQL + Redis."""
    reset_postgres()
    reset_redis()
    server = start_server(
        "postgres",
        extra_env={"TUNEDECK_DATABASE_URL": POSTGRES_URL, "TUNEDECK_BROKER_URL": REDIS_URL},
    )
    yield server
    stop_server(server)


@pytest.fixture(params=["sqlite", "postgres"])
def any_live_server(request):
    """Both deployments, for tests that must hold on each."""
    name = "live_server" if request.param == "sqlite" else "live_server_postgres"
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
    return request.getfixturevalue(name)


@pytest.fixture(scope="session")
def migrated_app():
    """The in-process app with its SQLite database migrated to head."""
    from app.core.migrate import upgrade_to_head

    upgrade_to_head()
    from app.main import app

    return app


@pytest.fixture
def client(migrated_app):
    from fastapi.testclient import TestClient

    with TestClient(migrated_app) as test_client:
        yield test_client


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


LIVE_FIXTURES = {"live_server", "live_server_postgres", "any_live_server"}


def pytest_collection_modifyitems(config, items):
    """Browser tests are marked `browser` and tests on live servers `slow`, so that
    `python -m pytest -m "not slow and not browser"` is a loop of seconds while developing."""
    starts_servers: dict[str, bool] = {}
    for item in items:
        path = str(item.fspath)
        if "/tests/e2e/" in path:
            item.add_marker(pytest.mark.browser)
        if path not in starts_servers:
            starts_servers[path] = "start_server(" in Path(path).read_text()
        if starts_servers[path] or LIVE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
