"""The classical mask provider: change without weights, with a confidence measured on held-out data.

Two paths, routed by the pair's GSD and sensor (:mod:`tools.change_detection.routing`): the sub-metre aerial
detector (:mod:`tools.change_detection.aerial`) and the GSD-aware one (:mod:`tools.change_detection.detector`).
The source says which ran; its confidence is the calibration entry of the pair's kind, which the protocol
measured through this same routing.
"""

from __future__ import annotations

import numpy as np

from deltavlm.rules import ChangeClass
from tools.change_detection.aerial import AerialAnalysis, AerialSettings, analyse_aerial
from tools.change_detection.calibration import (
    SENSOR_WORDS,
    Calibration,
    CalibrationEntry,
    band_words,
    gsd_band,
    load_calibration,
    sensor_kind,
)
from tools.change_detection.detector import ClassicalAnalysis, analyse, pair_gsd_m
from tools.change_detection.routing import Path, choose_path
from tools.change_detection.settings import ClassicalSettings
from tools.gsd import describe_gsd
from tools.masks import ChangeMask, MaskSource, ProviderKey
from tools.pairs import ImagePair


class ClassicalMaskProvider:
    """Category-free change: the aerial path at sub-metre 8-bit RGB, the GSD-aware path elsewhere."""

    name = "classical"

    def __init__(
        self,
        settings: ClassicalSettings | None = None,
        calibration: Calibration | None = None,
        aerial_settings: AerialSettings | None = None,
        path: Path | None = None,
    ) -> None:
        """``path`` forces one path for every pair (the protocol's comparison); None routes by GSD and sensor."""
        self.settings = settings or ClassicalSettings()
        self.aerial_settings = aerial_settings or AerialSettings()
        self._calibration = calibration
        self._given = calibration
        """The table passed in (None: the default table, loaded on first use); the key never changes on loading."""
        self.path = path

    def key(self) -> ProviderKey:
        """Its settings, the forced path and the calibration table (the default one, or this given object)."""
        table = f"given {id(self._given):x}" if self._given is not None else "default"
        settings = f"{self.settings.model_dump_json()}|{self.aerial_settings.model_dump_json()}|{self.path}|{table}"
        return ProviderKey(name=self.name, settings=settings)

    @property
    def calibration(self) -> Calibration:
        if self._calibration is None:
            self._calibration = load_calibration()
        return self._calibration

    def calibrated(self, gsd_m: float | None, sensor: str, path: str, defaults: bool) -> tuple[CalibrationEntry, str]:
        """The calibration entry of the pair's kind and the sentence that explains the confidence."""
        band = gsd_band(gsd_m)
        entry, fallback = self.calibration.lookup(band, sensor)
        kind_words = f"{band_words(band)} {SENSOR_WORDS.get(sensor, sensor)} pairs"
        reason = (
            f"{path} path: binary accuracy {entry.binary_accuracy:.2f} ({entry.binary_correct}/{entry.pairs}) and "
            f"grid F1 {entry.grid_f1:.2f} on held-out {kind_words} ({', '.join(entry.datasets)}; "
            "leave-one-dataset-out)"
        )
        if fallback:
            reason += f"; {fallback}"
        if not defaults:
            reason += "; measured with the default settings, not these"
        if self.path is not None and self.path != choose_path(gsd_m, sensor):
            reason += f"; measured on the {choose_path(gsd_m, sensor)} path, which routing would have chosen"
        return entry, reason

    def aerial_source(self, pair: ImagePair, analysis: AerialAnalysis) -> MaskSource:
        """Provenance and calibrated confidence of a pair the aerial path analysed."""
        gsd = pair_gsd_m(pair)
        s = self.aerial_settings
        entry, reason = self.calibrated(gsd, sensor_kind(pair.scaling), "aerial", s == AerialSettings())
        fraction = float(analysis.changed.mean())
        if analysis.gated:
            outcome = (
                f"only {analysis.found_fraction:.1%} of the image looked changed, under the "
                f"{s.min_changed_fraction:.0%} detection floor, so no change is reported"
            )
        else:
            outcome = f"{fraction:.1%} of the image marked changed"
        scale_note = f"at {describe_gsd(gsd)}/px" if gsd is not None else "at an unknown pixel size"
        return MaskSource(
            provider=self.name,
            kind="classical",
            categorical=False,
            confidence=round(entry.confidence, 3),
            measured={"binary_accuracy": entry.binary_accuracy, "grid_f1": entry.grid_f1},
            confidence_reason=reason,
            calibration_key=entry.key,
            gsd_m=gsd,
            min_object_pixels=s.min_area,
            reliable=entry.reliable,
            settings={
                "path": "aerial",
                **s.model_dump(),
                "measured": {
                    "radiometric_agreement": round(analysis.radiometric_agreement, 3),
                    "separability": round(analysis.separability, 3),
                    "regions_rejected": analysis.rejected_regions,
                    "below_detection_floor": bool(analysis.gated),
                    "changed_fraction": round(fraction, 4),
                },
                "calibration": entry.model_dump(include={"key", "pairs", "binary_accuracy", "grid_f1", "pixel_f1"}),
            },
            detail=(
                f"classical aerial path (structure change after {analysis.normalisation} normalisation) {scale_note}: "
                "knows where pixels changed, not what changed; favours new structures over vegetation, shadow and "
                f"illumination change; {outcome}; object counts from it are estimates (about), not facts"
            ),
        )

    def source_for(self, pair: ImagePair, analysis: ClassicalAnalysis) -> MaskSource:
        """Provenance, calibrated confidence and the reason for it, for a pair the GSD-aware path analysed."""
        gsd = analysis.scale.gsd_m if analysis.scale.gsd_known else None
        entry, reason = self.calibrated(
            gsd, sensor_kind(pair.scaling), "GSD-aware", self.settings == ClassicalSettings()
        )
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
            measured={"binary_accuracy": entry.binary_accuracy, "grid_f1": entry.grid_f1},
            confidence_reason=reason,
            calibration_key=entry.key,
            gsd_m=analysis.scale.gsd_m if analysis.scale.gsd_known else None,
            min_object_pixels=analysis.scale.min_area_px,
            reliable=entry.reliable,
            settings={
                "path": "gsd-aware",
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
                f"classical GSD-aware path (colour/structure change) {scale_note}: knows where pixels changed, "
                "not what changed; "
                f"{fraction:.1%} of the image marked changed; regions under {self.settings.min_area_m2:g} m² are "
                "dropped; object counts from it are estimates (about), not facts"
            ),
        )

    def provide(self, pair: ImagePair) -> ChangeMask:
        if (self.path or choose_path(pair_gsd_m(pair), sensor_kind(pair.scaling))) == "aerial":
            aerial = analyse_aerial(pair, self.aerial_settings)
            changed, source = aerial.changed, self.aerial_source(pair, aerial)
        else:
            analysis = analyse(pair, self.settings)
            changed, source = analysis.changed, self.source_for(pair, analysis)
        return ChangeMask(class_mask=np.where(changed, int(ChangeClass.CHANGE), 0).astype(np.uint8), source=source)
