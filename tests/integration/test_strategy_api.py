"""POST /api/strategy and the /wizard page, in process against a migrated SQLite."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from app.core.config import settings


def upload_rows(client, rows: list[dict], name: str = "rows.jsonl") -> dict:
    body = "\n".join(json.dumps(r) for r in rows).encode()
    response = client.post("/api/datasets", files={"file": (name, body)})
    assert response.status_code == 201, response.text
    return response.json()


def launch_query(advice: dict) -> dict[str, str]:
    url = urlsplit(advice["launch_url"])
    assert url.path == "/runs/new"
    return {key: values[0] for key, values in parse_qs(url.query).items()}


@pytest.mark.parametrize(("body", "strategy", "leaf", "path"), [
    ({"labelled": False, "verifiable": False}, "dpo", "rlhf_dpo", ["labelled", "verifiable"]),
    ({"labelled": False, "verifiable": True}, "grpo", "rft_grpo_unlabelled",
     ["labelled", "verifiable"]),
    ({"labelled": True, "num_examples": 1000}, "sft", "sft_large", ["labelled", "num_examples"]),
    ({"labelled": True, "num_examples": 999, "reasoning_helps": True}, "grpo",
     "rft_grpo_reasoning", ["labelled", "num_examples", "reasoning_helps"]),
    ({"labelled": True, "num_examples": 20, "reasoning_helps": False}, "sft", "sft_tiny",
     ["labelled", "num_examples", "reasoning_helps"]),
])
def test_each_leaf(client, body, strategy, leaf, path):
    response = client.post("/api/strategy", json=body)
    assert response.status_code == 200, response.text
    advice = response.json()
    assert (advice["strategy"], advice["leaf"]) == (strategy, leaf)
    assert [step["question_id"] for step in advice["path"]] == path
    assert advice["explanation"] and advice["caveats"] and advice["data_format"]["example"]
    query = launch_query(advice)
    assert query["strategy"] == strategy
    assert float(query["learning_rate"]) == advice["preset"]["learning_rate"]
    assert "dataset_id" not in query
    if strategy == "grpo":
        assert advice["suggested_rewards"] and "rewards" in query
    else:
        assert advice["suggested_rewards"] == [] and "rewards" not in query


def test_presets_launch_as_they_are(client):
    """A preset the run API refuses would make 'Launch with this' fail on the next page."""
    from app.domain.hyperparameters import validate_hyperparameters

    for body in ({"labelled": False, "verifiable": False}, {"labelled": False, "verifiable": True},
                 {"labelled": True, "num_examples": 5, "reasoning_helps": False}):
        advice = client.post("/api/strategy", json=body).json()
        validate_hyperparameters(advice["strategy"], advice["preset"])


@pytest.mark.parametrize(("body", "field"), [
    ({}, "labelled"),
    ({"labelled": None, "verifiable": True}, "labelled"),
    ({"labelled": False}, "verifiable"),
    ({"labelled": False, "num_examples": 10, "reasoning_helps": True}, "verifiable"),
    ({"labelled": True}, "num_examples"),
    ({"labelled": True, "verifiable": True, "reasoning_helps": True}, "num_examples"),
    ({"labelled": True, "num_examples": 10}, "reasoning_helps"),
])
def test_missing_answer_is_422_naming_it(client, body, field):
    response = client.post("/api/strategy", json=body)
    assert response.status_code == 422
    error = response.json()
    assert error["field"] == field
    assert f"'{field}'" in error["detail"]


def test_bad_values_are_422(client):
    negative = client.post("/api/strategy", json={"labelled": True, "num_examples": -1})
    assert negative.status_code == 422 and "num_examples" in negative.json()["detail"]
    unknown = client.post("/api/strategy", json={"labelled": True, "examples": 5})
    assert unknown.status_code == 422 and "examples" in unknown.json()["detail"]
    # Without labels there is no answer column for exact_answer to compare with.
    no_column = client.post("/api/strategy", json={"labelled": False, "verifiable": True,
                                                   "answer_type": "number"})
    assert no_column.status_code == 422 and no_column.json()["field"] == "answer_type"


def test_answer_type_picks_the_rewards(client):
    body = {"labelled": True, "num_examples": 50, "reasoning_helps": True}
    default = client.post("/api/strategy", json=body).json()
    assert default["answer_type"] == "number"
    assert launch_query(default)["rewards"] == "exact_answer:1,numeric_match:0.5,soft_format:0.25"
    as_json = client.post("/api/strategy", json=body | {"answer_type": "json"}).json()
    assert [r["name"] for r in as_json["suggested_rewards"]] == ["json_valid"]
    assert launch_query(as_json)["rewards"] == "json_valid:1"


def test_dataset_row_count_replaces_num_examples(client):
    dataset = upload_rows(client, [{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(12)])
    body = {"labelled": True, "num_examples": 50000, "reasoning_helps": False,
            "dataset_id": dataset["id"]}
    advice = client.post("/api/strategy", json=body).json()
    assert advice["num_examples"] == 12 and advice["leaf"] == "sft_tiny"
    assert advice["path"][1]["answer"].startswith("12 ")
    assert launch_query(advice)["dataset_id"] == str(dataset["id"])
    # The count comes from the dataset even when none was typed.
    del body["num_examples"]
    assert client.post("/api/strategy", json=body).json()["num_examples"] == 12


def test_dataset_in_the_wrong_format_gets_a_caveat(client):
    dataset = upload_rows(client, [{"prompt": "p", "completion": "c"}])
    advice = client.post("/api/strategy", json={"labelled": False, "verifiable": False,
                                                "dataset_id": dataset["id"]}).json()
    assert advice["strategy"] == "dpo"
    assert "DPO needs" in advice["caveats"][0]


def test_unknown_dataset_is_404(client):
    response = client.post("/api/strategy", json={"labelled": True, "dataset_id": 999999})
    assert response.status_code == 404
    assert "999999" in response.json()["detail"]


def test_threshold_setting_is_honoured(client, monkeypatch):
    body = {"labelled": True, "num_examples": 200, "reasoning_helps": True}
    assert client.post("/api/strategy", json=body).json()["leaf"] == "rft_grpo_reasoning"
    monkeypatch.setattr(settings, "large_dataset_threshold", 200)
    advice = client.post("/api/strategy", json=body).json()
    assert advice["leaf"] == "sft_large" and advice["large_threshold"] == 200
    assert advice["path"][1]["answer"] == "200 (>= 200)"
    page = client.get("/wizard?labelled=yes").text
    assert "≥ 200 examples?" in page and "<strong>200</strong> or more" in page
    assert "TUNEDECK_LARGE_DATASET_THRESHOLD" in page and "rule of thumb" in page


def test_wizard_page_walks_the_tree(client):
    first = client.get("/wizard")
    assert first.status_code == 200
    assert 'data-question="labelled"' in first.text and 'id="wizard-back"' not in first.text
    count = client.get("/wizard?labelled=yes").text
    assert 'data-question="num_examples"' in count and 'href="/wizard?"' in count
    result = client.get("/wizard?labelled=yes&num_examples=5000&reasoning_helps=yes").text
    assert 'data-leaf="sft_large"' in result
    # Back drops the last answer; the stale reasoning answer is not carried along.
    assert 'href="/wizard?labelled=yes" id="wizard-back"' in result
    assert 'class="fc-node fc-leaf taken chosen" data-node="sft_large"' in result
    assert result.count("fc-leaf") == 5


def test_wizard_page_survives_bad_query_values(client):
    assert 'data-question="labelled"' in client.get("/wizard?labelled=maybe").text
    assert "does not exist" in client.get("/wizard?labelled=yes&dataset_id=" + "9" * 40).text
    page = client.get("/wizard?labelled=yes&dataset_id=999999")
    assert page.status_code == 200
    assert "does not exist" in page.text and 'data-question="num_examples"' in page.text
    page = client.get("/wizard?labelled=no&verifiable=yes&answer_type=number")
    assert 'data-leaf="rft_grpo_unlabelled"' in page.text and "does not fit" in page.text


def test_dpo_demo_loads_once_and_opens_the_form(client):
    first = client.post("/wizard/dpo-demo", follow_redirects=False)
    assert first.status_code == 303
    query = {k: v[0] for k, v in parse_qs(urlsplit(first.headers["location"]).query).items()}
    assert query["strategy"] == "dpo" and query["beta"] == "0.1"
    dataset = client.get(f"/api/datasets/{query['dataset_id']}").json()
    assert dataset["format"] == "preference" and dataset["num_rows"] == 100
    again = client.post("/wizard/dpo-demo", follow_redirects=False)
    assert again.headers["location"] == first.headers["location"]
    form = client.get(first.headers["location"]).text
    assert 'id="hp-dpo-beta"' in form and 'id="dpo-format-note"' in form
