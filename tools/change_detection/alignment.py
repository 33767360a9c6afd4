"""Undo a small global misregistration before differencing.

Archive pairs are often off by a pixel or two; every shifted edge would otherwise read as change. OpenCV's phase
correlation (Hann-windowed, on lightness) estimates the translation of t2 against t1 to a fraction of a pixel;
shifts larger than the allowed bound, or without a clear correlation peak, are not applied, because on pairs
that changed a lot the estimate is not trustworthy and a wrong shift costs more than none.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import BaseModel

MIN_PEAK_RESPONSE = 0.02
"""Phase-correlation peaks weaker than this are noise (OpenCV's response is the normalised peak energy)."""


class Shift(BaseModel):
    """Translation of t2 relative to t1 in pixels (x right, y down) and whether it was applied."""

    dx: float = 0.0
    dy: float = 0.0
    response: float = 0.0
    applied: bool = False


def _lightness(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32).mean(axis=2)


def estimate_shift(t1: np.ndarray, t2: np.ndarray, max_shift_px: float) -> Shift:
    """Where t2's content sits relative to t1's, by phase correlation; applied only when small and clear."""
    height, width = t1.shape[:2]
    if max_shift_px <= 0 or min(height, width) < 16:
        return Shift()
    g1, g2 = _lightness(t1), _lightness(t2)
    window = cv2.createHanningWindow((width, height), cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(g1, g2, window)
    usable = response >= MIN_PEAK_RESPONSE and np.hypot(dx, dy) <= max_shift_px and np.hypot(dx, dy) >= 0.25
    return Shift(dx=float(dx), dy=float(dy), response=float(response), applied=bool(usable))


def undo_shift(image: np.ndarray, shift: Shift) -> np.ndarray:
    """``image`` (t2) moved back by ``shift`` onto t1's grid (bilinear; edges repeat the border)."""
    if not shift.applied:
        return image
    matrix = np.float32([[1, 0, -shift.dx], [0, 1, -shift.dy]])
    height, width = image.shape[:2]
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
