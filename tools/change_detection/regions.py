"""From a difference map to changed regions: threshold relative to the pair's noise, refine, drop the small."""

from __future__ import annotations

import cv2
import numpy as np


def effective_threshold(smoothed: np.ndarray, threshold: float, noise_factor: float) -> float:
    """The fixed threshold in scene units, raised to ``noise_factor`` × the pair's median difference.

    A pair whose dates differ everywhere (season, haze, a different sensor) has a high median difference; a
    fixed threshold would call all of it change, a relative one only what stands out from it.
    """
    if noise_factor <= 0:
        return threshold
    return noise_relative_threshold(threshold, noise_factor, float(np.median(smoothed)))


def noise_relative_threshold(threshold: float, noise_factor: float, median: float) -> float:
    """The one rule: max(threshold, noise_factor × median difference)."""
    return max(threshold, noise_factor * median)


def changed_regions(
    smoothed: np.ndarray,
    fine: np.ndarray,
    threshold: float,
    refine_ratio: float,
    min_area_px: int,
) -> np.ndarray:
    """Boolean mask: smoothed difference over ``threshold``, fine difference over ``refine_ratio``×threshold
    inside it, and only 8-connected regions of at least ``min_area_px`` pixels."""
    mask = smoothed > threshold
    if refine_ratio > 0:
        mask &= fine > refine_ratio * threshold
    if not mask.any():
        return mask
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area_px
    keep[0] = False
    return keep[labels]
