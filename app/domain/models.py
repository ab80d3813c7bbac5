"""ORM models. Alembic owns the schema; tests check migrations against this metadata."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class RunStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


# The one place that says how a run's status may change. Finished states never change, with one
# exception: a failed or cancelled run goes back to queued through services.runs.resume_run only
# (it checks for a checkpoint to continue from); a completed run is final.
ALLOWED_TRANSITIONS: dict[RunStatus, set[RunStatus]] = {
    RunStatus.queued: {RunStatus.running, RunStatus.cancelled, RunStatus.failed},
    RunStatus.running: {RunStatus.completed, RunStatus.failed, RunStatus.cancelled},
    RunStatus.completed: set(),
    RunStatus.failed: {RunStatus.queued},
    RunStatus.cancelled: {RunStatus.queued},
}
RESUMABLE_STATUSES = {RunStatus.failed, RunStatus.cancelled}
TERMINAL_STATUSES = {RunStatus.completed, RunStatus.failed, RunStatus.cancelled}


class Dataset(Base):
    __tablename__ = "dataset"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    original_filename: Mapped[str] = mapped_column(String(255))
    # Generated name inside the artifact store; never derived from user input.
    storage_key: Mapped[str] = mapped_column(String(255), unique=True)
    file_format: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(40))
    num_rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[Any]] = mapped_column(JSON)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    runs: Mapped[list[Run]] = relationship(back_populates="dataset")


class Run(Base):
    __tablename__ = "run"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    strategy: Mapped[str] = mapped_column(String(16))
    base_model: Mapped[str] = mapped_column(String(300))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="RESTRICT"))
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reward_functions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[RunStatus] = mapped_column(
        Enum(RunStatus, name="run_status", native_enum=False, length=16),
        default=RunStatus.queued,
        index=True,
    )
    requested_backend: Mapped[str] = mapped_column(String(16), default="auto")
    backend: Mapped[str | None] = mapped_column(String(16))
    device: Mapped[str | None] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(64), default="training")
    step: Mapped[int] = mapped_column(Integer, default=0)
    max_steps: Mapped[int | None] = mapped_column(Integer)
    epoch: Mapped[float | None] = mapped_column(Float)
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Step the current attempt started from (resume continues the same curves).
    resumed_from_step: Mapped[int | None] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    # When the run's task was last published and how often since it was queued: the reaper
    # publishes a long-queued run again with back-off (domain/requeue.py).
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    publish_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The first attempt's start: a resume keeps it, so wall time spans every attempt and pause.
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What the worker is doing now (domain/run_phases.py) and since when.
    phase: Mapped[str | None] = mapped_column(String(32))
    phase_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Training time: finished attempts' seconds, plus the running attempt's since it started.
    training_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    attempt_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # One {"step", "at"} per resume (the checkpoint it continued from), for the charts.
    resume_points: Mapped[list[Any] | None] = mapped_column(JSON, default=list)
    # Where to notify when it ends (Apprise URLs); None: the server's TUNEDECK_NOTIFY_URLS.
    notify_urls: Mapped[list[str] | None] = mapped_column(JSON)
    # Metric mirrors ({"mlflow": {"tracking_uri", "experiment"}, "tensorboard": bool}) and, per
    # tracker, how mirroring goes ({"state": "ok"|"failing", "error", ...}: domain/trackers.py).
    trackers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    tracker_status: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    dataset: Mapped[Dataset] = relationship(back_populates="runs")
    checkpoints: Mapped[list[Checkpoint]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="Checkpoint.step"
    )


class Metric(Base):
    __tablename__ = "metric"
    # Covering index: chart reads (one run's series, by step) never touch the table itself.
    __table_args__ = (Index("ix_metric_series", "run_id", "name", "step", "value", "special"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(120))
    # NB: NaN/inf are stored as NULL plus a text marker: not every SQL backend represents them.
    value: Mapped[float | None] = mapped_column(Float)
    special: Mapped[str | None] = mapped_column(String(8))
    wall_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Checkpoint(Base):
    __tablename__ = "checkpoint"
    __table_args__ = (Index("ix_checkpoint_run_id_step", "run_id", "step", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(500))
    metric_name: Mapped[str | None] = mapped_column(String(120))
    metric_value: Mapped[float | None] = mapped_column(Float)
    # "lower" or "higher": how metric_value ranks checkpoints.
    metric_mode: Mapped[str] = mapped_column(String(8), default="lower")
    is_best: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    run: Mapped[Run] = relationship(back_populates="checkpoints")


class Sample(Base):
    """Completions sampled during training (GRPO), with each reward function's score."""

    __tablename__ = "sample"
    __table_args__ = (Index("ix_sample_run_id_step", "run_id", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    prompt: Mapped[str] = mapped_column(Text)
    completion: Mapped[str] = mapped_column(Text)
    rewards: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JobStatus(enum.StrEnum):
    """Status of an evaluation or a playground generation (claimed atomically like a run)."""

    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"


class Evaluation(Base):
    """A checkpoint (or the base model alone, without a run) scored on held-out rows."""

    __tablename__ = "evaluation"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), index=True)
    # NULL: the base model alone.
    checkpoint_step: Mapped[int | None] = mapped_column(Integer)
    base_model: Mapped[str] = mapped_column(String(300))
    strategy: Mapped[str] = mapped_column(String(16))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="RESTRICT"))
    # "eval": the run's held-out split; "dataset": every row of dataset_id.
    split: Mapped[str] = mapped_column(String(16))
    scorers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # limit, max_new_tokens, samples (k) and why it was queued (e.g. automatically).
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, name="job_status", native_enum=False, length=16),
        default=JobStatus.queued,
    )
    error: Mapped[str | None] = mapped_column(Text)
    results: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    # As Run's: the reaper publishes a long-queued evaluation again with back-off.
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    publish_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # As Run's: who runs it ("host:pid") and its last sign of life; the reaper fails a running
    # evaluation whose heartbeat stopped ("worker lost").
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EvaluationExample(Base):
    __tablename__ = "evaluation_example"
    __table_args__ = (
        Index("ix_evaluation_example_evaluation_id_index", "evaluation_id", "index", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluation.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    prompt: Mapped[str] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(Text)
    base_output: Mapped[str | None] = mapped_column(Text)
    tuned_output: Mapped[str | None] = mapped_column(Text)
    base_scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tuned_scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Generation(Base):
    """A playground request: one prompt answered by the base model and by the adapter."""

    __tablename__ = "generation"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), index=True)
    checkpoint_step: Mapped[int] = mapped_column(Integer)
    prompt: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, name="job_status", native_enum=False, length=16),
        default=JobStatus.queued,
    )
    base_output: Mapped[str | None] = mapped_column(Text)
    tuned_output: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(200))  # as Evaluation's
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Notification(Base):
    """One message about a run (it finished, failed, its evaluation finished) to one target URL:
    sent in the background with retries; the run page lists failures (domain/notify.py)."""

    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(64))
    # The URL with its secrets masked: what the run page shows.
    target: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
