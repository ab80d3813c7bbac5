"""Access control and output escaping through the real app (in process): login, bearer token,
CSRF, cross-site refusal, the Host check, the CLI's refusal to listen openly, and user text
HTML-escaped on every page that shows it."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from app.core.config import settings
from app.core.paths import STATIC_DIR, TEMPLATES_DIR
from tests.conftest import ROOT

TOKEN = "k3y-" + "a1" * 20
ROWS = b"\n".join(json.dumps({"prompt": f"p{i} <img src=x onerror=alert(1)>",
                              "completion": f"c{i}"}).encode() for i in range(6))


@pytest.fixture
def auth_client(migrated_app, monkeypatch):
    monkeypatch.setattr(settings, "auth_token", TOKEN)
    from app.core.ratelimit import AUTH_FAILURES
    from app.main import create_app

    AUTH_FAILURES.clear()  # each test starts with no failed attempts on record

    with TestClient(create_app(), base_url="http://127.0.0.1") as client:
        yield client


def login(client) -> None:
    response = client.post("/login", data={"token": TOKEN, "next": "/runs"},
                           follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/runs"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def page_csrf(client, path="/datasets") -> str:
    html = client.get(path).text
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)


def test_api_requires_the_bearer_token(auth_client):
    refused = auth_client.get("/api/runs")
    assert refused.status_code == 401 and "Bearer" in refused.json()["detail"]
    assert refused.headers["www-authenticate"] == "Bearer"
    assert auth_client.post("/api/runs/1/cancel").status_code == 401
    wrong = auth_client.get("/api/runs", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = auth_client.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    # A bearer request carries no ambient authority: no CSRF token needed.
    post = auth_client.post("/api/runs/999999/cancel", headers={"Authorization": f"Bearer {TOKEN}"})
    assert post.status_code == 404
    assert auth_client.get("/healthz").status_code == 200  # for load balancers


def test_pages_require_login(auth_client):
    response = auth_client.get("/runs?status=failed", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fruns%3Fstatus%3Dfailed"
    assert 'name="token"' in auth_client.get("/login").text
    bad = auth_client.post("/login", data={"token": "guess", "next": "/runs"},
                           follow_redirects=False)
    assert bad.status_code == 401 and "set-cookie" not in bad.headers
    assert auth_client.get("/runs", follow_redirects=False).status_code == 303
    login(auth_client)
    assert auth_client.get("/runs", follow_redirects=False).status_code == 200
    assert auth_client.get("/api/runs").status_code == 200  # the pages' fetches use the cookie


def test_login_redirect_stays_on_site(auth_client):
    response = auth_client.post("/login", data={"token": TOKEN, "next": "//evil.example/x"},
                                follow_redirects=False)
    assert response.headers["location"] == "/"


def test_cookie_session_posts_need_the_csrf_token(auth_client):
    login(auth_client)
    token = page_csrf(auth_client)
    missing = auth_client.post("/api/runs/999999/cancel")
    assert missing.status_code == 403 and "CSRF" in missing.json()["detail"]
    wrong = auth_client.post("/api/runs/999999/cancel", headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    ok = auth_client.post("/api/runs/999999/cancel", headers={"X-CSRF-Token": token})
    assert ok.status_code == 404  # got past the checks to the route
    # A plain HTML form carries it as a field (the demo-dataset button); the body still arrives.
    form = auth_client.post("/datasets/demo", data={"csrf_token": token}, follow_redirects=False)
    assert form.status_code == 303 and form.headers["location"].startswith("/datasets/")
    assert auth_client.post("/datasets/demo", data={"csrf_token": "x"}).status_code == 403
    # Uploads (multipart, streamed) go through TuneDeck.api with the header.
    upload = auth_client.post("/api/datasets", files={"file": ("d.jsonl", ROWS)},
                              headers={"X-CSRF-Token": token})
    assert upload.status_code == 201, upload.text


def test_logout_ends_the_session(auth_client):
    login(auth_client)
    token = page_csrf(auth_client)
    auth_client.post("/logout", headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert auth_client.get("/runs", follow_redirects=False).status_code == 303


def test_nav_log_out_button_shows_when_logged_in_and_logs_out(auth_client):
    assert 'id="logout"' not in auth_client.get("/login").text
    login(auth_client)
    html = auth_client.get("/runs").text
    form = re.search(r'<form method="post" action="/logout"[^>]*>'
                     r'<input type="hidden" name="csrf_token" value="([^"]+)">', html)
    assert form and 'id="logout">Log out</button>' in html
    # The browser submits the form: an urlencoded body carrying the CSRF field.
    response = auth_client.post("/logout", data={"csrf_token": form.group(1)},
                                follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert auth_client.get("/runs", follow_redirects=False).status_code == 303
    assert 'id="logout"' not in auth_client.get("/login").text


def test_no_log_out_button_without_an_auth_token(client):
    assert 'action="/logout"' not in client.get("/runs").text


def test_cross_site_post_is_refused_even_when_logged_in(auth_client):
    login(auth_client)
    token = page_csrf(auth_client)
    response = auth_client.post("/api/runs/999999/cancel", headers={
        "X-CSRF-Token": token, "Origin": "http://evil.example"})
    assert response.status_code == 403 and "cross-site" in response.json()["detail"]


def test_cross_site_post_is_refused_without_auth(client):
    before = len(client.get("/api/datasets").json())
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Referer": "http://evil.example/page.html"}, {"Origin": "null"}):
        response = client.post("/api/datasets", files={"file": ("d.jsonl", ROWS)},
                               headers=headers)
        assert response.status_code == 403, headers
    assert len(client.get("/api/datasets").json()) == before
    same_site = client.post("/api/datasets", files={"file": ("d.jsonl", ROWS)},
                            headers={"Origin": "http://testserver"})
    assert same_site.status_code == 201
    assert client.get("/api/runs", headers={"Origin": "http://evil.example"}).status_code == 200


def test_unknown_host_header_is_refused(client):
    # DNS rebinding: evil.example resolved to 127.0.0.1 still says "Host: evil.example".
    assert client.get("/api/runs", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/api/runs", headers={"Host": "localhost:8000"}).status_code == 200


def test_cli_refuses_open_bind_without_token(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "TUNEDECK_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "app.cli", "web", "--host", "0.0.0.0",
                             "--port", "1"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "TUNEDECK_AUTH_TOKEN" in result.stderr
    assert not (tmp_path / "tunedeck.db").exists()  # refused before touching anything
    env["TUNEDECK_HOST"] = "0.0.0.0"
    result = subprocess.run([sys.executable, "-m", "app.cli", "migrate"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "TUNEDECK_AUTH_TOKEN" in result.stderr


EVIL = '<script>alert("td")</script>'
CLOSE = '</script><script>alert("td")</script>'


def test_user_text_is_escaped_on_pages(client):
    from app.core.db import SessionLocal
    from app.domain.models import Sample

    dataset = client.post("/api/datasets", files={"file": ("x.jsonl", ROWS)},
                          data={"name": CLOSE}).json()
    run = client.post("/api/runs", json={
        "dataset_id": dataset["id"], "strategy": "sft", "base_model": "tiny-random-llama",
        "name": EVIL, "hyperparameters": {"max_steps": 2}}).json()
    assert run["name"] == EVIL  # stored as typed, escaped where shown
    with SessionLocal() as session:
        session.add(Sample(run_id=run["id"], step=1, prompt=EVIL, completion=CLOSE,
                           rewards={"r": 1.0}))
        session.commit()
    for path in ("/datasets", f"/datasets/{dataset['id']}", "/runs", f"/runs/{run['id']}",
                 "/runs/new"):
        html = client.get(path).text
        assert "<script>alert" not in html, path
        assert "<img src=x" not in html, path
    assert "&lt;script&gt;alert" in client.get(f"/runs/{run['id']}").text
    assert "&lt;img src=x onerror" in client.get(f"/datasets/{dataset['id']}").text


def test_scripts_and_templates_never_insert_raw_html():
    # Dynamic text goes in with textContent; templates rely on Jinja2's autoescape.
    for path in STATIC_DIR.glob("*.js"):
        source = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
            assert sink not in source, f"{path.name} uses {sink}"
    for path in TEMPLATES_DIR.rglob("*.html"):
        source = path.read_text()
        assert not re.search(r"\|\s*safe\b|autoescape\s+false", source), path.name
