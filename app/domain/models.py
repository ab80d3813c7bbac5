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
    UniqueConstraint,
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
    pruned = "pruned"  # an Optuna sweep's pruner stopped it early: a finished trial, no failure


# The one place that says how a run's status may change. Finished states never change, with one
# exception: a failed or cancelled run goes back to queued through services.runs.resume_run only
# (it checks for a checkpoint to continue from); a completed run is final.
ALLOWED_TRANSITIONS: dict[RunStatus, set[RunStatus]] = {
    RunStatus.queued: {RunStatus.running, RunStatus.cancelled, RunStatus.failed},
    RunStatus.running: {RunStatus.completed, RunStatus.failed, RunStatus.cancelled,
                        RunStatus.pruned},
    RunStatus.completed: set(),
    RunStatus.pruned: set(),
    RunStatus.failed: {RunStatus.queued},
    RunStatus.cancelled: {RunStatus.queued},
}
RESUMABLE_STATUSES = {RunStatus.failed, RunStatus.cancelled}
TERMINAL_STATUSES = {RunStatus.completed, RunStatus.failed, RunStatus.cancelled,
                     RunStatus.pruned}


class DatasetStatus(enum.StrEnum):
    """A big upload is stored at once and processed by a worker: processing → ready | failed."""

    processing = "processing"
    ready = "ready"
    failed = "failed"


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
    status: Mapped[DatasetStatus] = mapped_column(
        Enum(DatasetStatus, name="dataset_status", native_enum=False, length=16),
        default=DatasetStatus.ready, server_default="ready", index=True)
    progress: Mapped[float | None] = mapped_column(Float)  # 0..1 of the file read, while processing
    # What stopped processing (the row and column, as an upload's 4xx would say); failed only.
    error: Mapped[str | None] = mapped_column(Text)
    # The upload as received, in the artifact store until the worker has processed it.
    upload_key: Mapped[str | None] = mapped_column(String(255))
    # Processing by a worker (domain/datasets/recovery.py): who holds it and since when it last
    # said so, how many workers have started on it, and when its task was last published.
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    publish_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

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
    # Why an Optuna sweep's pruner stopped it (set with cancel_requested): the run then ends
    # pruned, not cancelled (domain/sweep_search.py).
    prune_reason: Mapped[str | None] = mapped_column(Text)
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
    # The queue's order: a worker takes the waiting run of its queue with the highest priority,
    # then the lowest queue_position (its id at launch, so ties go by age; moving a run up or
    # down swaps both with its neighbour's). See app/domain/queue.py.
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    queue_position: Mapped[int | None] = mapped_column(Integer)
    # The sweep that made this run, if any (a sweep's delete keeps its runs).
    sweep_id: Mapped[int | None] = mapped_column(
        ForeignKey("sweep.id", ondelete="SET NULL"), index=True)
    # Labels to find it by (the runs list filters on one) and free-text notes.
    tags: Mapped[list[Any] | None] = mapped_column(JSON, default=list)
    notes: Mapped[str | None] = mapped_column(Text)
    # Set on every UPDATE through SQLAlchemy: the runs list's poll asks for what changed since.
    updated_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, index=True)
    # Metric mirrors ({"mlflow": {"tracking_uri", "experiment"}, "tensorboard": bool}) and, per
    # tracker, how mirroring goes ({"state": "ok"|"failing", "error", ...}: domain/trackers.py).
    trackers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    tracker_status: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # A finished run's health flags, {"finished_at", "flags"}: its metrics never change, so the
    # compare page reads these instead of its series (domain/run_health.py).
    health_flags: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    # Where its last attempt trained: one {"host", "devices"} per host, in node-rank order, and
    # for a run over several hosts the rendezvous of their torchrun nodes (domain/gang.py).
    hosts: Mapped[list[Any] | None] = mapped_column(JSON)
    rendezvous_endpoint: Mapped[str | None] = mapped_column(String(300))
    # Why a queued run cannot be placed now (phase waiting_for_devices): busy hosts, live hosts.
    waiting_reason: Mapped[str | None] = mapped_column(Text)

    dataset: Mapped[Dataset] = relationship(back_populates="runs")
    checkpoints: Mapped[list[Checkpoint]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="Checkpoint.step"
    )


class SweepStatus(enum.StrEnum):
    running = "running"  # launching trials as slots free
    paused = "paused"  # launches nothing new; its runs go on
    completed = "completed"
    failed = "failed"  # a trial failed without continue-on-error, or every trial failed
    cancelled = "cancelled"


SWEEP_TRANSITIONS: dict[SweepStatus, set[SweepStatus]] = {
    SweepStatus.running: {SweepStatus.paused, SweepStatus.completed, SweepStatus.failed,
                          SweepStatus.cancelled},
    SweepStatus.paused: {SweepStatus.running, SweepStatus.cancelled},
    SweepStatus.completed: set(),
    SweepStatus.failed: set(),
    SweepStatus.cancelled: set(),
}


class Sweep(Base):
    """A family of runs: one base configuration and a search space, expanded into trials (grid
    or random) that are launched as runs, at most ``concurrency`` at a time."""

    __tablename__ = "sweep"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # grid | random | optuna
    # The launch body every trial starts from (RunCreate without the searched fields).
    base: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    space: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # One validated {"hyperparameters", "reward_functions", "params"} per trial, in launch order
    # (an Optuna sweep appends each trial as it asks for it).
    trials: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Optuna only: how many trials to run, the sampler's seed, the pruner and its options.
    budget: Mapped[int | None] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    pruner: Mapped[str | None] = mapped_column(String(32))
    pruner_options: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    metric: Mapped[str] = mapped_column(String(120))
    direction: Mapped[str] = mapped_column(String(8))  # min | max
    concurrency: Mapped[int] = mapped_column(Integer, default=1)
    continue_on_error: Mapped[bool] = mapped_column(Boolean, default=True)
    # How many trials have been launched as runs; claimed with a conditional UPDATE.
    launched: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[SweepStatus] = mapped_column(
        Enum(SweepStatus, name="sweep_status", native_enum=False, length=16),
        default=SweepStatus.running)
    error: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[Any] | None] = mapped_column(JSON, default=list)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class QueueState(Base):
    """A worker queue someone paused: its waiting runs stay queued, no worker takes them."""

    __tablename__ = "queue_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)


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
    # {"base"|"tuned": {"prompt_tokens", "new_tokens", "seconds"}}, each as its answer lands.
    answer_stats: Mapped[dict[str, Any] | None] = mapped_column(JSON)
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


class Export(Base):
    """A checkpoint turned into something to run elsewhere: a merged Hugging Face folder, a GGUF
    (with an Ollama Modelfile) or an adapter-only GGUF; its files live in artifact storage under
    ``storage_key`` once it completes (nothing is kept of a failed one)."""

    __tablename__ = "export"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), index=True)
    checkpoint_step: Mapped[int] = mapped_column(Integer)
    # "merged", "gguf" or "adapter_gguf" (domain/exports.py lists what each accepts).
    kind: Mapped[str] = mapped_column(String(16))
    quantization: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, name="job_status", native_enum=False, length=16),
        default=JobStatus.queued,
    )
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    # What the worker is doing now ("merging", "converting", "uploading").
    phase: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    storage_key: Mapped[str | None] = mapped_column(String(500))
    # [{"name", "size"}] of the stored files; details: the ollama command, dtype, model name.
    files: Mapped[list[Any]] = mapped_column(JSON, default=list)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    publish_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeploymentStatus(enum.StrEnum):
    starting = "starting"
    serving = "serving"
    stopped = "stopped"
    failed = "failed"


class Deployment(Base):
    """A checkpoint served behind an OpenAI-compatible endpoint on a worker host: the engine
    (``transformers serve``; vLLM on CUDA workers) listens on localhost only, behind a pass-through
    that checks the API key and names the model (worker/deployments/supervisor.py)."""

    __tablename__ = "deployment"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), index=True)
    checkpoint_step: Mapped[int] = mapped_column(Integer)
    engine: Mapped[str] = mapped_column(String(16), default="transformers")
    status: Mapped[DeploymentStatus] = mapped_column(
        Enum(DeploymentStatus, name="deployment_status", native_enum=False, length=16),
        default=DeploymentStatus.starting, index=True,
    )
    queue: Mapped[str] = mapped_column(String(64), default="training")
    # Where the endpoint listens once a worker took it (port: asked for, or picked there).
    host: Mapped[str | None] = mapped_column(String(200))
    port: Mapped[int | None] = mapped_column(Integer)
    model_name: Mapped[str] = mapped_column(String(200))
    # sha256 of the API key (shown once, when the deployment is created); None: no key needed.
    api_key_hash: Mapped[str | None] = mapped_column(String(64))
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    phase: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(200))  # "host:pid" of the supervisor
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WorkerHost(Base):
    """A live training worker process and the devices it can give a run (domain/placement.py):
    written at worker start and refreshed by its heartbeat; a stale row is a gone worker."""

    __tablename__ = "worker_host"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)  # "host:pid", as Run.worker
    host: Mapped[str] = mapped_column(String(200), index=True)
    queues: Mapped[list[Any]] = mapped_column(JSON, default=list)
    device_kind: Mapped[str] = mapped_column(String(16))  # "cpu" or "cuda"
    devices: Mapped[int] = mapped_column(Integer)  # GPUs it sees, or CPU cores on a CPU host
    # Which ones, as DeviceReservation names them: "cuda:2" (the host's GPU index), "cpu:0".
    device_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DeviceReservation(Base):
    """A device of a host given to one run: worker processes of one host never hand the same GPU
    to two runs (domain/placement.py). A row counts while its run runs (or for a short grace
    while the run is being claimed), so every way a run ends frees its devices."""

    __tablename__ = "device_reservation"
    __table_args__ = (UniqueConstraint("host", "device", name="uq_device_reservation_device"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    device: Mapped[str] = mapped_column(String(32))  # "cuda:0", "cpu:3"
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), index=True)
    worker: Mapped[str] = mapped_column(String(200))
    reserved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GangNode(Base):
    """One host's part of a run over several hosts (domain/gang.py): its node rank, the devices
    reserved for it there, and the worker of that host that started its torchrun node, which
    heartbeats the row while the node runs (a stale one is a host that was lost)."""

    __tablename__ = "gang_node"
    __table_args__ = (
        UniqueConstraint("run_id", "attempt", "node_rank", name="uq_gang_node_rank"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), index=True)
    # The run's attempt it belongs to (a resume places the run again, maybe on other hosts).
    attempt: Mapped[int] = mapped_column(Integer)
    node_rank: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(200))
    devices: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # pending (no worker of its host took it yet), running, exited (0) or failed.
    state: Mapped[str] = mapped_column(String(16), default="pending")
    worker: Mapped[str | None] = mapped_column(String(200))
    # The assignment's time while pending, then the node worker's last heartbeat.
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    error: Mapped[str | None] = mapped_column(Text)


class RevokedSession(Base):
    """A logged-out login session: its cookie is refused until it would have expired anyway."""

    __tablename__ = "revoked_session"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
