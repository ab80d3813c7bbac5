"""Request and response bodies of the exports API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ExportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checkpoint: int | Literal["best"] = Field(default="best", description='a step, or "best"')
    kind: str = Field(default="gguf", max_length=32,
                      description="merged, gguf (with an Ollama Modelfile) or adapter_gguf")
    quantization: str | None = Field(
        default=None, max_length=32,
        description="gguf: q8_0 (default), f16, bf16, q4_K_M (needs llama-quantize on the "
                    "worker); adapter_gguf: f16 (default), bf16, q8_0; merged: none")


class ExportFile(BaseModel):
    name: str
    size: int
    url: str


class ExportPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    run_id: int
    checkpoint_step: int
    kind: str
    quantization: str | None
    status: str
    progress: float
    phase: str | None
    error: str | None
    files: list[ExportFile] = []
    size_bytes: int
    details: dict[str, Any]
    download_url: str | None = None
    ollama_command: str | None = None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class DeploymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checkpoint: int | Literal["best"] = Field(default="best", description='a step, or "best"')
    engine: str = Field(default="transformers", max_length=32,
                        description="transformers (transformers serve, any worker) or vllm "
                                    "(CUDA workers with vLLM installed)")
    port: int | None = Field(default=None, description="the endpoint's port on its worker; "
                                                       "empty: the worker picks a free one")


class DeploymentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    run_id: int
    checkpoint_step: int
    engine: str
    status: str
    queue: str
    host: str | None
    port: int | None
    model_name: str
    worker: str | None = Field(description='"host:pid" of the supervisor serving it')
    phase: str | None
    error: str | None
    stop_requested: bool
    requires_api_key: bool = False
    base_url: str | None = None
    # Only in the answer to the request that created the deployment: it is stored hashed.
    api_key: str | None = None
    heartbeat_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
