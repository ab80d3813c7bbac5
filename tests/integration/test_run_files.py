"""YAML run files and the Python client against the in-process app (real routes, real SQLite):
"Download as YAML" of a GRPO run with rewards relaunches the identical configuration, a bad
file gets the launch form's messages with the field path, and the client retries only calls that
are safe to repeat."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from app.client import APIError, RunFileError, ServerUnreachable, TuneDeck
from app.client import cli as client_cli
from app.client.runfile import parse_overrides, to_request

ROWS = [{"prompt": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(6)]
CONFIG_FIELDS = ("strategy", "base_model", "dataset_id", "hyperparameters", "reward_functions",
                 "requested_backend", "queue")


@pytest.fixture
def td(client):
    return TuneDeck("http://testserver", http=client)


@pytest.fixture
def sums_file(tmp_path):
    path = tmp_path / "sums.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in ROWS))
    return path


def grpo_file(tmp_path, **extra) -> str:
    body = {
        "dataset": "sums.jsonl", "strategy": "grpo", "base_model": "tiny-random-llama",
        "name": "yaml-grpo", "queue": "nobody-listens",
        "hyperparameters": {"per_device_train_batch_size": 2, "num_generations": 2,
                            "max_steps": 3, "beta": 0.04},
        "reward_functions": [
            {"name": "exact_answer", "weight": 2.0, "params": {"column": "answer"}},
            {"name": "length_target", "weight": 0.5},
        ],
        **extra,
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return str(path)


def test_download_as_yaml_of_a_grpo_run_relaunches_the_identical_configuration(
        td, client, tmp_path, sums_file):
    # The dataset named as a local file (next to the run file) is uploaded first.
    first = td.runs.launch(grpo_file(tmp_path), overrides=["hyperparameters.max_steps=5",
                                                           "learning_rate=2e-5"])
    assert first.strategy == "grpo" and first.hyperparameters["max_steps"] == 5
    assert first.hyperparameters["learning_rate"] == pytest.approx(2e-5)
    assert [r["name"] for r in first.reward_functions] == ["exact_answer", "length_target"]
    assert td.datasets.get(first.dataset_id).original_filename == "sums.jsonl"

    page = client.get(f"/runs/{first.id}")
    assert f'href="/api/runs/{first.id}/run.yaml"' in page.text and "Download as YAML" in page.text
    download = client.get(f"/api/runs/{first.id}/run.yaml")
    assert download.status_code == 200
    assert f'filename="tunedeck-run{first.id}.yaml"' in download.headers["content-disposition"]
    saved = tmp_path / "downloaded.yaml"
    saved.write_text(download.text)

    second = td.runs.launch(saved)
    assert second.id != first.id
    a, b = first.model_dump(), second.model_dump()
    assert {k: a[k] for k in CONFIG_FIELDS} == {k: b[k] for k in CONFIG_FIELDS}
    assert second.dataset_id == first.dataset_id  # no second upload
    # And the relaunched run's file is the same file (but for the header naming the run).
    body = lambda text: [ln for ln in text.splitlines() if not ln.startswith("#")]  # noqa: E731
    assert body(td.runs.run_file(second.id)) == body(download.text)


@pytest.mark.parametrize(("extra", "fragment"), [
    ({"strategy": "ppo"}, "strategy: Input should be 'sft', 'grpo' or 'dpo'"),
    ({"epochs": 3}, "epochs: Extra inputs are not permitted"),
    ({"hyperparameters": {"learning_rate": -1, "per_device_train_batch_size": 2,
                          "num_generations": 2}}, "hyperparameters.learning_rate"),
    ({"reward_functions": [{"name": "no_such_reward"}]}, "reward_functions"),
    ({"reward_functions": [{"weight": 1.0}]}, "reward_functions.0.name: Field required"),
])
def test_a_bad_run_file_gets_the_forms_message_with_the_field_path(
        td, client, tmp_path, sums_file, extra, fragment):
    dataset = td.datasets.upload(sums_file)
    runs_before = len(td.runs.list())
    path = grpo_file(tmp_path, **extra)
    with pytest.raises((RunFileError, APIError)) as caught:
        td.runs.launch(path, overrides=[f"dataset={dataset.id}"])
    assert fragment in str(caught.value)
    # The launch form posts the same request to the API: the same words come back.
    request = yaml.safe_load(Path(path).read_text())
    request.pop("dataset")
    form = client.post("/api/runs", json={**request, "dataset_id": dataset.id})
    assert form.status_code == 422
    assert form.json()["detail"] == str(caught.value)
    assert len(td.runs.list()) == runs_before


def test_the_cli_refuses_a_bad_run_file_with_exit_2_and_the_field_path(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("dataset_id: 1\nstrategy: sft\nhyperparameters: [1, 2]\n")
    result = CliRunner().invoke(client_cli.app, ["runs", "launch", str(path), "--json"])
    assert result.exit_code == client_cli.EXIT_USAGE
    assert json.loads(result.stdout)["error"] == (
        "hyperparameters: Input should be a valid dictionary")
    path.write_text("- not a mapping\n")
    result = CliRunner().invoke(client_cli.app, ["runs", "launch", str(path)])
    assert result.exit_code == client_cli.EXIT_USAGE and "a run file is a mapping" in result.stderr


def test_overrides_are_dotted_paths_with_yaml_values():
    assert parse_overrides(["a.b=3", "flag=true", "lr=1e-4", "names=[x, y]", "s=word"]) == {
        "a.b": 3, "flag": True, "lr": 1e-4, "names": ["x", "y"], "s": "word"}
    request = to_request({"dataset_id": 1, "hyperparameters": {"max_steps": 2}},
                         overrides=["max_steps=7", "hyperparameters.learning_rate=0.001",
                                    "strategy=dpo", "name=over"])
    assert request.strategy == "dpo" and request.name == "over"
    assert request.hyperparameters == {"max_steps": 7, "learning_rate": 0.001}
    with pytest.raises(RunFileError, match="write key=value"):
        parse_overrides(["no-equals-sign"])


def test_client_errors_carry_the_servers_detail(td):
    with pytest.raises(APIError) as caught:
        td.runs.get(987654)
    assert caught.value.status_code == 404 and caught.value.detail == "run 987654 not found"
    with pytest.raises(APIError, match="dataset 424242 not found"):
        td.runs.launch({"dataset_id": 424242})


class CountingTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return super().handle_request(request)


def test_connection_errors_are_retried_for_safe_calls_only():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = CountingTransport()
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", transport=transport)
    td = TuneDeck(f"http://127.0.0.1:{port}", http=http, retries=2, backoff_s=0.01)
    with pytest.raises(ServerUnreachable, match="after 3 attempts"):
        td.runs.list()
    assert transport.calls == 3
    transport.calls = 0
    with pytest.raises(ServerUnreachable):
        td.runs.launch({"dataset_id": 1})  # a launch could be applied twice: never repeated
    assert transport.calls == 1
    transport.calls = 0
    with pytest.raises(ServerUnreachable):
        td.runs.cancel(1)  # asking twice to stop is asking once
    assert transport.calls == 3


def test_the_token_comes_from_the_environment_or_the_config_file(tmp_path, monkeypatch):
    monkeypatch.delenv("TUNEDECK_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("TUNEDECK_SERVER", raising=False)
    config = tmp_path / "config.toml"
    config.write_text('server = "http://10.0.0.9:8000/"\ntoken = "from-file"\n')
    monkeypatch.setenv("TUNEDECK_CONFIG", str(config))
    td = TuneDeck()
    assert td.server == "http://10.0.0.9:8000"
    assert td._http.headers["authorization"] == "Bearer from-file"
    monkeypatch.setenv("TUNEDECK_AUTH_TOKEN", "from-env")
    assert TuneDeck()._http.headers["authorization"] == "Bearer from-env"
