"""The classical mask provider: change without weights, with a confidence measured on held-out data."""

from __future__ import annotations

import numpy as np

from deltavlm.rules import ChangeClass
from tools.change_detection.calibration import (
    SENSOR_WORDS,
    Calibration,
    band_words,
    gsd_band,
    load_calibration,
    sensor_kind,
)
from tools.change_detection.detector import ClassicalAnalysis, analyse
from tools.change_detection.settings import ClassicalSettings
from tools.gsd import describe_gsd
from tools.masks import ChangeMask, MaskSource
from tools.pairs import ImagePair


class ClassicalMaskProvider:
    """Category-free change from colour and structure difference in scene units (see ``detector``)."""

    name = "classical"

    def __init__(self, settings: ClassicalSettings | None = None, calibration: Calibration | None = None) -> None:
        self.settings = settings or ClassicalSettings()
        self._calibration = calibration

    @property
    def calibration(self) -> Calibration:
        if self._calibration is None:
            self._calibration = load_calibration()
        return self._calibration

    def source_for(self, pair: ImagePair, analysis: ClassicalAnalysis) -> MaskSource:
        """Provenance, calibrated confidence and the reason for it, for one analysed pair."""
        band = gsd_band(analysis.scale.gsd_m if analysis.scale.gsd_known else None)
        sensor = sensor_kind(pair.scaling)
        entry, fallback = self.calibration.lookup(band, sensor)
        kind_words = f"{band_words(band)} {SENSOR_WORDS.get(sensor, sensor)} pairs"
        reason = (
            f"binary accuracy {entry.binary_accuracy:.2f} ({entry.binary_correct}/{entry.pairs}) and grid F1 "
            f"{entry.grid_f1:.2f} on held-out {kind_words} ({', '.join(entry.datasets)}; leave-one-dataset-out)"
        )
        if fallback:
            reason += f"; {fallback}"
        if self.settings != ClassicalSettings():
            reason += "; measured with the default settings, not these"
        gsd_text = describe_gsd(analysis.scale.gsd_m if analysis.scale.gsd_known else None)
        scale_note = (
            f"at {gsd_text}/px"
            if analysis.scale.gsd_known
            else f"at an unknown pixel size (analysed as {analysis.scale.gsd_m:g} m/px)"
        )
        fraction = float(analysis.changed.mean())
        shift = analysis.shift
        return MaskSource(
            provider=self.name,
            kind="classical",
            categorical=False,
            confidence=round(entry.confidence, 3),
            confidence_reason=reason,
            calibration_key=entry.key,
            gsd_m=analysis.scale.gsd_m if analysis.scale.gsd_known else None,
            min_object_pixels=analysis.scale.min_area_px,
            reliable=entry.reliable,
            settings={
                **self.settings.model_dump(),
                "measured": {
                    "gsd_m": round(analysis.scale.gsd_m, 3),
                    "gsd_known": analysis.scale.gsd_known,
                    "smoothing_px": round(analysis.scale.smoothing_px, 2),
                    "min_area_px": analysis.scale.min_area_px,
                    "threshold": round(analysis.threshold, 3),
                    "median_difference": round(analysis.median_difference, 3),
                    "shift_px": [round(shift.dx, 2), round(shift.dy, 2)] if shift.applied else [0.0, 0.0],
                    "changed_fraction": round(fraction, 4),
                },
                "calibration": entry.model_dump(include={"key", "pairs", "binary_accuracy", "grid_f1", "pixel_f1"}),
            },
            detail=(
                f"classical colour/structure change {scale_note}: knows where pixels changed, not what changed; "
                f"{fraction:.1%} of the image marked changed; regions under {self.settings.min_area_m2:g} m² are "
                "dropped; object counts from it are estimates (about), not facts"
            ),
        )

    def provide(self, pair: ImagePair) -> ChangeMask:
        analysis = analyse(pair, self.settings)
        return ChangeMask(
            class_mask=np.where(analysis.changed, int(ChangeClass.CHANGE), 0).astype(np.uint8),
            source=self.source_for(pair, analysis),
        )
