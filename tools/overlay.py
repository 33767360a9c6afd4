"""Pictures a person can check: the after image with change tinted per category and the 3×3 grid.

Small tiles are enlarged to at least ``MIN_SIDE`` pixels so that cell outlines and the legend stay
readable; the mask is enlarged with nearest-neighbour so it is never smoothed into false change.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from deltavlm.rules import CELL_IDS, ChangeClass, grid_bounds
from tools.masks import ChangeMask
from tools.pairs import ImagePair
from tools.verify import Verification

MIN_SIDE = 512
TINTS: dict[ChangeClass, tuple[int, int, int]] = {
    ChangeClass.ROAD: (255, 176, 0),
    ChangeClass.BUILDING: (235, 35, 35),
    ChangeClass.CHANGE: (225, 0, 225),
}
CELL_OUTLINE = (0, 235, 255)
NO_DATA = (96, 96, 96)
"""Where a date holds no data: grey with diagonal hatching, so it is never read as "no change"."""
GRID_LINE = (255, 255, 255)
LEGEND_HEIGHT = 44


def _scale(shape: tuple[int, int]) -> float:
    return max(1.0, MIN_SIDE / max(shape))


def _text(canvas: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.5, outline: bool = True) -> None:
    if outline:  # readable on any image; the legend's dark strip needs none
        cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def render_overlay(pair: ImagePair, mask: ChangeMask, verification: Verification, alpha: float = 0.45) -> np.ndarray:
    """RGB uint8 picture: t2, tinted change, grid, changed cells outlined, and a legend strip."""
    factor = _scale(pair.shape)
    height, width = round(pair.shape[0] * factor), round(pair.shape[1] * factor)
    base = cv2.resize(pair.t2, (width, height), interpolation=cv2.INTER_CUBIC) if factor > 1 else pair.t2.copy()
    classes = cv2.resize(mask.class_mask, (width, height), interpolation=cv2.INTER_NEAREST)
    canvas = base.astype(np.float32)
    for cls, colour in TINTS.items():
        selected = classes == cls
        if selected.any():
            canvas[selected] = (1 - alpha) * canvas[selected] + alpha * np.array(colour, dtype=np.float32)
    canvas = canvas.astype(np.uint8)
    _draw_no_data(canvas, mask.valid, (width, height))
    for cls, colour in TINTS.items():
        contours, _ = cv2.findContours((classes == cls).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, colour, 1, cv2.LINE_AA)
    bounds = grid_bounds(height, width)
    for cell in CELL_IDS:
        r0, r1, c0, c1 = bounds[cell]
        cv2.rectangle(canvas, (c0, r0), (c1 - 1, r1 - 1), GRID_LINE, 1)
    for cell in verification.grid.cells:
        r0, r1, c0, c1 = bounds[cell]
        cv2.rectangle(canvas, (c0 + 2, r0 + 2), (c1 - 3, r1 - 3), CELL_OUTLINE, 3)
        _text(canvas, cell, (c0 + 8, r0 + 22), 0.6)
    for cell in verification.grid.no_data_cells:
        r0, r1, c0, c1 = bounds[cell]
        _text(canvas, f"{cell} no data", (c0 + 8, r0 + 22), 0.5)
    return np.vstack([canvas, _legend(width, mask, verification)])


def _draw_no_data(canvas: np.ndarray, valid: np.ndarray | None, size: tuple[int, int]) -> None:
    """Grey, hatched pixels where either date has no data (nothing is known there)."""
    if valid is None:
        return
    missing = cv2.resize((~valid).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    rows, cols = np.indices(missing.shape)
    canvas[missing] = NO_DATA
    canvas[missing & ((rows + cols) % 12 < 2)] = (160, 160, 160)


def _legend(width: int, mask: ChangeMask, verification: Verification) -> np.ndarray:
    strip = np.full((LEGEND_HEIGHT, width, 3), 32, dtype=np.uint8)
    x = 8
    entries = [("road", ChangeClass.ROAD), ("building", ChangeClass.BUILDING)]
    if not verification.summary.categorical:
        entries = [("change (no category)", ChangeClass.CHANGE)]
    for label, cls in entries:
        cv2.rectangle(strip, (x, 6), (x + 14, 20), TINTS[cls], -1)
        _text(strip, label, (x + 20, 19), 0.45, outline=False)
        x += 30 + 9 * len(label)
    cv2.rectangle(strip, (x, 6), (x + 14, 20), CELL_OUTLINE, 2)
    _text(strip, "changed cell (>5%)", (x + 20, 19), 0.45, outline=False)
    if mask.valid is not None:
        x += 30 + 9 * len("changed cell (>5%)")
        cv2.rectangle(strip, (x, 6), (x + 14, 20), NO_DATA, -1)
        _text(strip, f"no data ({1 - verification.valid_fraction:.0%})", (x + 20, 19), 0.45, outline=False)
    source = mask.source
    _text(
        strip,
        f"mask: {source.provider} ({source.kind}), confidence {source.confidence:.2f}",
        (8, 38),
        0.42,
        outline=False,
    )
    return strip


def render_comparison(pair: ImagePair) -> np.ndarray:
    """Before | after, side by side with labels, at the overlay's scale."""
    factor = _scale(pair.shape)
    size = (round(pair.shape[1] * factor), round(pair.shape[0] * factor))
    panels = []
    for label, image in (("before (t1)", pair.t1), ("after (t2)", pair.t2)):
        panel = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC) if factor > 1 else image.copy()
        _text(panel, label, (8, 24), 0.7)
        panels.append(panel)
    gap = np.full((size[1], 6, 3), 255, dtype=np.uint8)
    return np.hstack([panels[0], gap, panels[1]])


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write an RGB image as PNG (OpenCV wants BGR)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write PNG to {path}")
    return path
