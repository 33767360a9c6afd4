"""The DeltaVLM mask head as a change-mask provider: the segmentation head on the Bi-VE features."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from deltavlm.rules import ChangeClass
from tools.learned_masks.probabilities import tiled_probabilities
from tools.masks import ChangeMask, MaskMethod, MaskSource, ProviderKey
from tools.pairs import ImagePair
from tools.raster import InputError


class DeltaVLMMaskSettings(BaseModel):
    """How the DeltaVLM head is run over an image."""

    tile_size: int | None = Field(
        256, ge=16, description="Tile larger images to this size (the LEVIR-MCI tiles it learns from); null: whole."
    )
    tile_overlap: int = Field(32, ge=0, description="Pixels shared by neighbouring tiles.")
    confidence: float = Field(
        0.7, ge=0, le=1, description="Your trust in the trained head (e.g. its validation F1); it reports no scores."
    )


class DeltaVLMMaskProvider:
    """DeltaVLM's change-mask head: background / road / building per pixel, so counts per category.

    It shares the model's per-pair feature cache, so a conversation that also asks DeltaVLM questions encodes
    each tile once. Large images are cut into ``tile_size`` tiles (the head was trained on 256² LEVIR-MCI
    tiles and the runner resizes every input to the encoder's size) and the tiles' votes are blended.
    """

    name = "deltavlm-head"

    def __init__(self, runner: Any, settings: DeltaVLMMaskSettings | None = None) -> None:
        if not getattr(runner, "mask_enabled", False):
            raise InputError(
                "this DeltaVLM model has no change-mask head (mask_head.enabled: false in its config); "
                "enable it and load trained head weights, or use another mask provider"
            )
        self.runner = runner
        self.settings = settings or DeltaVLMMaskSettings()

    def key(self) -> ProviderKey:
        """Its settings and this loaded model (weights are the runner's)."""
        return ProviderKey(name=self.name, settings=f"{self.settings.model_dump_json()}|runner {id(self.runner):x}")

    @classmethod
    def from_config(
        cls,
        config: str | Path = "tiny",
        checkpoint: str | Path | None = None,
        device: str | None = None,
        settings: DeltaVLMMaskSettings | None = None,
        **overrides: Any,
    ) -> DeltaVLMMaskProvider:
        """Build the runner (``deltavlm.inference.DeltaVLMRunner``) and wrap its head."""
        from deltavlm.inference import DeltaVLMRunner

        runner = DeltaVLMRunner.from_config(config, checkpoint=checkpoint, device=device, **overrides)
        return cls(runner, settings)

    def _classes(self, pair: ImagePair) -> np.ndarray:
        s = self.settings
        height, width = pair.shape
        if s.tile_size is None or (height <= s.tile_size and width <= s.tile_size):
            return self.runner.predict_change_mask(pair.t1, pair.t2)
        tile = (min(s.tile_size, height), min(s.tile_size, width))
        overlap = min(s.tile_overlap, min(tile) // 2 - 1) if min(tile) > 2 else 0
        channels = 3  # background, road, building

        def predict(origins: list[tuple[int, int]]) -> list[np.ndarray]:
            votes = []
            for y, x in origins:
                window = (slice(y, y + tile[0]), slice(x, x + tile[1]))
                classes = self.runner.predict_change_mask(pair.t1[window], pair.t2[window])
                votes.append(np.eye(channels, dtype=np.float32)[classes].transpose(2, 0, 1))
            return votes

        blended = tiled_probabilities((height, width), tile, overlap, predict, channels, batch_size=1)
        return np.argmax(blended, axis=0).astype(np.uint8)

    def provide(self, pair: ImagePair) -> ChangeMask:
        classes = self._classes(pair)
        values = {int(v) for v in np.unique(classes)}
        allowed = {int(ChangeClass.BACKGROUND), int(ChangeClass.ROAD), int(ChangeClass.BUILDING)}
        if not values <= allowed:
            raise ValueError(f"the DeltaVLM head returned class values {sorted(values - allowed)}; expected 0, 1, 2")
        config = self.runner.config
        s = self.settings
        return ChangeMask(
            class_mask=classes.astype(np.uint8),
            source=MaskSource(
                provider=self.name,
                kind="learned",
                categorical=True,
                confidence=s.confidence,
                settings={
                    **s.model_dump(),
                    "config": config.name,
                    "config_fingerprint": config.fingerprint(),
                    "image_size": config.vision.image_size,
                    "weights": [
                        f"{r.source} ({r.format}, {r.loaded} tensors)" for r in getattr(self.runner, "load_reports", [])
                    ],
                },
                made_by=MaskMethod(method="deltavlm_head", config=config.name, stated_confidence=s.confidence),
            ),
        )
