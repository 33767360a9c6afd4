"""The classical mask's confidence: its accuracy measured on held-out pairs of the same kind, stored as data.

``calibration.json`` beside this module is written by ``python -m tools.lodo --write-calibration`` from a
leave-one-dataset-out run: every held-out pair's binary verdict is sorted by the kind of pair it was (GSD band
and sensor kind), and each kind's entry holds how often the verdict was right, its grid F1 and pixel F1. A
pair's confidence is its kind's binary accuracy, smoothed for the small samples as (right + 1) / (pairs + 2)
(the mean of the accuracy's posterior under a uniform prior), so 18 of 18 right states 0.95, not certainty.

Lookup falls back from (band, sensor) to the band over all sensors, then to every pair, and the reason says so.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from tools.masks import CalibrationFallback, ConfidenceBasis
from tools.raster import InputError

CALIBRATION_PATH = Path(__file__).with_name("calibration.json")
REGENERATE = "python -m tools.lodo --write-calibration"

GSD_BANDS: tuple[tuple[str, float, str], ...] = (
    ("sub-metre", 1.0, "sub-metre"),
    ("1-5m", 5.0, "1–5 m"),
    ("over-5m", float("inf"), "5 m and coarser"),
)
"""(key, upper bound in metres (exclusive), words) of each GSD band."""
UNKNOWN_BAND = "unknown-gsd"


class CalibrationEntry(BaseModel):
    """Held-out scores of one kind of pair."""

    key: str
    gsd_band: str
    sensor: str
    datasets: list[str]
    pairs: int = Field(ge=0)
    binary_correct: int = Field(ge=0)
    binary_accuracy: float
    grid_f1: float = Field(description="Over the real (labelled-change) pairs of this kind.")
    pixel_f1: float
    confidence: float = Field(ge=0, le=1, description="(binary_correct + 1) / (pairs + 2)")
    reliable: bool
    description: str


class Calibration(BaseModel):
    """Every kind's entry, with how they were measured."""

    generated_by: str = REGENERATE
    protocol: str
    settings: dict = Field(description="The detector settings the entries were measured with.")
    reliable_when: str
    entries: list[CalibrationEntry]

    def lookup(self, gsd_band: str, sensor: str) -> tuple[CalibrationEntry, CalibrationFallback | None]:
        """The entry for a kind of pair, and how it fell back to a broader one when it had to (None: it did not)."""
        by_key = {e.key: e for e in self.entries}
        exact = by_key.get(entry_key(gsd_band, sensor))
        if exact is not None:
            return exact, None
        band = by_key.get(entry_key(gsd_band, "any"))
        if band is not None:
            return band, "all_sensors"
        pooled = by_key.get(entry_key("any", "any"))
        if pooled is None:
            raise InputError(f"calibration has no entry for {gsd_band}/{sensor} and no pooled entry; run {REGENERATE}")
        return pooled, "all_pairs"


def held_out_basis(
    entry: CalibrationEntry,
    detector: Literal["classical", "learned"],
    band: str,
    sensor: str,
    fallback: CalibrationFallback | None,
    default_settings: bool = True,
) -> ConfidenceBasis:
    """The facts behind a confidence read from a leave-one-dataset-out entry, for the answer to word."""
    return ConfidenceBasis(
        kind="held_out",
        detector=detector,
        binary_accuracy=entry.binary_accuracy,
        binary_correct=entry.binary_correct,
        pairs=entry.pairs,
        grid_f1=entry.grid_f1,
        gsd_band=band,
        sensor=sensor,
        datasets=list(entry.datasets),
        fallback=fallback,
        default_settings=default_settings,
    )


def entry_key(gsd_band: str, sensor: str) -> str:
    return f"{gsd_band}/{sensor}"


def gsd_band(gsd_m: float | None) -> str:
    """The band key of a GSD (``unknown-gsd`` when the pair's GSD is unknown)."""
    if gsd_m is None:
        return UNKNOWN_BAND
    return next(key for key, upper, _ in GSD_BANDS if gsd_m < upper)


def band_words(band: str) -> str:
    if band == UNKNOWN_BAND:
        return "unknown-GSD"
    return next((words for key, _, words in GSD_BANDS if key == band), band)


def sensor_kind(scaling: str) -> str:
    """8-bit RGB imagery (aerial, Google Earth) against stretched 16-bit multispectral (Sentinel-2 and kin)."""
    return "rgb8" if scaling.startswith("none") else "multispectral"


SENSOR_WORDS = {"rgb8": "8-bit RGB", "multispectral": "multispectral (RGB bands)", "any": "any"}


def smoothed_accuracy(correct: int, total: int) -> float:
    return (correct + 1) / (total + 2)


@functools.cache
def load_calibration(path: Path = CALIBRATION_PATH) -> Calibration:
    """The stored calibration; a clear error when it is missing or unreadable."""
    if not path.is_file():
        raise InputError(f"classical calibration {path} is missing; regenerate it with {REGENERATE}")
    try:
        return Calibration.model_validate_json(path.read_text())
    except ValueError as exc:
        raise InputError(
            f"classical calibration {path} is unreadable ({exc}); regenerate it with {REGENERATE}"
        ) from exc
