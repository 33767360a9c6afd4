"""Per-pixel difference of two dates in "scene units", tolerant of a pixel of misregistration.

Scene units: each band of t1 is centred and divided by its own spread; t2 is first matched to t1 per band
(centre and spread: mean/std, or median/interquartile range with ``robust_spread``; or matched quantiles for
non-linear tone curves) and then put through the same transform. A
difference of 1 is then one standard deviation of the scene, whatever the sensor's bit depth, stretch or
brightness, which is what lets one threshold serve 8-bit aerial and 16-bit Sentinel-2 pairs.

The difference at a pixel is the smallest over a (2r+1)² neighbourhood of the other date, taken both ways
(t2 against shifted t1, t1 against shifted t2) and averaged: an edge that moved by a pixel finds itself
next door, a new object does not.
"""

from __future__ import annotations

import cv2
import numpy as np

from tools.change_detection.settings import Matching

QUANTILE_LEVELS = np.linspace(0.005, 0.995, 100)
MIN_SPREAD = 1.0
"""Bands flatter than this (8-bit levels) are not stretched up: noise on a flat band is not signal."""


def centre_spread(band: np.ndarray, robust: bool) -> tuple[float, float]:
    """The band's centre and spread: median and interquartile spread when ``robust``, else mean and std."""
    if robust:
        return robust_centre_spread(band)
    return float(band.mean()), max(float(band.std()), MIN_SPREAD)


def robust_centre_spread(band: np.ndarray) -> tuple[float, float]:
    """Median and interquartile spread (IQR / 1.349, the σ of a normal band), on every 2nd pixel each way.

    Mean and standard deviation are bent by the change itself: a new red roof on a tenth of a quiet scene
    shifts t2's mean by several background σ, and every unchanged pixel then reads as changed. The median and
    quartiles move little until about a quarter of the scene has changed. Bands with a degenerate IQR (few
    levels) fall back to the standard deviation.
    """
    sample = band[::2, ::2] if band.ndim == 2 else band[::4]
    q1, median, q3 = np.percentile(sample, (25, 50, 75))
    spread = (q3 - q1) / 1.349
    if spread < MIN_SPREAD:
        spread = float(sample.std())
    return float(median), max(float(spread), MIN_SPREAD)


CANDIDATE_UNITS = 2.0
"""First-pass difference (robust scene units) above which a pixel is a candidate change, left out of the
matching statistics of the second pass; no-change pairs stay under 0.7 (issue 17's measurement)."""
MAX_CANDIDATE_FRACTION = 0.5
"""Above this the candidates are the scene, not a change in it, and the first pass's statistics stand."""


def scene_units(
    t1: np.ndarray, t2: np.ndarray, matching: Matching, robust: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Both dates (H×W×3 uint8) as float32 scene units of t1, t2 matched to t1 per band.

    Two passes, so a large new object cannot bend the matching: a robust first pass (median/IQR) finds the
    candidate change, and the statistics of the second pass (``matching``, ``robust``) are taken over the rest.
    Without it a red roof on a tenth of a quiet scene moves t2's mean and std enough to mark most of it changed.
    """
    a = t1.astype(np.float32)
    b = t2.astype(np.float32)
    z1, z2 = _matched(a, b, "meanstd", True, None)
    candidate = np.sqrt(((z1 - z2) ** 2).mean(axis=2)) > CANDIDATE_UNITS
    keep = ~candidate if 0 < candidate.mean() < MAX_CANDIDATE_FRACTION else None
    return _matched(a, b, matching, robust, keep)


def _matched(
    a: np.ndarray, b: np.ndarray, matching: Matching, robust: bool, keep: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Scene units with statistics over the ``keep`` pixels (all when None)."""
    z1 = np.empty_like(a)
    z2 = np.empty_like(b)
    for c in range(a.shape[2]):
        band1 = a[..., c] if keep is None else a[..., c][keep]
        band2 = b[..., c] if keep is None else b[..., c][keep]
        mean1, spread1 = centre_spread(band1, robust)
        if matching == "quantile":
            q1 = np.quantile(band1, QUANTILE_LEVELS)
            q2 = np.quantile(band2, QUANTILE_LEVELS)
            q2 = np.maximum.accumulate(q2 + np.arange(q2.size) * 1e-4)
            matched = np.interp(b[..., c].ravel(), q2, q1).reshape(b.shape[:2]).astype(np.float32)
        else:
            mean2, spread2 = centre_spread(band2, robust)
            matched = (b[..., c] - mean2) * (spread1 / spread2) + mean1
        z1[..., c] = (a[..., c] - mean1) / spread1
        z2[..., c] = (matched - mean1) / spread1
    return z1, z2


def structure_channel(z: np.ndarray, spread: float | None = None) -> tuple[np.ndarray, float]:
    """Gradient magnitude of the mean band (σ 1 px), in units of its spread over t1 (returned for t2)."""
    grey = cv2.GaussianBlur(z.mean(axis=2), (0, 0), 1.0)
    magnitude = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    spread = spread if spread is not None else max(float(magnitude.std()), 1e-3)
    return magnitude / spread, spread


def _min_over_neighbourhood(fixed: np.ndarray, moving: np.ndarray, radius: int) -> np.ndarray:
    """min over offsets |o| ≤ radius of Σ_c (fixed(p) − moving(p + o))², per pixel."""
    if radius == 0:
        return ((fixed - moving) ** 2).sum(axis=2)
    height, width = fixed.shape[:2]
    padded = cv2.copyMakeBorder(moving, radius, radius, radius, radius, cv2.BORDER_REFLECT)
    if padded.ndim == 2:
        padded = padded[..., None]
    best = np.full((height, width), np.inf, dtype=np.float32)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            window = padded[radius + dy : radius + dy + height, radius + dx : radius + dx + width]
            np.minimum(best, ((fixed - window) ** 2).sum(axis=2), out=best)
    return best


def tolerant_difference(z1: np.ndarray, z2: np.ndarray, radius: int, bands: int) -> np.ndarray:
    """Root-mean-square difference per band (``bands`` = the colour bands' count), neighbourhood-min both ways."""
    forward = _min_over_neighbourhood(z2, z1, radius)
    backward = _min_over_neighbourhood(z1, z2, radius)
    return np.sqrt(0.5 * (forward + backward) / bands).astype(np.float32)
