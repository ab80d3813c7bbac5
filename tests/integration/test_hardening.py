"""Hardening through the real app in process: forms that work for a logged-in user when a token
is set, size and value limits answered with a 4xx that names the limit, never a 500."""

from __future__ import annotations

import re

import pytest

from tests.integration.test_access import auth_client, login  # noqa: F401


def form_fields(html: str, action: str) -> dict[str, str]:
    form = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', html,
                     flags=re.DOTALL).group(0)
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def test_the_wizard_dpo_demo_form_submits_for_a_logged_in_user(auth_client):  # noqa: F811
    login(auth_client)
    page = auth_client.get("/wizard?labelled=no&verifiable=no")
    assert page.status_code == 200 and 'id="load-dpo-demo"' in page.text
    fields = form_fields(page.text, "/wizard/dpo-demo")
    assert "csrf_token" in fields
    response = auth_client.post("/wizard/dpo-demo", data=fields, follow_redirects=False)
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/runs/new?strategy=dpo")


BIG = "9" * 5000


@pytest.mark.parametrize("path", [
    "/runs?dataset_id=²", "/wizard?dataset_id=²", "/wizard?labelled=yes&num_examples=²",
    f"/runs?dataset_id={BIG}", f"/wizard?dataset_id={BIG}",
    f"/wizard?labelled=yes&num_examples={BIG}", "/runs/new?dataset_id=²",
])
def test_odd_digits_and_huge_numbers_in_queries_are_not_a_500(client, path):
    response = client.get(path)
    assert response.status_code < 500


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(("name", "body"), [
    ("deep.jsonl", '{"prompt": "a", "completion": ' + DEEP + "}\n"),
    ("deep.json", '[{"prompt": "a", "completion": ' + DEEP + "}]"),
    ("deep.csv", 'prompt,messages\na,"' + DEEP + '"\n'),
])
def test_json_nested_100k_deep_in_an_upload_is_a_422_that_says_so(client, name, body):
    response = client.post("/api/datasets", files={"file": (name, body.encode())})
    assert response.status_code == 422, response.text
    assert "nests lists or objects too deeply" in response.json()["detail"]


def test_a_deep_csv_cell_that_is_not_messages_stays_text(client):
    body = 'prompt,completion\na,"' + DEEP + '"\n'
    response = client.post("/api/datasets", files={"file": ("deep-text.csv", body.encode())})
    assert response.status_code == 201, response.text


def launch_body(dataset_id: int, **hyperparameters) -> dict:
    return {"dataset_id": dataset_id, "strategy": "sft", "base_model": "tiny-random-llama",
            "queue": "nobody-listens", "hyperparameters": hyperparameters}


@pytest.fixture
def sft_dataset(client) -> int:
    rows = "\n".join(f'{{"prompt": "p{i}", "completion": "c{i}"}}' for i in range(4))
    response = client.post("/api/datasets", files={"file": ("limits.jsonl", rows.encode())})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_a_50_mb_system_prompt_is_refused_before_it_is_buffered(client, sft_dataset):
    body = launch_body(sft_dataset, system_prompt="x" * (50 << 20))
    response = client.post("/api/runs", json=body)
    assert response.status_code == 413
    assert "1024 KB limit" in response.json()["detail"]

    def chunks():  # no Content-Length: counted as it arrives
        import json

        text = json.dumps(body).encode()
        for start in range(0, len(text), 1 << 20):
            yield text[start:start + (1 << 20)]

    chunked = client.post("/api/runs", content=chunks(),
                          headers={"content-type": "application/json"})
    assert chunked.status_code == 413 and "1024 KB limit" in chunked.json()["detail"]


def test_each_text_field_names_its_limit(client, sft_dataset):
    response = client.post("/api/runs", json=launch_body(sft_dataset, system_prompt="x" * 30_000))
    assert response.status_code == 422
    assert "hyperparameters.system_prompt: String should have at most 20000 characters" in \
        response.json()["detail"]
    response = client.post("/api/runs", json={**launch_body(sft_dataset), "name": "n" * 300})
    assert response.status_code == 422 and "200 characters" in response.json()["detail"]


def test_multipart_fields_besides_the_file_are_bounded(client):
    files = {"file": ("f.jsonl", b'{"prompt": "p", "completion": "c"}\n')}
    many = {f"field{i}": "v" * 60_000 for i in range(40)}  # 2.4 MB of non-file fields
    response = client.post("/api/datasets", files=files, data=many)
    assert response.status_code in (400, 413)
    assert "KB" in response.json()["detail"]
    one = client.post("/api/datasets", files=files, data={"name": "n" * 70_000})
    assert one.status_code == 400 and "64 KB limit" in one.json()["detail"]


def test_the_whole_multipart_body_is_bounded(client, monkeypatch):
    from app.core.config import settings

    monkeypatch.setattr(settings, "max_upload_mb", 1)
    files = {"file": ("f.jsonl", b"x" * (3 << 20))}
    response = client.post("/api/datasets", files=files)
    assert response.status_code == 413 and "1 MB limit" in response.json()["detail"]


@pytest.mark.parametrize(("hyperparameters", "fragment"), [
    ({"seed": 10**30}, "hyperparameters.seed: Input should be less than or equal to 4294967295"),
    ({"max_steps": 10**12}, "hyperparameters.max_steps: Input should be less than or equal to"),
    ({"save_steps": 10**12}, "hyperparameters.save_steps: Input should be less than or equal"),
    ({"lora_alpha": 10**12}, "hyperparameters.lora_alpha: Input should be less than or equal"),
    ({"num_train_epochs": 1e308}, "hyperparameters.num_train_epochs: Input should be less than"),
    ({"lora_target_modules": ["../../x"]}, "'../../x' is not a module name"),
])
def test_launch_values_the_trainer_cannot_use_are_422(client, sft_dataset, hyperparameters,
                                                      fragment):
    response = client.post("/api/runs", json=launch_body(sft_dataset, **hyperparameters))
    assert response.status_code == 422, response.text
    assert fragment in response.json()["detail"]


def test_grpo_completion_length_is_bounded(client):
    rows = "\n".join(f'{{"prompt": "p{i}", "answer": "{i}"}}' for i in range(4))
    dataset = client.post("/api/datasets", files={"file": ("g.jsonl", rows.encode())}).json()
    response = client.post("/api/runs", json={
        "dataset_id": dataset["id"], "strategy": "grpo", "base_model": "org/some-model",
        "queue": "nobody-listens", "reward_functions": [{"name": "exact_answer"}],
        "hyperparameters": {"max_completion_length": 10**9}})
    assert response.status_code == 422
    assert "max_completion_length: Input should be less than or equal to 131072" in \
        response.json()["detail"]


def test_guessing_bearer_tokens_is_throttled_with_429_and_retry_after(auth_client):  # noqa: F811
    from tests.integration.test_access import TOKEN

    for attempt in range(10):
        wrong = auth_client.get("/api/runs", headers={"Authorization": f"Bearer guess{attempt}"})
        assert wrong.status_code == 401
    throttled = auth_client.get("/api/runs", headers={"Authorization": "Bearer guess10"})
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    # The right token waits too: otherwise guessing would go on at full speed.
    assert auth_client.get("/api/runs",
                           headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 429


def test_guessing_at_the_login_form_is_throttled(auth_client):  # noqa: F811
    for attempt in range(10):
        response = auth_client.post("/login", data={"token": f"guess{attempt}", "next": "/"},
                                    follow_redirects=False)
        assert response.status_code == 401
    throttled = auth_client.post("/login", data={"token": "guess", "next": "/"},
                                 follow_redirects=False)
    assert throttled.status_code == 429 and "retry-after" in throttled.headers


def test_a_short_token_is_refused_for_a_non_local_bind():
    from app.core.config import Settings
    from app.core.security import bind_refusal

    with pytest.raises(ValueError, match="openssl rand -hex 32"):
        Settings(host="0.0.0.0", auth_token="a")
    assert "at least 32" in bind_refusal("0.0.0.0", "a")
    assert bind_refusal("0.0.0.0", "f" * 32) is None
    assert Settings(host="127.0.0.1", auth_token="a").auth_token == "a"  # local: any token


def test_logout_revokes_the_session_on_the_server(auth_client):  # noqa: F811
    login(auth_client)
    saved = auth_client.cookies.get("tunedeck_session")
    assert auth_client.get("/api/runs").status_code == 200
    html = auth_client.get("/datasets").text
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)
    out = auth_client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303
    # A saved copy of the cookie (stolen, or kept by a browser that ignored the logout) is dead.
    auth_client.cookies.set("tunedeck_session", saved)
    assert auth_client.get("/api/runs").status_code == 401
    assert auth_client.get("/runs", follow_redirects=False).status_code == 303
    login(auth_client)  # a new login works
    assert auth_client.get("/api/runs").status_code == 200


def test_launching_on_a_queue_without_a_live_worker_warns(client, sft_dataset):
    from app.core.db import SessionLocal
    from app.domain.workers import forget_presence, record_presence

    body = {**launch_body(sft_dataset), "queue": "nightly"}
    response = client.post("/api/runs", json=body)
    assert response.status_code == 201, response.text
    [warning] = response.json()["warnings"]
    assert "no worker is listening on queue 'nightly'" in warning
    assert "tunedeck worker --queues nightly" in warning
    assert client.get(f"/api/runs/{response.json()['id']}").json()["warnings"] == []

    with SessionLocal() as session:
        record_presence(session, "w1@box", ["nightly", "training"])
        try:
            served = client.post("/api/runs", json=body)
            assert served.status_code == 201 and served.json()["warnings"] == []
        finally:
            forget_presence(session, "w1@box")
