"""Server settings: which model, on which device and dtype, how requests are batched and bounded.

One validated object feeds the CLI, the uvicorn engine and every Ray Serve replica (it travels to them
as JSON), so all of them load the same model the same way.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from deltavlm.serving.schema import RequestLimits

Engine = Literal["auto", "ray", "uvicorn"]
DType = Literal["auto", "bfloat16", "float16", "float32"]

# what --dtype sets in the config's runtime section (autocast for activations, the frozen LLM's weights)
_DTYPE_RUNTIME: dict[str, dict[str, str]] = {
    "bfloat16": {"autocast_dtype": "bfloat16", "frozen_llm_dtype": "bfloat16"},
    "float16": {"autocast_dtype": "float16", "frozen_llm_dtype": "float16"},
    "float32": {"autocast_dtype": "none", "frozen_llm_dtype": "float32"},
}


class ServerSettings(BaseModel):
    """Everything ``changeagent serve`` is told; defaults suit one GPU (or the tiny config on a laptop)."""

    model: str = Field("tiny", description="Config name (tiny, full), a config YAML, or one of our checkpoint dirs.")
    checkpoint: str | None = Field(None, description="Weights to load over the config (any supported format).")
    device: str | None = Field(None, description="Torch device; default: the config's (auto = CUDA when present).")
    dtype: DType = Field("auto", description="bf16/fp16 autocast + frozen-LLM dtype on a GPU; auto keeps the config.")
    host: str = "127.0.0.1"
    port: int = Field(8700, ge=0, le=65535)
    token: str | None = Field(None, repr=False, description="Bearer token required on every route but /health.")
    allow_no_token: bool = Field(
        False, description="Bind beyond loopback without a token anyway (refused unless set: anyone could use it)."
    )
    body_timeout_s: float = Field(
        30.0, gt=0, description="A request body not fully received this long after it starts gets 408 and is closed."
    )
    engine: Engine = Field("auto", description="auto: Ray Serve when installed, else uvicorn.")
    max_batch_size: int = Field(8, ge=1, le=256)
    max_wait_ms: float = Field(10.0, ge=0.0, le=5000.0)
    max_queue: int = Field(256, ge=1, description="Requests waiting beyond this get 503 (retry later).")
    queue_timeout_s: float = Field(60.0, gt=0, description="A request queued longer than this gets 503.")
    torch_threads: int | None = Field(
        None, ge=1, description="CPU threads for torch (CPU serving; Ray gives a 1-CPU replica one thread)."
    )
    feature_cache_mb: int | None = Field(None, ge=1, description="Feature-cache budget; default: the config's.")
    pair_store_mb: int = Field(512, ge=1, description="Memory for pair pixels held by id.")
    pair_store_entries: int = Field(4096, ge=1)
    limits: RequestLimits = Field(default_factory=RequestLimits)
    data_root: Path | None = Field(None, description="Allow POST /v1/pairs to name PNG files below this folder.")
    replicas: int = Field(1, ge=1, description="Ray Serve replicas (one model each).")
    gpus_per_replica: float | None = Field(None, ge=0, description="Default: 1 when CUDA is present, else 0.")
    ray_address: str | None = Field(None, description="Join this Ray cluster instead of starting a local one.")

    @property
    def loopback(self) -> bool:
        """Whether the bind address is reachable from this machine only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def runner_overrides(self) -> dict[str, Any]:
        runtime: dict[str, Any] = dict(_DTYPE_RUNTIME.get(self.dtype, {}))
        if self.device is not None:
            runtime["device"] = self.device
        if self.feature_cache_mb is not None:
            runtime["feature_cache_bytes"] = self.feature_cache_mb * 2**20
        return {"runtime": runtime} if runtime else {}


def load_runner(settings: ServerSettings):
    """Build the model the settings name: one of our checkpoint directories, or a config (+ weights)."""
    from deltavlm.inference import DeltaVLMRunner

    if settings.torch_threads is not None:
        import torch

        torch.set_num_threads(settings.torch_threads)
    overrides = settings.runner_overrides()
    source = Path(settings.model)
    if source.is_dir():
        if settings.checkpoint is not None:
            raise ValueError("--checkpoint goes with a config; a checkpoint directory already names its weights")
        return DeltaVLMRunner.from_checkpoint(source, device=settings.device, **overrides)
    return DeltaVLMRunner.from_config(
        settings.model, checkpoint=settings.checkpoint, device=settings.device, **overrides
    )
