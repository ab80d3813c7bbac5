"""One settings object for the web app, the CLI and the workers (env prefix ``TUNEDECK_``)."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


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
    # Required when host is not local (see core/security.py).
    auth_token: str = ""
    # Host names the server answers to besides localhost and `host` (DNS-rebinding guard), e.g.
    # TUNEDECK_ALLOWED_HOSTS='["tunedeck.example.com"]'.
    allowed_hosts: list[str] = Field(default_factory=list)
    # Wizard: labelled examples at or above this count as "large" (rule of thumb).
    large_dataset_threshold: int = 1000
    # Pasted Python reward functions run in a sandboxed subprocess only when enabled.
    allow_custom_rewards: bool = False
    # Evaluate a finished run's best checkpoint on its eval split automatically.
    auto_evaluate: bool = True
    # Default Celery queue a run goes to; workers listen on it.
    default_queue: str = "training"
    # Seconds without a heartbeat before a running run, evaluation or playground generation is
    # marked failed ("worker lost"); with the reaper's pass every ≤ 10 s a dead worker is noticed
    # within a minute (domain/reaper.py).
    worker_lost_after_s: int = Field(default=45, ge=5)
    # Seconds a run or an evaluation may wait in the queue before its task is published again (a
    # broker that lost its messages, e.g. Redis restarted without persistence); the wait doubles
    # after each re-publish, up to an hour. A playground generation no worker took within this
    # time fails instead (domain/requeue.py). 0 turns both off.
    requeue_after_s: int = Field(default=120, ge=0)
    # Polling interval of the embedded filesystem broker (seconds).
    broker_poll_interval: float = 0.1
    # Artifact storage: a local directory by default, or an fsspec URL such as s3://bucket/prefix.
    storage_url: str = ""
    # Extra options for fsspec (e.g. endpoint_url for an S3-compatible server), as JSON.
    storage_options: Annotated[dict, NoDecode] = Field(default_factory=dict)

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
        return self

    @cached_property
    def resolved_data_dir(self) -> Path:
        path = self.data_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

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
