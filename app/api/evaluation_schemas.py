"""Request bodies and responses of the evaluation and playground API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from app.domain.json_values import json_safe
from app.domain.models import JobStatus

# Stored scores may hold NaN (a failed reward); JSON gets null.
JsonSafe = Annotated[Any, BeforeValidator(json_safe)]


class EvaluationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checkpoint: int | Literal["best"] = Field(default="best", examples=["best", 20])
    dataset_id: int | None = Field(default=None, description="default: the run's eval split")
    scorers: list[str | dict[str, Any]] | None = Field(
        default=None, examples=[["exact_match", "loss", {"name": "length_target"}]],
        description="default: the strategy's scorers; SFT may add built-in reward functions")
    limit: int | None = Field(default=None, ge=1, le=2000, description="rows scored (64)")
    samples: int | None = Field(default=None, ge=2, le=16, description="GRPO: k for pass@k")
    max_new_tokens: int | None = Field(default=None, ge=1, le=2048)


class BestCheckpointChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: str = Field(min_length=1, max_length=120, examples=["normalized_match"],
                       description="the evaluation score that ranks the run's checkpoints")


class GenerationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: int
    checkpoint: int | Literal["best"] = "best"
    prompt: str = Field(min_length=1, max_length=20_000)
    temperature: float = Field(default=0.7, ge=0, le=5)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_new_tokens: int = Field(default=128, ge=1, le=2048)
    # Greedy decoding: always the most likely next token (temperature and top_p unused), so the
    # same prompt gets the same answer every time.
    greedy: bool = False


class EvaluationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    run_id: int | None
    checkpoint_step: int | None
    base_model: str
    strategy: str
    dataset_id: int | None
    split: str
    scorers: list[dict[str, Any]]
    params: dict[str, Any]
    status: JobStatus
    error: str | None
    progress: float | None
    results: Annotated[dict[str, Any], BeforeValidator(lambda v: json_safe(v or {}))]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    # True when the rows include ones the run trained on (every row of its own dataset): the
    # scores then say how well it learned them, not how it does on new rows.
    rows_used_in_training: bool = False
    rows_label: str = ""

    @model_validator(mode="after")
    def _describe_rows(self) -> EvaluationPublic:
        self.rows_used_in_training = bool((self.params or {}).get("rows_used_in_training"))
        if self.split == "eval":
            self.rows_label = "held-out eval split"
        elif self.rows_used_in_training:
            self.rows_label = f"rows used in training (dataset #{self.dataset_id})"
        else:
            self.rows_label = f"dataset #{self.dataset_id}"
        return self


class EvaluationExamplePublic(BaseModel):
    index: int
    prompt: str | None
    reference: str | None
    base_output: str | None
    tuned_output: str | None
    base_scores: JsonSafe
    tuned_scores: JsonSafe
    tuned_vs_base: Literal["better", "worse", "same"]


class EvaluationExamplesPage(BaseModel):
    total: int
    primary: str | None
    examples: list[EvaluationExamplePublic]


class GenerationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    run_id: int
    checkpoint_step: int
    prompt: str
    params: dict[str, Any]
    status: JobStatus
    base_output: str | None
    tuned_output: str | None
    # Per answer ("base", "tuned"): prompt_tokens, new_tokens and seconds, once it exists.
    answer_stats: dict[str, Any] | None = None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
