"""The classical mask provider: change without weights, with a confidence measured on held-out data.

One path for every pair: the GSD-aware detector (:mod:`tools.change_detection.detector`). A second, sub-metre
aerial path was measured beside it over five held-out datasets and deleted: it won grid F1 on two of them (one of
those its own tuning data) and lost binary accuracy on two (README, "How good is the classical mask?"). The
confidence is the calibration entry of the pair's kind (GSD band and sensor), measured through this provider.
"""

from __future__ import annotations

import numpy as np

from deltavlm.rules import ChangeClass
from tools.change_detection.calibration import (
    Calibration,
    CalibrationEntry,
    gsd_band,
    held_out_basis,
    load_calibration,
    sensor_kind,
)
from tools.change_detection.detector import ClassicalAnalysis, analyse
from tools.change_detection.settings import ClassicalSettings
from tools.masks import ChangeMask, ConfidenceBasis, MaskMethod, MaskSource, ProviderKey
from tools.pairs import ImagePair


class ClassicalMaskProvider:
    """Category-free change by the GSD-aware detector, at the pair's GSD (or an assumed one, said so)."""

    name = "classical"

    def __init__(self, settings: ClassicalSettings | None = None, calibration: Calibration | None = None) -> None:
        self.settings = settings or ClassicalSettings()
        self._calibration = calibration
        self._given = calibration
        """The table passed in (None: the default table, loaded on first use); the key never changes on loading."""

    def key(self) -> ProviderKey:
        """Its settings and the calibration table (the default one, or this given object)."""
        table = f"given {id(self._given):x}" if self._given is not None else "default"
        settings = f"{self.settings.model_dump_json()}|{table}"
        return ProviderKey(name=self.name, settings=settings)

    @property
    def calibration(self) -> Calibration:
        if self._calibration is None:
            self._calibration = load_calibration()
        return self._calibration

    def calibrated(self, gsd_m: float | None, sensor: str, defaults: bool) -> tuple[CalibrationEntry, ConfidenceBasis]:
        """The calibration entry of the pair's kind and the facts that explain the confidence."""
        band = gsd_band(gsd_m)
        entry, fallback = self.calibration.lookup(band, sensor)
        return entry, held_out_basis(entry, "classical", band, sensor, fallback, default_settings=defaults)

    def source_for(self, pair: ImagePair, analysis: ClassicalAnalysis) -> MaskSource:
        """Provenance, calibrated confidence and the reason for it, for a pair the detector analysed."""
        gsd = analysis.scale.gsd_m if analysis.scale.gsd_known else None
        entry, basis = self.calibrated(gsd, sensor_kind(pair.scaling), self.settings == ClassicalSettings())
        fraction = float(analysis.changed.mean())
        shift = analysis.shift
        return MaskSource(
            provider=self.name,
            kind="classical",
            categorical=False,
            confidence=round(entry.confidence, 3),
            measured={"binary_accuracy": entry.binary_accuracy, "grid_f1": entry.grid_f1},
            basis=basis,
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
            made_by=MaskMethod(
                method="classical",
                changed_fraction=fraction,
                analysed_gsd_m=analysis.scale.gsd_m,
                gsd_known=analysis.scale.gsd_known,
                min_area_m2=self.settings.min_area_m2,
            ),
        )

    def provide(self, pair: ImagePair) -> ChangeMask:
        analysis = analyse(pair, self.settings)
        return ChangeMask(
            class_mask=np.where(analysis.changed, int(ChangeClass.CHANGE), 0).astype(np.uint8),
            source=self.source_for(pair, analysis),
        )
