"""Deployments through a live server and worker, on TuneDeck with an auth token: a trained
tiny-random-llama checkpoint served by ``transformers serve`` behind the API-key pass-through,
called with the official ``openai`` client (models.list, chat.completions, streaming); a wrong key
is refused; stopping frees the port; killing the engine marks the deployment failed with its log
lines; a taken port and a second deployment of one checkpoint are refused with the reason."""

from __future__ import annotations

import os
import signal
import socket
import time

import httpx
import pytest

from tests.conftest import start_server, stop_server
from tests.integration.test_exports import train

TOKEN = "deployment-test-token-0123456789abcdef"
LOST_AFTER_S = 12


@pytest.fixture(scope="module")
def server():
    live = start_server("deployments", extra_env={"TUNEDECK_AUTH_TOKEN": TOKEN,
                                                  "TUNEDECK_WORKER_LOST_AFTER_S":
                                                  str(LOST_AFTER_S)})
    yield live
    stop_server(live)


def api(server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=180,
                        headers={"Authorization": f"Bearer {TOKEN}"})


def wait_status(client, deployment_id: int, statuses, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = client.get(f"/api/deployments/{deployment_id}").json()
        if row["status"] in statuses:
            return row
        time.sleep(0.5)
    raise AssertionError(f"deployment {deployment_id} never reached {statuses}: {row}")


def port_free(port: int) -> bool:
    """Nothing listens there and a new server can bind it (SO_REUSEADDR, as servers do: the
    closed connections' TIME_WAIT entries do not hold a port)."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def engine_pid(row: dict) -> int:
    import psutil

    supervisor = int(row["worker"].rsplit(":", 1)[1])
    children = psutil.Process(supervisor).children()
    assert len(children) == 1, children
    return children[0].pid


@pytest.mark.slow
def test_deployment_with_the_openai_client(server):
    import openai

    with api(server) as client:
        run = train(server, client, name="deploy-sft")
        created = client.post(f"/api/runs/{run['id']}/deployments", json={"checkpoint": "best"})
        assert created.status_code == 201, created.text
        deployment = created.json()
        key = deployment["api_key"]
        assert deployment["status"] == "starting" and deployment["requires_api_key"] and key
        assert client.get(f"/api/deployments/{deployment['id']}").json()["api_key"] is None

        again = client.post(f"/api/runs/{run['id']}/deployments", json={"checkpoint": "best"})
        assert again.status_code == 409 and "already serves step" in again.json()["detail"]
        unknown = client.post(f"/api/runs/{run['id']}/deployments", json={"engine": "ollama"})
        assert unknown.status_code == 422 and "unknown engine" in unknown.json()["detail"]

        # While the first one starts: a port that is taken on the worker makes that deployment
        # fail saying so (it fails before merging anything).
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            busy_port = taken.getsockname()[1]
            busy = client.post(f"/api/runs/{run['id']}/deployments",
                               json={"checkpoint": 2, "port": busy_port}).json()
            failed = wait_status(client, busy["id"], ("serving", "failed"))
        assert failed["status"] == "failed"
        assert f"port {busy_port} is already in use" in failed["error"]
        # The deployment whose engine is killed below starts beside the first one.
        second = client.post(f"/api/runs/{run['id']}/deployments", json={"checkpoint": 2}).json()

        row = wait_status(client, deployment["id"], ("serving", "failed"))
        assert row["status"] == "serving", f"{row['error']}\n{server.logs()}"
        port, name = row["port"], row["model_name"]
        assert row["base_url"] == f"http://127.0.0.1:{port}/v1"

        endpoint = openai.OpenAI(base_url=row["base_url"], api_key=key, timeout=300)
        assert [m.id for m in endpoint.models.list()] == [name]
        answer = endpoint.chat.completions.create(
            model=name, messages=[{"role": "user", "content": "Say the word number 4."}],
            max_tokens=6, temperature=0)
        assert isinstance(answer.choices[0].message.content, str)
        assert answer.usage.completion_tokens > 0 and answer.model == name
        chunks = list(endpoint.chat.completions.create(
            model=name, messages=[{"role": "user", "content": "Hello"}], max_tokens=6,
            stream=True))
        assert len(chunks) >= 2
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=row["base_url"], api_key="wrong").models.list()
        with pytest.raises(openai.NotFoundError):
            endpoint.chat.completions.create(model="another-model", max_tokens=2,
                                             messages=[{"role": "user", "content": "hi"}])

        stopped = client.post(f"/api/deployments/{deployment['id']}/stop")
        assert stopped.status_code == 200
        row = wait_status(client, deployment["id"], ("stopped", "failed"), timeout=120)
        assert row["status"] == "stopped" and row["error"] is None
        deadline = time.monotonic() + 30
        while not port_free(port) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert port_free(port), f"port {port} still taken after the stop"
        assert client.post(f"/api/deployments/{deployment['id']}/stop").status_code == 409
        assert client.delete(f"/api/deployments/{deployment['id']}").status_code == 204

        row = wait_status(client, second["id"], ("serving", "failed"))
        assert row["status"] == "serving", row["error"]
        # A port an active deployment listens on is refused (the first one's step serves nowhere
        # by now, so the port is what is refused).
        again = client.post(f"/api/runs/{run['id']}/deployments",
                            json={"checkpoint": deployment["checkpoint_step"],
                                  "port": row["port"]})
        assert again.status_code == 409, again.text
        assert f"port {row['port']} is already used by deployment {second['id']}" in (
            again.json()["detail"])

        # The engine dies: the deployment is failed with its log lines within the heartbeat
        # window.
        os.kill(engine_pid(row), signal.SIGKILL)
        killed_at = time.monotonic()
        row = wait_status(client, second["id"], ("failed", "stopped"), timeout=LOST_AFTER_S * 2)
        assert row["status"] == "failed" and "killed by signal 9" in row["error"], row
        assert time.monotonic() - killed_at < LOST_AFTER_S * 2

        page = client.get(f"/runs/{run['id']}")
        assert 'id="run-deployments"' in page.text
