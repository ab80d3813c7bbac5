"""docker-compose.yml: `docker compose config` where the plugin is installed, else the Compose
Specification schema (vendored, see tests/fixtures/compose/README.md) plus what TuneDeck needs:
its four services, health checks, the GPU reservation, volumes and the environment."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA = ROOT / "tests" / "fixtures" / "compose" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _compose_plugin(), reason="the docker compose plugin is not installed")
def test_docker_compose_config_accepts_the_file():
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "TUNEDECK_AUTH_TOKEN": "x" * 64}
    result = subprocess.run(["docker", "compose", "-f", str(COMPOSE_FILE), "config", "--quiet"],
                            capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_file_follows_the_compose_schema(compose):
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_schema_check_catches_mistakes(compose):
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["web"]["depends_on"]["postgres"]["condition"] = "service_ready"
    broken["services"]["worker"]["healthcheck"]["retry"] = 3
    errors = list(jsonschema.validators.validator_for(schema)(schema).iter_errors(broken))
    assert len(errors) >= 2


def test_services_wait_for_healthy_dependencies(compose):
    services = compose["services"]
    assert set(services) == {"web", "worker", "redis", "postgres"}
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        assert service.get("restart") == "unless-stopped", name
    for name in ("web", "worker"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
    # The worker migrates too: the web server must have done it first.
    assert services["worker"]["depends_on"]["web"]["condition"] == "service_healthy"


def test_worker_reserves_gpus_and_runs_one_process_per_gpu(compose):
    worker = compose["services"]["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert worker["command"][:3] == ["tunedeck", "worker", "--gpus"]
    assert {"gpu", "s3"} <= set(worker["build"]["args"]["EXTRAS"].split(","))
    assert "/cu" in worker["build"]["args"]["TORCH_INDEX"]  # a CUDA build of torch
    web_build = compose["services"]["web"]["build"]
    assert "TORCH_INDEX" not in web_build["args"]  # the Dockerfile's default: CPU torch
    assert "gpu" not in web_build["args"]["EXTRAS"].split(",")
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in dockerfile


def test_named_volumes_are_declared(compose):
    declared = set(compose["volumes"])
    used = set()
    for service in compose["services"].values():
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0] if isinstance(mount, str) else mount["source"]
            if not source.startswith((".", "/", "~")):
                used.add(source)
    assert used == declared
    # Web and worker share the data directory (uploads, checkpoints, model cache).
    mounts = {s: compose["services"][s]["volumes"] for s in ("web", "worker")}
    assert mounts["web"] == mounts["worker"] == ["artifacts:/data"]


def test_environment_points_everything_at_the_shared_services(compose):
    for name in ("web", "worker"):
        env = compose["services"][name]["environment"]
        assert "@postgres:5432/" in env["TUNEDECK_DATABASE_URL"]
        assert env["TUNEDECK_BROKER_URL"].startswith("redis://redis:6379/")
        assert env["TUNEDECK_DATA_DIR"] == "/data"
        assert "TUNEDECK_STORAGE_URL" in env
        # Unset unless the shell sets it: an empty JSON value would not parse.
        assert env["TUNEDECK_STORAGE_OPTIONS"] is None
        # Refuses to start without a token rather than serving without one.
        assert re.fullmatch(r"\$\{TUNEDECK_AUTH_TOKEN:\?.+\}", env["TUNEDECK_AUTH_TOKEN"])
    assert compose["services"]["web"]["environment"]["TUNEDECK_HOST"] == "0.0.0.0"
    # Every variable the file names in an environment block is a setting TuneDeck reads.
    from app.core.config import Settings

    for name in compose["services"]["web"]["environment"]:
        if name.startswith("TUNEDECK_"):
            assert name.removeprefix("TUNEDECK_").lower() in Settings.model_fields, name


def test_images_run_unprivileged_with_the_sandbox_and_a_required_database_password(compose):
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)", dockerfile, flags=re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}
    assert "bubblewrap" in dockerfile
    assert "bubblewrap" in (ROOT / ".ci" / "run").read_text()
    password = compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:\?.+\}", password)
    url = compose["services"]["web"]["environment"]["TUNEDECK_DATABASE_URL"]
    assert "${POSTGRES_PASSWORD:?" in url and ":-" not in url
