"""Request bodies of the evaluation and playground API (responses are plain dicts built by
services/jobs/evaluations.py, documented by the examples in docs)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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
