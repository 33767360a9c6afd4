"""The classical change detector, step by step; every number is a :class:`ClassicalSettings` field.

1. **Align** (``align``): estimate t2's global shift against t1 by phase correlation and undo it when it is
   small and clear (:mod:`tools.change_detection.alignment`).
2. **Scene units** (``matching``): match t2 to t1 per band and divide by t1's spread, so 1 unit is one
   standard deviation of the scene (:mod:`tools.change_detection.differencing`). Only the RGB bands are used:
   the pair is 8-bit RGB by then, and on Sentinel-2 near-infrared mostly adds seasonal vegetation change
   (``python -m tools.lodo_bands`` measures it).
3. **Structure** (``edge_weight``): the gradient magnitude joins the colour bands as one more channel, so new
   outlines count even where colour barely moved.
4. **Tolerant difference** (``neighbourhood_px``): the smallest difference over a 3×3 neighbourhood of the other
   date, both ways: a pixel of residual misregistration does not read as change.
5. **Smooth in metres** (``smoothing_m``, ``smoothing_max_px``): σ = min(max px, smoothing_m / GSD).
6. **Threshold relative to the pair** (``threshold``, ``noise_factor``): a fixed level in scene units, raised
   with the pair's own median difference; no fixed fraction floor, so a 2-pixel building at 10 m can stand.
7. **Refine and filter** (``refine_ratio``, ``min_area_m2``): pixels inside a region must differ themselves
   (separating rows of houses that smoothing merged); regions under ``min_area_m2`` are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tools.change_detection.alignment import Shift, estimate_shift, undo_shift
from tools.change_detection.differencing import scene_units, structure_channel, tolerant_difference
from tools.change_detection.regions import changed_regions, effective_threshold
from tools.change_detection.scale import ScalePlan, plan_scale
from tools.change_detection.settings import ClassicalSettings
from tools.pairs import ImagePair

COLOUR_BANDS = 3


@dataclass
class ClassicalAnalysis:
    """One run's intermediate maps and numbers, for the mask, its explanation and debugging."""

    changed: np.ndarray
    difference: np.ndarray
    smoothed: np.ndarray
    threshold: float
    median_difference: float
    shift: Shift
    scale: ScalePlan


def pair_gsd_m(pair: ImagePair) -> float | None:
    """The pair's metres per pixel (stated or from its georeference), None when unknown."""
    if pair.gsd_m is not None:
        return pair.gsd_m
    if pair.georef is not None:
        from tools.gsd import gsd_from_georef

        return gsd_from_georef(pair.georef)
    return None


def difference_map(t1: np.ndarray, t2: np.ndarray, settings: ClassicalSettings) -> tuple[np.ndarray, Shift]:
    """Steps 1–4: the unsmoothed, misregistration-tolerant difference (float32, scene units) and the shift used."""
    shift = estimate_shift(t1, t2, settings.align_max_shift_px) if settings.align else Shift()
    t2 = undo_shift(t2, shift)
    z1, z2 = scene_units(t1, t2, settings.matching, settings.robust_spread)
    if settings.edge_weight > 0:
        s1, spread = structure_channel(z1)
        s2, _ = structure_channel(z2, spread)
        z1 = np.concatenate([z1, settings.edge_weight * s1[..., None]], axis=2)
        z2 = np.concatenate([z2, settings.edge_weight * s2[..., None]], axis=2)
    return tolerant_difference(z1, z2, settings.neighbourhood_px, COLOUR_BANDS), shift


def smooth(difference: np.ndarray, scale: ScalePlan) -> np.ndarray:
    """Step 5: Gaussian smoothing at the pair's scale."""
    if scale.smoothing_px <= 0.3:
        return difference
    return cv2.GaussianBlur(difference, (0, 0), scale.smoothing_px)


def mask_from_difference(
    difference: np.ndarray, smoothed: np.ndarray, scale: ScalePlan, settings: ClassicalSettings
) -> tuple[np.ndarray, float, float]:
    """Steps 6–7: the changed pixels, the threshold used and the pair's median difference."""
    median = float(np.median(smoothed))
    threshold = effective_threshold(smoothed, settings.threshold, settings.noise_factor)
    changed = changed_regions(smoothed, difference, threshold, settings.refine_ratio, scale.min_area_px)
    return changed, threshold, median


def analyse(pair: ImagePair, settings: ClassicalSettings | None = None) -> ClassicalAnalysis:
    """Run every step on ``pair`` and keep the intermediate maps."""
    s = settings or ClassicalSettings()
    scale = plan_scale(pair_gsd_m(pair), s)
    difference, shift = difference_map(pair.t1, pair.t2, s)
    smoothed = smooth(difference, scale)
    changed, threshold, median = mask_from_difference(difference, smoothed, scale, s)
    return ClassicalAnalysis(
        changed=changed,
        difference=difference,
        smoothed=smoothed,
        threshold=threshold,
        median_difference=median,
        shift=shift,
        scale=scale,
    )


def change_score(pair: ImagePair, settings: ClassicalSettings | None = None) -> np.ndarray:
    """Per-pixel change score (float32, scene units): the smoothed difference the threshold is applied to."""
    return analyse(pair, settings).smoothed
