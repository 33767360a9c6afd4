"""One settings object for the agent: which model, which mask, which thresholds, where things go.

Only the person running the agent sets these (Python, CLI flags, environment); nothing a user
types in a question can change them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from deltavlm.rules import RuleSettings
from tools.classical_mask import ClassicalSettings


class ModelSettings(BaseModel):
    """How to reach DeltaVLM; ``backend="none"`` answers from the verifiers alone."""

    backend: Literal["none", "in-process", "http"] = "none"
    config: str | None = Field(None, description="in-process: a config name (tiny, full) or YAML path.")
    checkpoint: Path | None = Field(None, description="in-process: our checkpoint or the authors' release.")
    endpoint: str | None = Field(None, description="http: base URL of the DeltaVLM server.")
    token: str | None = Field(None, description="http: bearer token.")
    timeout_s: float = Field(60.0, gt=0)
    retries: int = Field(2, ge=0)
    max_new_tokens: int = Field(64, ge=1, le=512)

    @classmethod
    def choose(
        cls,
        model_config: str | None = None,
        checkpoint: str | Path | None = None,
        endpoint: str | None = None,
        timeout_s: float = 60.0,
    ) -> ModelSettings:
        """What a front-end's flags name: a server URL wins over an in-process config; neither means none.

        The server's bearer token comes from ``$CHANGEAGENT_TOKEN`` so that it never sits in a shell history.
        """
        if endpoint:
            return cls(
                backend="http", endpoint=endpoint, token=os.environ.get("CHANGEAGENT_TOKEN"), timeout_s=timeout_s
            )
        if model_config:
            return cls(
                backend="in-process",
                config=model_config,
                checkpoint=Path(checkpoint) if checkpoint else None,
                timeout_s=timeout_s,
            )
        return cls(timeout_s=timeout_s)


class TrustSettings(BaseModel):
    """How much each source is believed; the reconciliation policy compares these numbers."""

    model_binary: float = Field(0.75, ge=0, le=1, description="DeltaVLM yes/no (paper Table 3: F1 ≈ 0.9).")
    model_counts: float = Field(0.5, ge=0, le=1, description="DeltaVLM counts (paper Table 4: MAE ≈ 1.3).")
    model_cells: float = Field(0.55, ge=0, le=1, description="DeltaVLM 3×3 cells (paper Table 5: F1 ≈ 0.8).")
    model_caption: float = Field(0.6, ge=0, le=1)


class AgentSettings(BaseModel):
    model: ModelSettings = Field(default_factory=ModelSettings)
    mask_provider: str = Field(
        "classical",
        description="Mask for pairs without a user mask: a provider spec such as classical, "
        "onnx:detector.onnx, export:detector.pt2 or deltavlm:CONFIG,checkpoint=DIR (tools.provider_spec).",
    )
    rules: RuleSettings = Field(default_factory=RuleSettings)
    classical: ClassicalSettings = Field(
        default_factory=ClassicalSettings, description="The classical detector's settings (mask_provider classical)."
    )
    trust: TrustSettings = Field(default_factory=TrustSettings)
    checkpoint_db: Path | None = Field(None, description="SQLite file that keeps conversations across restarts.")
    artefact_dir: Path = Field(Path("out/artefacts"), description="Where overlays and GeoJSON are written.")
    geojson_crs: Literal["wgs84", "native"] = "wgs84"
    pair_cache_size: int = Field(16, ge=1, description="Pairs (pixels, masks, verdicts) kept in memory.")
