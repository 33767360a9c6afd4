"""Change per region of the image: cells, rows, columns, halves, and the whole, with objects and areas.

A question about "the south-west" or "the top half" is answered from the pixels of that region, not from the
whole image. Regions are fixed pixel boxes: the 3×3 cells of the ChangeChat grid (``deltavlm.rules.grid_bounds``),
the grid's rows and columns, and the image's halves split at ``H // 2`` and ``W // 2``. A region *changed* by the
paper's grid rule: strictly more than ``cell_threshold`` (5 %) of its pixels changed. An object belongs to the
region that holds its centroid, so objects are never counted twice. The image is taken as north-up.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import BaseModel, Field

from deltavlm.rules import CATEGORIES, CELL_IDS, RuleSettings, cell_is_changed, change_mask, find_objects, grid_bounds

ROWS = {"top": ("TL", "TC", "TR"), "middle": ("CL", "CC", "CR"), "bottom": ("BL", "BC", "BR")}
COLUMNS = {"left": ("TL", "CL", "BL"), "center": ("TC", "CC", "BC"), "right": ("TR", "CR", "BR")}
HALVES = ("top", "bottom", "left", "right")
REGION_KEYS: tuple[str, ...] = (
    "image",
    *CELL_IDS,
    *(f"row:{r}" for r in ROWS),
    *(f"col:{c}" for c in COLUMNS),
    *(f"half:{h}" for h in HALVES),
)
"""Every region a question can name; ``cells:TL+TC`` names a union of cells."""


class RegionStats(BaseModel):
    """What changed inside one region."""

    pixels: int
    changed_pixels: int
    fraction: float = Field(description="Changed pixels over the region's pixels.")
    category_fractions: dict[str, float]
    objects: int = Field(description="Changed objects whose centroid lies in the region (all change).")
    category_objects: dict[str, int]
    changed: bool = Field(description="The grid rule: strictly more than cell_threshold of the region changed.")
    area_m2: float | None = Field(None, description="Changed ground area, when the pixel size is known.")
    category_area_m2: dict[str, float] | None = None
    region_area_m2: float | None = None


class LargestObject(BaseModel):
    """The largest counted object of a kind of change: what "the largest one" refers to after a count."""

    pixels: int
    cell: str = Field(description="The 3×3 cell holding its centroid (the rule that counts objects per cell).")
    area_m2: float | None = Field(None, description="Its ground area, when the pixel size is known.")


class RegionSummary(BaseModel):
    regions: dict[str, RegionStats]
    largest: dict[str, LargestObject] = Field(
        default_factory=dict, description="The largest counted object of all change ('any') and of each category."
    )
    top_cells: list[str] = Field(description="Cells by changed fraction, most first (cells with change only).")
    object_share: dict[str, float] = Field(description="Share of all changed objects per cell (centroids).")
    clusters: list[list[str]] = Field(description="Groups of edge-adjacent changed cells, largest first.")
    threshold: float = Field(description="The grid rule's threshold (RuleSettings.cell_threshold).")


def region_boxes(height: int, width: int) -> dict[str, tuple[int, int, int, int]]:
    """Half-open pixel boxes ``(row0, row1, col0, col1)`` of every named region."""
    cells = grid_bounds(height, width)
    boxes: dict[str, tuple[int, int, int, int]] = {"image": (0, height, 0, width), **cells}
    for name, ids in ROWS.items():
        boxes[f"row:{name}"] = (cells[ids[0]][0], cells[ids[0]][1], 0, width)
    for name, ids in COLUMNS.items():
        boxes[f"col:{name}"] = (0, height, cells[ids[0]][2], cells[ids[0]][3])
    mid_r, mid_c = height // 2, width // 2
    boxes.update(
        {
            "half:top": (0, mid_r, 0, width),
            "half:bottom": (mid_r, height, 0, width),
            "half:left": (0, height, 0, mid_c),
            "half:right": (0, height, mid_c, width),
        }
    )
    return boxes


def _clusters(cells: list[str]) -> list[list[str]]:
    """Edge-adjacent groups of changed cells (4-neighbours on the 3×3 grid)."""
    left = set(cells)
    groups: list[list[str]] = []
    while left:
        stack, group = [min(left, key=CELL_IDS.index)], []
        left.discard(stack[0])
        while stack:
            cell = stack.pop()
            group.append(cell)
            i = CELL_IDS.index(cell)
            for j in (i - 3, i + 3, i - 1 if i % 3 else -1, i + 1 if i % 3 < 2 else -1):
                if 0 <= j < 9 and CELL_IDS[j] in left:
                    left.discard(CELL_IDS[j])
                    stack.append(CELL_IDS[j])
        groups.append([c for c in CELL_IDS if c in group])
    return sorted(groups, key=len, reverse=True)


def _inside(box: tuple[int, int, int, int], x: float, y: float) -> bool:
    r0, r1, c0, c1 = box
    return r0 <= y < r1 and c0 <= x < c1


def summarize_regions(
    class_mask: np.ndarray, settings: RuleSettings | None = None, row_area_m2: np.ndarray | None = None
) -> RegionSummary:
    """Per-region change of a class mask; ``row_area_m2`` (one value per row) gives ground areas."""
    settings = settings or RuleSettings()
    height, width = class_mask.shape
    boxes = region_boxes(height, width)
    masks = {"any": change_mask(class_mask), **{c: change_mask(class_mask, c) for c in CATEGORIES}}
    found = {key: find_objects(m, key, settings) for key, m in masks.items()}
    centroids = {key: np.array([o.centroid for o in objs] or np.zeros((0, 2))) for key, objs in found.items()}
    largest = {}
    for key, objs in found.items():
        if objs:
            big = max(objs, key=lambda o: o.pixels)
            x, y = big.centroid
            cell = next(c for c in CELL_IDS if _inside(boxes[c], x, y))
            area = float(big.pixels * row_area_m2[min(int(y), height - 1)]) if row_area_m2 is not None else None
            largest[key] = LargestObject(pixels=big.pixels, cell=cell, area_m2=area)
    # Integral images: every box's changed pixels (and per-row changed counts for areas) in O(1) per box.
    integral = {key: cv2.integral(m.view(np.uint8)) for key, m in masks.items()}
    row_cumsum = (
        {key: np.cumsum(m, axis=1, dtype=np.int64) for key, m in masks.items()} if row_area_m2 is not None else {}
    )
    regions: dict[str, RegionStats] = {}
    for name, (r0, r1, c0, c1) in boxes.items():
        pixels = (r1 - r0) * (c1 - c0)
        counts = {key: int(ii[r1, c1] - ii[r0, c1] - ii[r1, c0] + ii[r0, c0]) for key, ii in integral.items()}
        objects = {
            key: int(np.count_nonzero((xy[:, 1] >= r0) & (xy[:, 1] < r1) & (xy[:, 0] >= c0) & (xy[:, 0] < c1)))
            for key, xy in centroids.items()
        }
        areas: dict[str, float] | None = None
        if row_area_m2 is not None:
            areas = {}
            for key, cs in row_cumsum.items():
                in_rows = cs[r0:r1, c1 - 1] - (cs[r0:r1, c0 - 1] if c0 else 0)
                areas[key] = float(in_rows @ row_area_m2[r0:r1])
        regions[name] = RegionStats(
            pixels=pixels,
            changed_pixels=counts["any"],
            fraction=counts["any"] / pixels,
            category_fractions={c: counts[c] / pixels for c in CATEGORIES},
            objects=objects["any"],
            category_objects={c: objects[c] for c in CATEGORIES},
            changed=cell_is_changed(counts["any"], pixels, settings.cell_threshold),
            area_m2=areas["any"] if areas else None,
            category_area_m2={c: areas[c] for c in CATEGORIES} if areas else None,
            region_area_m2=float(row_area_m2[r0:r1].sum() * (c1 - c0)) if row_area_m2 is not None else None,
        )
    total_objects = max(regions["image"].objects, 1)
    changed_cells = [c for c in CELL_IDS if regions[c].changed]
    return RegionSummary(
        regions=regions,
        largest=largest,
        top_cells=sorted((c for c in CELL_IDS if regions[c].changed_pixels), key=lambda c: -regions[c].fraction),
        object_share={c: regions[c].objects / total_objects for c in CELL_IDS},
        clusters=_clusters(changed_cells),
        threshold=settings.cell_threshold,
    )


def union_stats(summary: RegionSummary, cells: list[str], threshold: float) -> RegionStats:
    """The stats of a union of cells (``cells:TL+TC``), from the cells' own stats."""
    parts = [summary.regions[c] for c in cells]
    pixels = sum(p.pixels for p in parts)
    changed = sum(p.changed_pixels for p in parts)
    area = [p.area_m2 for p in parts]
    return RegionStats(
        pixels=pixels,
        changed_pixels=changed,
        fraction=changed / pixels,
        category_fractions={c: sum(p.category_fractions[c] * p.pixels for p in parts) / pixels for c in CATEGORIES},
        objects=sum(p.objects for p in parts),
        category_objects={c: sum(p.category_objects[c] for p in parts) for c in CATEGORIES},
        changed=cell_is_changed(changed, pixels, threshold),
        area_m2=sum(a for a in area if a is not None) if all(a is not None for a in area) else None,
        category_area_m2={c: sum((p.category_area_m2 or {}).get(c, 0.0) for p in parts) for c in CATEGORIES}
        if all(a is not None for a in area)
        else None,
        region_area_m2=sum(p.region_area_m2 or 0.0 for p in parts) if all(a is not None for a in area) else None,
    )
