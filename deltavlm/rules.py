"""The ChangeChat labelling rules (DeltaVLM paper §3.2–3.4), implemented once.

The dataset builder derives its binary, count and grid answers from these functions, and the
verifiers in ``tools/`` check the model with the very same functions, so a verifier can never
disagree with the labels the model was trained on because of a second implementation.

Conventions, stated once:

* A *class mask* is an ``H×W`` ``uint8`` array of :class:`ChangeClass` indices. ``CHANGE`` marks
  pixels known to have changed whose category is unknown (binary masks, classical detectors).
* Objects are the external contours of a category's mask (``cv2.RETR_EXTERNAL``; OpenCV traces
  borders with 8-connectivity, so pixels touching at a corner belong to one object). External
  contours count a building with a courtyard once, and a contour's size is the number of pixels
  its filled outline covers. Contours covering fewer than ``min_object_pixels`` pixels are noise.
* The 3×3 grid splits rows and columns at ``floor(i·H/3)``; when a side is not divisible by 3 the
  last row/column of cells is one or two pixels larger. A cell is changed when strictly more than
  ``cell_threshold`` (5 %) of its pixels changed, compared in exact integer arithmetic so that
  exactly 5 % is *not* changed.
* A pair has changed when its class mask has any changed pixel.
* *Valid data*: when a valid-data mask is given (where both dates hold data), the rules look at the valid
  part only. Fractions are of valid pixels; a cell with valid data on less than ``min_valid_cell_fraction``
  of its pixels is *no data* (listed in ``no_data_cells``, never changed, never unchanged); without a
  valid-data mask every pixel is valid and nothing differs from the rules above.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from fractions import Fraction
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

CATEGORIES: tuple[str, ...] = ("road", "building")
"""Named change categories of LEVIR-MCI / ChangeChat, roads first as in the release's answers."""

CELL_IDS: tuple[str, ...] = ("TL", "TC", "TR", "CL", "CC", "CR", "BL", "BC", "BR")
"""The 3×3 grid cells, row-major."""

CELL_NAMES: dict[str, str] = {
    "TL": "top-left",
    "TC": "top-center",
    "TR": "top-right",
    "CL": "center-left",
    "CC": "center-center",
    "CR": "center-right",
    "BL": "bottom-left",
    "BC": "bottom-center",
    "BR": "bottom-right",
}
"""Cell ids and the names the ChangeChat release uses in its localisation answers."""


class ChangeClass(IntEnum):
    """Per-pixel class index of a class mask."""

    BACKGROUND = 0
    ROAD = 1
    BUILDING = 2
    CHANGE = 3  # changed, category unknown


CATEGORY_CLASS: dict[str, ChangeClass] = {"road": ChangeClass.ROAD, "building": ChangeClass.BUILDING}

LEVIR_MCI_LABEL_VALUES: dict[int, ChangeClass] = {
    0: ChangeClass.BACKGROUND,
    128: ChangeClass.ROAD,
    255: ChangeClass.BUILDING,
}
"""LEVIR-MCI label PNGs (first channel): 0 no change, 128 road change, 255 building change."""


class RuleSettings(BaseModel):
    """Thresholds of the rules; the defaults are the paper's."""

    model_config = ConfigDict(frozen=True)

    cell_threshold: float = Field(0.05, ge=0.0, lt=1.0, description="A cell changes above this fraction.")
    min_object_pixels: int = Field(
        8, ge=1, description="Contours covering fewer pixels are noise (8 px = 2 m² at 0.5 m/px)."
    )
    min_valid_cell_fraction: float = Field(
        0.5, gt=0.0, le=1.0, description="A cell with valid data on less than this share of it is 'no data'."
    )


class ChangeObject(BaseModel):
    """One changed object: an external contour of a category mask, in pixel coordinates."""

    category: str
    pixels: int = Field(description="Pixels covered by the filled contour.")
    bbox: tuple[int, int, int, int] = Field(description="x, y, width, height in pixels.")
    centroid: tuple[float, float] = Field(description="x, y in pixels (column, row).")
    contour: list[tuple[int, int]] = Field(description="Outline vertices as (x, y) pixel centres.")


SizeClass = Literal["none", "very_small", "small", "moderate", "large"]
SIZE_SCALE: tuple[tuple[float, SizeClass], ...] = ((0.01, "very_small"), (0.05, "small"), (0.20, "moderate"))
"""How big a change is, by the share of the region that changed: under 1 % very small, under 5 % small (the grid
rule's threshold), under 20 % moderate, else large; no changed pixel is none. The one scale every answer uses."""


def size_class(fraction: float) -> SizeClass:
    """The size of a change of ``fraction`` of a region on :data:`SIZE_SCALE`."""
    if fraction <= 0:
        return "none"
    return next((name for bound, name in SIZE_SCALE if fraction < bound), "large")


class ChangeSummary(BaseModel):
    """Everything the rules say about one class mask."""

    changed: bool
    changed_pixels: int
    total_pixels: int
    changed_fraction: float
    categorical: bool = Field(description="False when some changed pixels have no category.")
    counts: dict[str, int] = Field(description="Objects per category (named categories only).")
    changed_regions: int = Field(description="Objects over all change, categories merged.")
    category_fractions: dict[str, float]
    cells: list[str] = Field(description="Changed cells over all change, in CELL_IDS order.")
    category_cells: dict[str, list[str]]
    cell_fractions: dict[str, float] = Field(description="Changed fraction of each cell's valid pixels, all change.")
    category_cell_fractions: dict[str, dict[str, float]]
    settings: RuleSettings
    valid_pixels: int | None = Field(None, description="Pixels where both dates hold data (None: all, not stated).")
    valid_fraction: float = Field(1.0, description="Share of the image where both dates hold data.")
    no_data_cells: list[str] = Field(
        default_factory=list, description="Cells with too little valid data to say changed or unchanged."
    )

    @field_validator("cells")
    @classmethod
    def _cells_in_order(cls, cells: list[str]) -> list[str]:
        return [c for c in CELL_IDS if c in cells]


def classes_from_label_values(label: np.ndarray, values: Mapping[int, ChangeClass]) -> np.ndarray:
    """Map raw label pixel values to class indices; unknown values raise ``ValueError``.

    Unknown values are refused rather than dropped: a mask read with the wrong convention would
    otherwise silently lose its changes.
    """
    if label.ndim == 3:
        label = label[..., 0]
    present = np.unique(label)
    unknown = sorted(int(v) for v in present if int(v) not in values)
    if unknown:
        known = ", ".join(f"{k}={v.name.lower()}" for k, v in sorted(values.items()))
        raise ValueError(f"label values {unknown[:10]} are not in the convention ({known})")
    lut = np.zeros(256, dtype=np.uint8)
    for raw, cls in values.items():
        lut[raw] = int(cls)
    return lut[label.astype(np.uint8)]


def change_mask(class_mask: np.ndarray, category: str | None = None) -> np.ndarray:
    """Boolean mask of all change (``category=None``) or of one named category."""
    if category is None:
        return class_mask != ChangeClass.BACKGROUND
    if category not in CATEGORY_CLASS:
        raise ValueError(f"unknown category {category!r}; expected one of {CATEGORIES}")
    return class_mask == CATEGORY_CLASS[category]


def is_categorical(class_mask: np.ndarray) -> bool:
    """True when every changed pixel carries a named category."""
    return not bool(np.any(class_mask == ChangeClass.CHANGE))


def find_objects(mask: np.ndarray, category: str, settings: RuleSettings | None = None) -> list[ChangeObject]:
    """External contours of ``mask`` that cover at least ``min_object_pixels`` pixels."""
    settings = settings or RuleSettings()
    binary = np.ascontiguousarray(mask, dtype=np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    objects: list[ChangeObject] = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        filled = np.zeros((h, w), dtype=np.uint8)
        cv2.drawContours(filled, [contour - np.array([x, y])], -1, 1, thickness=cv2.FILLED)
        pixels = int(filled.sum())
        if pixels < settings.min_object_pixels:
            continue
        rows, cols = np.nonzero(filled)
        objects.append(
            ChangeObject(
                category=category,
                pixels=pixels,
                bbox=(x, y, w, h),
                centroid=(float(cols.mean() + x), float(rows.mean() + y)),
                contour=[(int(px), int(py)) for px, py in contour.reshape(-1, 2)],
            )
        )
    objects.sort(key=lambda o: (o.bbox[1], o.bbox[0]))
    return objects


def count_objects(mask: np.ndarray, settings: RuleSettings | None = None) -> int:
    """Number of objects in a boolean mask by the counting rule."""
    return len(find_objects(mask, "change", settings))


def grid_bounds(height: int, width: int) -> dict[str, tuple[int, int, int, int]]:
    """Pixel bounds ``(row0, row1, col0, col1)`` of each cell, half-open."""
    if height < 3 or width < 3:
        raise ValueError(f"a {height}×{width} map is too small for a 3×3 grid")
    rows = [(i * height) // 3 for i in range(4)]
    cols = [(i * width) // 3 for i in range(4)]
    return {cell: (rows[i // 3], rows[i // 3 + 1], cols[i % 3], cols[i % 3 + 1]) for i, cell in enumerate(CELL_IDS)}


def cell_pixel_counts(mask: np.ndarray, valid: np.ndarray | None = None) -> dict[str, tuple[int, int]]:
    """``(changed pixels, valid cell pixels)`` per cell of a boolean mask (all cell pixels without ``valid``)."""
    counts = {}
    for cell, (r0, r1, c0, c1) in grid_bounds(*mask.shape[:2]).items():
        block = mask[r0:r1, c0:c1]
        if valid is None:
            counts[cell] = (int(np.count_nonzero(block)), int(block.size))
        else:
            inside = valid[r0:r1, c0:c1]
            counts[cell] = (int(np.count_nonzero(block & inside)), int(np.count_nonzero(inside)))
    return counts


def cell_has_data(valid: int, total: int, min_valid_fraction: float) -> bool:
    """A cell holds enough data to be judged when at least ``min_valid_fraction`` of it is valid (exact)."""
    return valid > 0 and Fraction(valid) >= Fraction(str(min_valid_fraction)) * total


def cell_is_changed(changed: int, total: int, threshold: float) -> bool:
    """Strictly more than ``threshold`` of the cell, in exact arithmetic (5 % exactly is unchanged)."""
    return Fraction(changed) > Fraction(str(threshold)) * total


def changed_cells(mask: np.ndarray, settings: RuleSettings | None = None, valid: np.ndarray | None = None) -> list[str]:
    """Cells of a boolean mask that changed by the > threshold rule (of their valid pixels), in CELL_IDS order."""
    settings = settings or RuleSettings()
    no_data = set(no_data_cells(valid, settings)) if valid is not None else set()
    return [
        cell
        for cell, (changed, total) in cell_pixel_counts(mask, valid).items()
        if cell not in no_data and cell_is_changed(changed, total, settings.cell_threshold)
    ]


def no_data_cells(valid: np.ndarray | None, settings: RuleSettings | None = None) -> list[str]:
    """Cells where too little of the image holds data to judge them (none without a valid-data mask)."""
    if valid is None:
        return []
    settings = settings or RuleSettings()
    bounds = grid_bounds(*valid.shape[:2])
    return [
        cell
        for cell, (r0, r1, c0, c1) in bounds.items()
        if not cell_has_data(
            int(np.count_nonzero(valid[r0:r1, c0:c1])), (r1 - r0) * (c1 - c0), settings.min_valid_cell_fraction
        )
    ]


def _cell_fractions(mask: np.ndarray, valid: np.ndarray | None = None) -> dict[str, float]:
    return {
        cell: changed / total if total else 0.0 for cell, (changed, total) in cell_pixel_counts(mask, valid).items()
    }


def summarize(
    class_mask: np.ndarray, settings: RuleSettings | None = None, valid: np.ndarray | None = None
) -> ChangeSummary:
    """Apply every rule to one class mask; with ``valid`` (H×W bool), to its valid part only."""
    settings = settings or RuleSettings()
    if class_mask.ndim != 2:
        raise ValueError(f"a class mask must be 2-D, got shape {class_mask.shape}")
    if class_mask.size and int(class_mask.max()) > max(ChangeClass):
        raise ValueError(f"class mask holds value {int(class_mask.max())}; classes are 0–{max(ChangeClass)}")
    if valid is not None:
        if valid.shape != class_mask.shape:
            raise ValueError(f"valid-data mask has shape {valid.shape}; the class mask has {class_mask.shape}")
        valid = valid.astype(bool, copy=False)
        if valid.all():
            valid = None
        else:
            class_mask = np.where(valid, class_mask, int(ChangeClass.BACKGROUND)).astype(np.uint8)
    valid_pixels = int(class_mask.size if valid is None else np.count_nonzero(valid))
    if valid_pixels == 0:
        raise ValueError("no pixel holds valid data in both dates; the rules have nothing to judge")
    any_change = change_mask(class_mask)
    changed_pixels = int(np.count_nonzero(any_change))
    per_category = {name: change_mask(class_mask, name) for name in CATEGORIES}
    return ChangeSummary(
        changed=changed_pixels > 0,
        changed_pixels=changed_pixels,
        total_pixels=int(class_mask.size),
        changed_fraction=changed_pixels / valid_pixels,
        categorical=is_categorical(class_mask),
        counts={name: len(find_objects(m, name, settings)) for name, m in per_category.items()},
        changed_regions=len(find_objects(any_change, "change", settings)),
        category_fractions={name: float(np.count_nonzero(m)) / valid_pixels for name, m in per_category.items()},
        cells=changed_cells(any_change, settings, valid),
        category_cells={name: changed_cells(m, settings, valid) for name, m in per_category.items()},
        cell_fractions=_cell_fractions(any_change, valid),
        category_cell_fractions={name: _cell_fractions(m, valid) for name, m in per_category.items()},
        settings=settings,
        valid_pixels=valid_pixels,
        valid_fraction=valid_pixels / class_mask.size,
        no_data_cells=no_data_cells(valid, settings),
    )
