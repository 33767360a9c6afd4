"""Every number of the classical detector, in physical units where it has one.

One parameter set for every sensor: sizes are given in metres and turned into pixels with the pair's ground
sampling distance (GSD), thresholds are given in "scene units" (a band's difference divided by that band's
spread over the first date), so the same numbers hold at 0.5 m aerial and 10 m Sentinel-2. The defaults are
``python -m tools.lodo``'s choice over all five labelled datasets (README, "How good is the classical mask?");
the calibration does not depend on them: its entries are each dataset's held-out verdicts with the settings
chosen on the other four.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Matching = Literal["meanstd", "quantile"]


class ClassicalSettings(BaseModel):
    """The classical detector's settings; GSD comes with the pair, not from here."""

    model_config = ConfigDict(frozen=True)

    align: bool = Field(True, description="Estimate and undo a global shift of t2 (phase correlation) first.")
    align_max_shift_px: float = Field(
        4.0, ge=0, le=32, description="Larger estimated shifts are distrusted and not applied (pixels)."
    )
    matching: Matching = Field(
        "meanstd",
        description="Radiometric matching of t2 to t1 per band: mean/std (linear) or 100 matched quantiles.",
    )
    robust_spread: bool = Field(
        False, description="Centre and spread of a band by median/IQR instead of mean/std (large changes bend less)."
    )
    neighbourhood_px: int = Field(
        1, ge=0, le=3, description="Minimum difference over this radius, both directions (misregistration)."
    )
    edge_weight: float = Field(
        2.0, ge=0, le=4, description="Weight of the gradient-magnitude channel (structure) beside the colour bands."
    )
    smoothing_m: float = Field(40.0, gt=0, description="Scale of the difference smoothing (metres).")
    smoothing_max_px: float = Field(6.0, gt=0, description="Upper bound of the smoothing scale (pixels).")
    threshold: float = Field(1.2, gt=0, description="Smoothed difference that counts as change (scene units).")
    noise_factor: float = Field(
        0.0,
        ge=0,
        description="The threshold rises to this × the pair's median difference (its own noise); 0 disables.",
    )
    refine_ratio: float = Field(
        0.6,
        ge=0,
        le=2,
        description="Inside a change region keep pixels whose unsmoothed difference reaches this × threshold; "
        "separates neighbouring objects that smoothing merged (0 keeps the smoothed region).",
    )
    min_area_m2: float = Field(200.0, ge=0, description="Smaller changed regions are dropped (square metres).")
    assumed_gsd_m: float = Field(
        1.0, gt=0, description="Metres per pixel used when the pair's GSD is unknown (the answer says so)."
    )
