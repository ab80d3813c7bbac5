"""One settings object for the web app, the CLI and the workers (env prefix ``TUNEDECK_``)."""

from __future__ import annotations

import json
import shutil
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# A server reachable beyond localhost needs a token no one guesses (32 hex chars = 128 bits).
MIN_TOKEN_CHARS = 32
GENERATE_TOKEN = ("`openssl rand -hex 32` or "
                  "`python -c 'import secrets; print(secrets.token_hex(32))'`")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TUNEDECK_", env_file=".env", extra="ignore")

    # Where uploads, the model cache, checkpoints and the embedded broker live.
    data_dir: Path = Path("./data")
    # Converted/built models; defaults to data_dir/models (several installs may share one).
    model_cache: Path | None = None
    # Empty means "SQLite file in data_dir"; production: postgresql+psycopg://user@host/db
    database_url: str = ""
    # Empty means "kombu filesystem transport under data_dir" (no server needed).
    broker_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    # Uploads larger than this are refused with 413 while streaming.
    max_upload_mb: int = 200
    # Uploads up to this size are processed within the request (the answer carries the statistics
    # or the row to fix); bigger ones are stored at once and processed by a worker on
    # ``dataset_queue`` while the dataset shows "processing". 0: every upload goes to a worker.
    inline_upload_max_kb: int = Field(default=256, ge=0)
    dataset_queue: str = "datasets"
    # JSON and form request bodies larger than this (KB) are refused with 413.
    max_json_kb: int = Field(default=1024, ge=16)
    # Required when host is not local (see core/security.py).
    auth_token: str = ""
    # Host names the server answers to besides localhost and `host` (DNS-rebinding guard), e.g.
    # TUNEDECK_ALLOWED_HOSTS='["tunedeck.example.com"]'.
    allowed_hosts: list[str] = Field(default_factory=list)
    # Wizard: labelled examples at or above this count as "large" (rule of thumb).
    large_dataset_threshold: int = 1000
    # Pasted Python reward functions run under bubblewrap (domain/sandbox.py) only when enabled.
    allow_custom_rewards: bool = False
    # Evaluate a finished run's best checkpoint on its eval split automatically.
    auto_evaluate: bool = True
    # Default Celery queue a run goes to; workers listen on it.
    default_queue: str = "training"
    # Seconds without a heartbeat before a running run, evaluation or playground generation is
    # marked failed ("worker lost"); with the reaper's pass every ≤ 10 s a dead worker is noticed
    # within a minute (domain/reaper.py).
    worker_lost_after_s: int = Field(default=45, ge=5)
    # This worker's host as placement names it (device reservations, the hosts of a run over
    # several hosts); empty: the machine's hostname. Two workers of one machine given different
    # names act as two hosts (a multi-host run tried on one machine).
    worker_host_name: str = ""
    # The address the other hosts of a multi-host run reach this one at (its torchrun rendezvous
    # when it is node 0); empty: 127.0.0.1 when worker_host_name is set, else the hostname.
    worker_address: str = ""
    # Seconds every host of a multi-host run has to join its rendezvous before the run fails,
    # naming the hosts that did not (torchrun's join_timeout).
    gang_join_timeout_s: int = Field(default=120, ge=5)
    # Seconds a run or an evaluation may wait in the queue before its task is published again (a
    # broker that lost its messages, e.g. Redis restarted without persistence); the wait doubles
    # after each re-publish, up to an hour. A playground generation no worker took within this
    # time fails instead (domain/requeue.py). 0 turns both off.
    requeue_after_s: int = Field(default=120, ge=0)
    # The most runs one sweep may make (a grid's size is checked against it before any run).
    sweep_max_runs: int = Field(default=64, ge=1)
    # Seconds a running run may take to stop by itself after a cancel (it stops at its next
    # step); past that the worker terminates its training process, and kills it 10 s later.
    cancel_grace_s: float = Field(default=30, ge=0)
    # Training, evaluation and export children fork from a process that has imported torch,
    # transformers and TRL already (worker/children.py): "auto" where the worker offers no CUDA
    # device (unsloth must be imported first and CUDA not initialised before a fork), "on", "off".
    warm_start: Literal["auto", "on", "off"] = "auto"
    # Polling interval of the embedded filesystem broker (seconds).
    broker_poll_interval: float = 0.1
    # Artifact storage: a local directory by default, or an fsspec URL such as s3://bucket/prefix.
    storage_url: str = ""
    # Extra options for fsspec (e.g. endpoint_url for an S3-compatible server), as JSON.
    storage_options: Annotated[dict, NoDecode] = Field(default_factory=dict)
    # llama.cpp's GGUF converters (worker/exports/converter.py installs them here); the default
    # is shared by every TuneDeck install of this account: ~/.cache/tunedeck/llama.cpp-<version>.
    llama_cpp_dir: Path | None = None
    # Where a deployment's endpoint (the API-key pass-through in front of its engine) listens on
    # its worker; beyond localhost only with TUNEDECK_AUTH_TOKEN set (then every endpoint needs
    # its API key). Engines themselves always listen on 127.0.0.1.
    deployment_host: str = "127.0.0.1"

    # Notifications (domain/notify.py): Apprise URLs told when a run finishes or fails and when
    # an evaluation finishes, comma- or space-separated (or a JSON list); a run may set its own.
    notify_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # HMAC-SHA256 key signing the body of generic JSON webhooks (json:// and jsons:// URLs):
    # header X-TuneDeck-Signature-256: sha256=<hex>.
    notify_secret: str = ""
    # A failed send is retried this many times, waiting notify_backoff_s, then twice as long...
    notify_retries: int = Field(default=3, ge=0, le=10)
    notify_backoff_s: float = Field(default=2.0, ge=0)
    notify_timeout_s: float = Field(default=10.0, gt=0)

    # Metric mirrors every run gets unless its request says otherwise (worker/trackers.py):
    # an MLflow tracking server (http(s) URL; empty for none) and its experiment, and
    # TensorBoard event files in the run's data.
    mlflow_tracking_uri: str = ""
    mlflow_experiment: str = "tunedeck"
    tensorboard: bool = False
    # Weights & Biases (project; empty for none) with the worker's WANDB_API_KEY and WANDB_MODE,
    # and Trackio's local database (project; empty for none) under the worker's TRACKIO_DIR.
    wandb_project: str = ""
    wandb_entity: str = ""
    trackio_project: str = ""

    @field_validator("notify_urls", mode="before")
    @classmethod
    def _parse_notify_urls(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part for part in text.replace(",", " ").split() if part]
        return value

    @field_validator("storage_options", mode="before")
    @classmethod
    def _parse_storage_options(cls, value: object) -> object:
        # NB: compose passes an unset variable as "": read that as "no options".
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @model_validator(mode="after")
    def _refuse_open_without_token(self) -> Settings:
        if self.host not in LOCAL_HOSTS and not self.auth_token:
            raise ValueError(
                f"TUNEDECK_HOST={self.host} listens beyond localhost: set TUNEDECK_AUTH_TOKEN "
                "to a long random secret first"
            )
        if self.auth_token and self.auth_token in {"changeme", "secret", "password"}:
            raise ValueError("TUNEDECK_AUTH_TOKEN is a placeholder: choose a long random secret")
        if self.host not in LOCAL_HOSTS and len(self.auth_token) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"TUNEDECK_AUTH_TOKEN is {len(self.auth_token)} characters; listening on "
                f"{self.host} needs at least {MIN_TOKEN_CHARS} random ones: generate one with "
                f"{GENERATE_TOKEN}"
            )
        if self.allow_custom_rewards and shutil.which("bwrap") is None:
            raise ValueError(
                "TUNEDECK_ALLOW_CUSTOM_REWARDS=true needs bubblewrap to sandbox pasted code: "
                "install it (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install "
                "bubblewrap) or set TUNEDECK_ALLOW_CUSTOM_REWARDS=false"
            )
        return self

    @cached_property
    def resolved_data_dir(self) -> Path:
        path = self.data_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def resolved_llama_cpp_dir(self) -> Path:
        if self.llama_cpp_dir is not None:
            return self.llama_cpp_dir.expanduser().resolve()
        return Path("~/.cache/tunedeck/llama.cpp-0.3.36").expanduser()

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.resolved_data_dir / 'tunedeck.db'}"

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def uploads_dir(self) -> Path:
        return self._subdir("datasets")

    @property
    def model_cache_dir(self) -> Path:
        if self.model_cache is not None:
            path = self.model_cache.expanduser().resolve()
            path.mkdir(parents=True, exist_ok=True)
            return path
        return self._subdir("models")

    @property
    def checkpoints_dir(self) -> Path:
        return self._subdir("runs")

    @property
    def broker_dir(self) -> Path:
        return self._subdir("broker")

    def _subdir(self, name: str) -> Path:
        path = self.resolved_data_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path


settings = Settings()
