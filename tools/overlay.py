"""Pictures a person can check: the after image with change tinted per category and the 3×3 grid.

Small tiles are enlarged to at least ``MIN_SIDE`` pixels so that cell outlines and the legend stay
readable; the mask is enlarged with nearest-neighbour so it is never smoothed into false change.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from deltavlm.rules import CELL_IDS, ChangeClass, change_mask, find_objects, grid_bounds
from tools.atomic import replacing
from tools.masks import ChangeMask
from tools.pairs import ImagePair
from tools.raster import InputError
from tools.verify import Verification

MIN_SIDE = 512
RGB = tuple[int, int, int]
TINTS: dict[ChangeClass, RGB] = {
    ChangeClass.ROAD: (255, 176, 0),
    ChangeClass.BUILDING: (235, 35, 35),
    ChangeClass.CHANGE: (225, 0, 225),
}
CELL_OUTLINE = (0, 235, 255)
NO_DATA = (96, 96, 96)
"""Where a date holds no data: grey with diagonal hatching, so it is never read as "no change"."""
GRID_LINE = (255, 255, 255)
FINE_GRID_LINE = (150, 220, 150)


def _scale(shape: tuple[int, int]) -> float:
    return max(1.0, MIN_SIDE / max(shape))


def _text(canvas: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.5, outline: bool = True) -> None:
    if outline:  # readable on any image; the legend's dark strip needs none
        cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def enlarged(image: np.ndarray) -> np.ndarray:
    """A date at the overlay's scale (small tiles enlarged to ``MIN_SIDE``), so before, after and overlay align."""
    factor = _scale(image.shape[:2])
    if factor == 1:
        return image.copy()
    size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
    return cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)


def draw_changes(
    image: np.ndarray, mask: ChangeMask, verification: Verification, alpha: float = 0.45, fine_grid: int = 0
) -> np.ndarray:
    """One date (RGB, any of the pair's two) with tinted change and one grid: the 3×3 cells, changed ones outlined.

    ``fine_grid`` (e.g. 6 or 9) draws an N×N grid instead, whose cells are labelled with their share of the changed
    objects (an object counts in the cell holding its centroid): on a large scene this shows where the objects
    are, which the 3×3 cells over the 5 % rule may not.
    """
    canvas = enlarged(image).astype(np.float32)
    height, width = canvas.shape[:2]
    classes = cv2.resize(mask.class_mask, (width, height), interpolation=cv2.INTER_NEAREST)
    for cls, colour in TINTS.items():
        selected = classes == cls
        if selected.any():
            canvas[selected] = (1 - alpha) * canvas[selected] + alpha * np.array(colour, dtype=np.float32)
    canvas = canvas.astype(np.uint8)
    _draw_no_data(canvas, mask.valid, (width, height))
    for cls, colour in TINTS.items():
        contours, _ = cv2.findContours((classes == cls).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, colour, 1, cv2.LINE_AA)
    if fine_grid > 3:  # the chosen grid replaces the 3×3 one: two grids over each other read as neither
        _draw_fine_grid(canvas, mask, verification, fine_grid)
        return canvas
    bounds = grid_bounds(height, width)
    label_scale = 0.6 * _text_factor(width)
    for cell in CELL_IDS:
        r0, r1, c0, c1 = bounds[cell]
        cv2.rectangle(canvas, (c0, r0), (c1 - 1, r1 - 1), GRID_LINE, 1)
    for cell in verification.grid.cells:
        r0, r1, c0, c1 = bounds[cell]
        cv2.rectangle(canvas, (c0 + 2, r0 + 2), (c1 - 3, r1 - 3), CELL_OUTLINE, 3)
        _text(canvas, cell, (c0 + 8, r0 + round(22 * _text_factor(width))), label_scale)
    for cell in verification.grid.no_data_cells:
        r0, r1, c0, c1 = bounds[cell]
        _text(canvas, f"{cell} no data", (c0 + 8, r0 + round(22 * _text_factor(width))), 0.5 * _text_factor(width))
    return canvas


def _draw_no_data(canvas: np.ndarray, valid: np.ndarray | None, size: tuple[int, int]) -> None:
    """Grey, hatched pixels where either date has no data (nothing is known there)."""
    if valid is None:
        return
    missing = cv2.resize((~valid).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    rows, cols = np.indices(missing.shape)
    canvas[missing] = NO_DATA
    canvas[missing & ((rows + cols) % 12 < 2)] = (160, 160, 160)


def fine_grid_shares(mask: ChangeMask, verification: Verification, size: int) -> np.ndarray:
    """``size``×``size`` shares of the changed objects (any category) by the cell holding each centroid."""
    class_mask = mask.class_mask
    height, width = class_mask.shape
    objects = find_objects(change_mask(class_mask, None), "change", verification.summary.settings)
    counts = np.zeros((size, size), dtype=np.float64)
    rows = np.arange(size + 1) * height // size
    cols = np.arange(size + 1) * width // size
    for obj in objects:
        x, y = obj.centroid
        r = min(int(np.searchsorted(rows, y, side="right")) - 1, size - 1)
        c = min(int(np.searchsorted(cols, x, side="right")) - 1, size - 1)
        counts[r, c] += 1
    return counts / counts.sum() if counts.sum() else counts


def _draw_fine_grid(canvas: np.ndarray, mask: ChangeMask, verification: Verification, size: int) -> None:
    height, width = canvas.shape[:2]
    shares = fine_grid_shares(mask, verification, size)
    rows = np.arange(size + 1) * height // size
    cols = np.arange(size + 1) * width // size
    for i in range(1, size):
        cv2.line(canvas, (0, int(rows[i])), (width - 1, int(rows[i])), FINE_GRID_LINE, 1)
        cv2.line(canvas, (int(cols[i]), 0), (int(cols[i]), height - 1), FINE_GRID_LINE, 1)
    scale = 0.42 * _text_factor(width)
    for r in range(size):
        for c in range(size):
            if shares[r, c] >= 0.005:
                org = (int(cols[c]) + 4, int(rows[r + 1]) - 6)
                _text(canvas, f"{shares[r, c]:.0%}" if shares[r, c] >= 0.01 else "<1%", org, scale)


def render_overlay(
    pair: ImagePair, mask: ChangeMask, verification: Verification, alpha: float = 0.45, fine_grid: int = 0
) -> np.ndarray:
    """RGB uint8 picture: t2, tinted change, grid, changed cells outlined, and a legend strip."""
    canvas = draw_changes(pair.t2, mask, verification, alpha, fine_grid)
    return np.vstack([canvas, _legend(canvas.shape[1], mask, verification, fine_grid)])


def legend_entries(mask: ChangeMask, verification: Verification, fine_grid: int = 0) -> list[tuple[str, str, RGB]]:
    """(kind, label, RGB colour) of each mark on the overlay: ``fill`` tints, ``outline`` boxes, ``line`` grids.

    One list for the picture's legend strip and the page's HTML legend, so both always say the same.
    """
    threshold = verification.summary.settings.cell_threshold
    if verification.summary.categorical:
        entries = [
            ("fill", "road change", TINTS[ChangeClass.ROAD]),
            ("fill", "building change", TINTS[ChangeClass.BUILDING]),
        ]
    else:
        entries = [("fill", "change (no category)", TINTS[ChangeClass.CHANGE])]
    if fine_grid > 3:
        entries.append(("line", f"{fine_grid}×{fine_grid} grid: % = share of the changed objects", FINE_GRID_LINE))
    else:
        entries.append(("outline", f"changed 3×3 cell (over {threshold:.0%} of its pixels)", CELL_OUTLINE))
    if mask.valid is not None:
        entries.append(("fill", f"no data ({1 - verification.valid_fraction:.0%} of the pair)", NO_DATA))
    return entries


def _legend(width: int, mask: ChangeMask, verification: Verification, fine_grid: int = 0) -> np.ndarray:
    """A strip under the picture; text grows with the picture so it stays readable when shown scaled down."""
    k = _text_factor(width)
    line, box, margin = round(22 * k), round(14 * k), round(8 * k)
    placed = []  # entries laid out left to right, wrapping onto a new row when the picture is too narrow
    x, y = margin, round(19 * k)
    for kind, label, colour in legend_entries(mask, verification, fine_grid):
        advance = box + round((16 + 9 * len(label)) * k)
        if x > margin and x + advance > width:
            x, y = margin, y + line
        placed.append((x, y, kind, label, colour))
        x += advance
    strip = np.full((y + line + margin, width, 3), 32, dtype=np.uint8)
    for x, y, kind, label, colour in placed:
        thickness = -1 if kind == "fill" else max(1, round(2 * k))
        cv2.rectangle(strip, (x, y - box + 1), (x + box, y + 1), colour, thickness)
        _text(strip, label, (x + box + round(6 * k), y), 0.45 * k, outline=False)
    source = mask.source
    note = f"mask: {source.provider} ({source.kind}), confidence {source.confidence:.2f}"
    _text(strip, note, (margin, strip.shape[0] - margin), 0.42 * k, outline=False)
    return strip


def _text_factor(width: int) -> float:
    """Text and strokes scale with the picture's width, so a 2,000-px overlay shown at 600 px stays legible."""
    return max(1.0, width / 700)


def render_comparison(pair: ImagePair) -> np.ndarray:
    """Before | after, side by side with labels, at the overlay's scale."""
    panels = []
    for label, image in (("before (t1)", pair.t1), ("after (t2)", pair.t2)):
        panel = enlarged(image)
        _text(panel, label, (8, 24), 0.7)
        panels.append(panel)
    gap = np.full((panels[0].shape[0], 6, 3), 255, dtype=np.uint8)
    return np.hstack([panels[0], gap, panels[1]])


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write an RGB image as PNG (OpenCV wants BGR); a path that is a folder or not a ``.png`` is refused first."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"overlay {path} is a folder; name a .png file for the overlay picture")
    if path.suffix.lower() != ".png":
        suffix = path.suffix or "no suffix"
        raise InputError(f"overlay {path} must end in .png: the overlay is a PNG picture (got {suffix})")
    with replacing(path) as temporary:
        if not cv2.imwrite(str(temporary), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise OSError("OpenCV could not encode or write the PNG (is the disk full?)")
    return path
