"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator


def validation_detail(errors: list[dict[str, Any]], *, skip: tuple[str, ...] = ("body",)) -> str:
    """Pydantic errors as the API's 422 ``detail``: ``field.path: message`` joined by "; ". The
    server and the client (run files) both word them so, and the launch form marks each field."""
    messages = []
    for error in errors:
        where = ".".join(str(p) for p in error["loc"] if p not in skip)
        messages.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(messages)


class DatasetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    original_filename: str
    file_format: str
    format: str
    num_rows: int
    columns: list[str]
    stats: dict[str, Any]
    size_bytes: int
    created_at: datetime
    # "processing" while a worker reads a big upload (progress 0..1), then "ready" or "failed"
    # (error says which row and column to fix).
    status: str = "ready"
    progress: float | None = None
    error: str | None = None


class RewardFunctionIn(BaseModel):
    """A GRPO reward function: a built-in one by name (see GET /api/reward-functions for names,
    descriptions and default params), or, when the server sets TUNEDECK_ALLOW_CUSTOM_REWARDS=true,
    pasted Python as {"name": "custom", "weight": 1.0, "params": {"code": "def reward(completions,
    **kwargs): ..."}} returning one number (or null) per completion; dataset columns arrive as
    lists in kwargs. Custom code runs in a limited subprocess and is dry-run on two dataset rows
    before the run is queued."""

    name: str = Field(examples=["exact_answer"])
    weight: float = 1.0
    params: dict[str, Any] = Field(default_factory=dict)


class MlflowMirrorIn(BaseModel):
    """Mirror the run's metrics to an MLflow tracking server (TuneDeck's database stays the
    source of truth; an unreachable server is a health warning, never a failed run)."""

    model_config = ConfigDict(extra="forbid")

    tracking_uri: str = Field(min_length=1, max_length=2000, pattern=r"^https?://\S+$",
                              examples=["http://127.0.0.1:5000"])
    experiment: str = Field(default="tunedeck", min_length=1, max_length=200)


# A W&B or Trackio project or entity name: no path or URL characters.
TrackerName = Annotated[str, StringConstraints(min_length=1, max_length=128,
                                               pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class WandbMirrorIn(BaseModel):
    """Mirror the run's metrics to Weights & Biases with the worker's WANDB_API_KEY; offline
    (here, or WANDB_MODE=offline on the worker) writes the run's files only, for `wandb sync`."""

    model_config = ConfigDict(extra="forbid")

    project: TrackerName = "tunedeck"
    entity: TrackerName | None = None
    # None: the worker's WANDB_MODE, else online.
    mode: Literal["online", "offline"] | None = None


class TrackioMirrorIn(BaseModel):
    """Mirror the run's metrics to Trackio's local database on the worker (TRACKIO_DIR; see them
    with `trackio show --project NAME`)."""

    model_config = ConfigDict(extra="forbid")

    project: TrackerName = "tunedeck"


class TrackersIn(BaseModel):
    """Where the run's metrics are mirrored; leave out for the server's defaults
    (TUNEDECK_MLFLOW_TRACKING_URI, TUNEDECK_TENSORBOARD, TUNEDECK_WANDB_PROJECT,
    TUNEDECK_TRACKIO_PROJECT), {} for none."""

    model_config = ConfigDict(extra="forbid")

    mlflow: MlflowMirrorIn | None = None
    # TensorBoard event files in the run's data, downloadable as a zip from the run page.
    tensorboard: bool = False
    wandb: WandbMirrorIn | None = None
    trackio: TrackioMirrorIn | None = None


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_id: int
    strategy: Literal["sft", "grpo", "dpo"] = "sft"
    base_model: str = Field(default="smollm2-135m-instruct", min_length=1, max_length=300)
    name: str | None = Field(default=None, max_length=200)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    reward_functions: list[RewardFunctionIn] = Field(default_factory=list)
    backend: Literal["auto", "trl", "unsloth"] = "auto"
    queue: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    # Apprise URLs told when this run finishes or fails (instead of TUNEDECK_NOTIFY_URLS; [] for
    # none). Never shown back: they may hold tokens.
    notify_urls: list[Annotated[str, Field(min_length=1, max_length=2000)]] | None = Field(
        default=None, max_length=20, examples=[["ntfy://ntfy.sh/my-topic"]])
    # Higher first among the runs waiting on the same queue; ties go by age.
    priority: int = Field(default=0, ge=-1000, le=1000)
    # Metric mirrors (MLflow, TensorBoard, W&B, Trackio); None: the server's defaults.
    trackers: TrackersIn | None = None


class RunClone(BaseModel):
    """Run again with changes (POST /api/runs/{id}/clone): every field is optional and defaults
    to the run's own; `hyperparameters` are merged key by key over the run's, the other fields
    replace (e.g. {"hyperparameters": {"learning_rate": 1e-4}})."""

    model_config = ConfigDict(extra="forbid")

    dataset_id: int | None = None
    strategy: Literal["sft", "grpo", "dpo"] | None = None
    base_model: str | None = Field(default=None, min_length=1, max_length=300)
    name: str | None = Field(default=None, max_length=200)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    reward_functions: list[RewardFunctionIn] | None = None
    backend: Literal["auto", "trl", "unsloth"] | None = None
    queue: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    priority: int | None = Field(default=None, ge=-1000, le=1000)


Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40,
                                        pattern=r"^[\w .:/+-]+$")]


class Annotations(BaseModel):
    """Tags and notes of a run or a sweep (PATCH): a field left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    tags: list[Tag] | None = Field(default=None, max_length=20,
                                   examples=[["baseline", "lr-search"]])
    notes: str | None = Field(default=None, max_length=10_000)


class SweepCreate(BaseModel):
    """A sweep: the base run configuration, a search space over its hyperparameters (or GRPO
    reward weights as "reward:<name>"), what to optimise, and how many runs at once. Grid: every
    combination of the listed values; random: `budget` runs drawn from lists and ranges
    ({"low", "high", "scale": "linear" | "log"}); optuna: `budget` runs, each asked of Optuna's
    TPE sampler (seeded by `seed`) given the trials so far, a `pruner` ("median", the default,
    "successive_halving" or "none", with `pruner_options`) stopping trials that fall behind."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=180)
    run: RunCreate
    kind: Literal["grid", "random", "optuna"] = "grid"
    space: dict[str, Any] = Field(examples=[{"learning_rate": [1e-4, 3e-4], "lora_r": [4, 8]}])
    budget: int | None = Field(default=None, ge=1, le=10_000)
    metric: str = Field(default="eval_loss", max_length=120)
    direction: Literal["min", "max"] = "min"
    concurrency: int = Field(default=1, ge=1, le=64)
    continue_on_error: bool = True
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    pruner: str | None = Field(default=None, max_length=40, examples=["median"])
    pruner_options: dict[str, Any] | None = Field(
        default=None, examples=[{"n_startup_trials": 2, "n_warmup_steps": 4}])


class RunPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    strategy: str
    base_model: str
    dataset_id: int
    status: str
    step: int
    max_steps: int | None
    epoch: float | None
    eta_seconds: float | None
    progress: float | None = None
    error: str | None
    hyperparameters: dict[str, Any]
    reward_functions: list[Any]
    requested_backend: str
    backend: str | None
    device: str | None
    queue: str
    worker: str | None = None  # "host:pid" of the worker that claimed it last
    # Where its last attempt trained: {"host", "devices"} per host, node 0 (its claimer) first.
    hosts: list[dict[str, Any]] = Field(default_factory=list)
    rendezvous_endpoint: str | None = None
    priority: int = 0
    sweep_id: int | None = None
    tags: list[str] = Field(default_factory=list)
    notes: str | None = None
    # When its task was last published and how often: above 1, TuneDeck re-sent it because
    # no worker took it (domain/requeue.py).
    published_at: datetime | None = None
    publish_count: int = 0
    cancel_requested: bool
    prune_reason: str | None = None  # why an Optuna sweep's pruner stopped it (status pruned)
    attempt: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    best_checkpoint: CheckpointPublic | None = None
    # While queued or running: what the worker is doing (waiting_for_worker, starting,
    # preparing_model, loading_data, training, evaluating, saving), in words, and for how long.
    phase: str | None = None
    phase_label: str | None = None
    phase_seconds: float | None = None
    # Time spent training over every attempt, and wall time since the first start (pauses
    # between a cancel and a resume included).
    training_seconds: float = 0.0
    wall_seconds: float | None = None
    # One {"step", "at"} per resume: the checkpoint step the run continued from.
    resume_points: list[dict[str, Any]] = Field(default_factory=list)
    # Metric mirrors fixed at launch, and per tracker how mirroring goes ("ok" / "failing" with
    # the error; a failing one is also a health warning).
    trackers: dict[str, Any] | None = None
    tracker_status: dict[str, Any] | None = None

    @field_validator("resume_points", "tags", "hosts", mode="before")
    @classmethod
    def _no_resumes(cls, value: Any) -> Any:
        return value or []
    # Only in the answer to a launch: what the user should know now (no worker on the queue).
    warnings: list[str] = Field(default_factory=list)


class RunChanges(BaseModel):
    """The runs list's poll (GET /api/runs/changes)."""

    runs: list[RunPublic]
    page_ids: list[int]
    total: int
    cursor: datetime


class CheckpointPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    run_id: int
    step: int
    metric_name: str | None
    metric_value: float | None
    metric_mode: str
    is_best: bool
    created_at: datetime


class MetricsPublic(BaseModel):
    metrics: dict[str, list[tuple[int, float | None]]]


class SamplePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    step: int
    prompt: str
    completion: str
    rewards: dict[str, Any]
    extra: dict[str, Any]


RunPublic.model_rebuild()
RunChanges.model_rebuild()


class StrategyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Optional here so that a missing answer gets the tree's own message naming it.
    labelled: bool | None = None
    verifiable: bool | None = None
    num_examples: int | None = Field(default=None, ge=0)
    reasoning_helps: bool | None = None
    dataset_id: int | None = Field(default=None, description="count the rows of this dataset")
    answer_type: Literal["number", "text", "json", "free"] | None = None


class StrategyStep(BaseModel):
    question_id: str
    question: str
    answer: str


class StrategyAdvice(BaseModel):
    strategy: Literal["sft", "grpo", "dpo"]
    leaf: str
    path: list[StrategyStep]
    explanation: str
    data_format: dict[str, Any]
    caveats: list[str]
    preset: dict[str, Any]
    answer_type: str | None
    suggested_rewards: list[dict[str, Any]]
    launch_url: str
    num_examples: int | None
    large_threshold: int


class NotificationPublic(BaseModel):
    """One message about a run to one target (the URL's secrets masked)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    run_id: int
    event: str
    target: str
    status: Literal["pending", "sent", "failed"]
    attempts: int
    error: str | None
    created_at: datetime
    finished_at: datetime | None
