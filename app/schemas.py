"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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


class RewardFunctionIn(BaseModel):
    name: str = Field(examples=["exact_answer"])
    weight: float = 1.0
    params: dict[str, Any] = Field(default_factory=dict)


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
    cancel_requested: bool
    attempt: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    best_checkpoint: CheckpointPublic | None = None


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
