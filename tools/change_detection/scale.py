"""Metres to pixels: the detector's spatial settings at one pair's ground sampling distance."""

from __future__ import annotations

import math

from pydantic import BaseModel, Field

from tools.change_detection.settings import ClassicalSettings


class ScalePlan(BaseModel):
    """The pixel sizes one pair is analysed at, and the GSD they came from."""

    gsd_m: float = Field(description="Metres per pixel used (the pair's, or the assumed one).")
    gsd_known: bool
    smoothing_px: float
    min_area_px: int


def plan_scale(gsd_m: float | None, settings: ClassicalSettings) -> ScalePlan:
    """Smoothing σ = min(max px, smoothing_m / GSD); smallest region = min_area_m2 / GSD² (at least 1 px).

    At 0.5 m that is σ 6 px and 800 px for 200 m²; at 10 m σ 2 px and 2 px, so a two-pixel building survives.
    """
    known = gsd_m is not None
    gsd = float(gsd_m) if gsd_m is not None else settings.assumed_gsd_m
    smoothing = min(settings.smoothing_max_px, settings.smoothing_m / gsd)
    min_area = max(1, math.ceil(settings.min_area_m2 / (gsd * gsd) - 1e-9))
    return ScalePlan(gsd_m=gsd, gsd_known=known, smoothing_px=smoothing, min_area_px=min_area)
