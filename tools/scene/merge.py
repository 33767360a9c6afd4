"""Scene-level rules on the merged mask, read back in strips, without double counting.

:func:`analyse_mask` reads the merged mask back in horizontal strips and applies the ChangeChat rules
at scene level without double counting. An object of the rules is an external contour
(``cv2.RETR_EXTERNAL``) of an 8-connected component whose filled contour covers at least
``min_object_pixels``. Strips are labelled with OpenCV (foreground 8-connected, background
4-connected, as Suzuki–Abe contour tracing sees them) and labels are joined across strip borders with
a union-find, so an object cut by tile or strip borders is one object. A component is external when the
background just left of its first pixel (in raster order) belongs to a background region that touches
the scene's border; otherwise it sits in another object's hole and ``RETR_EXTERNAL`` would not see it.
Components smaller than ``min_object_pixels`` are decided by ``deltavlm.rules.find_objects`` itself on
their isolated crop (its filled-contour size), so the count equals ``rules.summarize`` on the whole mask
(tested). 3×3 cells and per-tile fractions come from per-block pixel counts and
``rules.cell_is_changed``; pixels stored as ``NO_DATA`` (a date holds no data there) are left out of every
count, and a cell with too little valid data is "no data" (``rules.cell_has_data``), as in ``rules.summarize``.

Object outlines are polygonised per strip (``rasterio.features.shapes``) and the pieces of one object are
joined with shapely's ``unary_union``.


Memory is bounded by one tile row of the mask, one strip (about 8 M px) of labels, and the objects' outlines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import rasterio
import rasterio.features
import shapely
from affine import Affine
from pydantic import BaseModel, ConfigDict, Field
from shapely.geometry.base import BaseGeometry

from deltavlm.rules import (
    CATEGORIES,
    CATEGORY_CLASS,
    CELL_IDS,
    ChangeClass,
    ChangeSummary,
    RuleSettings,
    cell_has_data,
    cell_is_changed,
    find_objects,
    grid_bounds,
)
from tools.scene.disk_mask import N_CLASSES, STRIP_PIXELS, DiskMask

# -------------------------------------------------------------------------------- merging: components


LAYERS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("change", (int(ChangeClass.ROAD), int(ChangeClass.BUILDING), int(ChangeClass.CHANGE))),
    ("road", (int(ChangeClass.ROAD),)),
    ("building", (int(ChangeClass.BUILDING),)),
)
"""The masks the rules count on: all change (``changed_regions``) and each named category."""


class _UnionFind:
    """Union-find over integer ids, grown as strips add labels (python list: few unions, many ids)."""

    def __init__(self) -> None:
        self.parent: list[int] = []

    def add(self, count: int) -> int:
        start = len(self.parent)
        self.parent.extend(range(start, start + count))
        return start

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union_pairs(self, pairs: np.ndarray) -> None:
        for a, b in np.unique(pairs, axis=0) if len(pairs) else ():
            ra, rb = self.find(int(a)), self.find(int(b))
            if ra != rb:
                self.parent[max(ra, rb)] = min(ra, rb)

    def roots(self) -> np.ndarray:
        parent = np.asarray(self.parent, dtype=np.int64)
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                return parent
            parent = grand


@dataclass
class _Layer:
    """Component tables of one mask layer (all change, road or building), over all strips."""

    name: str
    classes: tuple[int, ...]
    fg: _UnionFind = field(default_factory=_UnionFind)
    bg: _UnionFind = field(default_factory=_UnionFind)
    area: list[np.ndarray] = field(default_factory=list)
    box: list[np.ndarray] = field(default_factory=list)  # top, left, bottom, right (inclusive)
    sums: list[np.ndarray] = field(default_factory=list)  # sum of x, sum of y
    seed: list[np.ndarray] = field(default_factory=list)  # raster index of the first pixel
    left_bg: list[np.ndarray] = field(default_factory=list)  # bg id left of the seed, -1 = outside the scene
    bg_border: list[np.ndarray] = field(default_factory=list)
    pieces: list[tuple[int, BaseGeometry]] = field(default_factory=list)
    last_fg: np.ndarray | None = None
    last_bg: np.ndarray | None = None


def _label_strip(layer: _Layer, strip: np.ndarray, row0: int, height: int, width: int, polygons: bool) -> None:
    fg = np.isin(strip, layer.classes).astype(np.uint8)
    rows = strip.shape[0]
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(fg, connectivity=8, ltype=cv2.CV_32S)
    first_fg = layer.fg.add(n - 1)
    if n > 1:
        s = stats[1:]
        top = s[:, cv2.CC_STAT_TOP].astype(np.int64) + row0
        left = s[:, cv2.CC_STAT_LEFT].astype(np.int64)
        area = s[:, cv2.CC_STAT_AREA].astype(np.int64)
        layer.area.append(area)
        layer.box.append(
            np.stack([top, left, top + s[:, cv2.CC_STAT_HEIGHT] - 1, left + s[:, cv2.CC_STAT_WIDTH] - 1], axis=1)
        )
        layer.sums.append(np.stack([centroids[1:, 0] * area, (centroids[1:, 1] + row0) * area], axis=1))
        flat = np.flatnonzero(fg)
        _, first = np.unique(labels.ravel()[flat], return_index=True)
        seed_local = flat[first]
        seed_row, seed_col = np.divmod(seed_local, width)
        layer.seed.append((seed_row + row0) * width + seed_col)
    nb, bg_labels, bg_stats, _ = cv2.connectedComponentsWithStats(1 - fg, connectivity=4, ltype=cv2.CV_32S)
    first_bg = layer.bg.add(nb - 1)
    if nb > 1:
        b = bg_stats[1:]
        touches = (b[:, cv2.CC_STAT_LEFT] == 0) | (b[:, cv2.CC_STAT_LEFT] + b[:, cv2.CC_STAT_WIDTH] == width)
        if row0 == 0:
            touches |= b[:, cv2.CC_STAT_TOP] == 0
        if row0 + rows == height:
            touches |= b[:, cv2.CC_STAT_TOP] + b[:, cv2.CC_STAT_HEIGHT] == rows
        layer.bg_border.append(touches)
    if n > 1:
        left_of_seed = np.full(n - 1, -1, dtype=np.int64)
        inside = seed_col > 0
        left_of_seed[inside] = bg_labels[seed_row[inside], seed_col[inside] - 1].astype(np.int64) - 1 + first_bg
        layer.left_bg.append(left_of_seed)

    def ids(row: np.ndarray, first: int) -> np.ndarray:  # global ids of one row, -1 where not in that layer
        return np.where(row > 0, row.astype(np.int64) - 1 + first, -1)

    if layer.last_fg is not None and layer.last_bg is not None:
        above, below = layer.last_fg, ids(labels[0], first_fg)
        pairs = []
        for shift in (-1, 0, 1):  # 8-connected across the strip border
            a = above[max(0, shift) : width + min(0, shift)]
            c = below[max(0, -shift) : width - max(0, shift)]
            joined = (a >= 0) & (c >= 0)
            pairs.append(np.stack([a[joined], c[joined]], axis=1))
        layer.fg.union_pairs(np.concatenate(pairs))
        a, c = layer.last_bg, ids(bg_labels[0], first_bg)
        joined = (a >= 0) & (c >= 0)  # 4-connected
        layer.bg.union_pairs(np.stack([a[joined], c[joined]], axis=1))
    layer.last_fg, layer.last_bg = ids(labels[-1], first_fg), ids(bg_labels[-1], first_bg)
    if polygons and n > 1:
        shifted = Affine.translation(0, row0)
        for geom, value in rasterio.features.shapes(labels, mask=fg.astype(bool), connectivity=8, transform=shifted):
            layer.pieces.append((int(value) - 1 + first_fg, shapely.geometry.shape(geom)))


@dataclass
class SceneObject:
    """One counted object of the scene (pixel coordinates)."""

    category: str
    pixels: int
    bbox: tuple[int, int, int, int]
    centroid: tuple[float, float]
    geometry: BaseGeometry | None = None


def _isolated_objects(mask: DiskMask, layer: _Layer, bbox: np.ndarray, seed: int, settings: RuleSettings) -> int:
    """``rules.find_objects`` on one small component alone: does its filled contour reach the size rule?"""
    top, left, bottom, right = (int(v) for v in bbox)
    r0, c0 = max(0, top - 1), max(0, left - 1)
    r1, c1 = min(mask.height, bottom + 2), min(mask.width, right + 2)
    crop = np.isin(mask.read_window(r0, r1, c0, c1), layer.classes).astype(np.uint8)
    _, labels = cv2.connectedComponents(crop, connectivity=8)
    seed_row, seed_col = divmod(seed, mask.width)
    own = labels == labels[seed_row - r0, seed_col - c0]
    return len(find_objects(own, layer.name, settings))


def _resolve(layer: _Layer, mask: DiskMask, settings: RuleSettings) -> list[SceneObject]:
    """Join strip components into scene objects and keep those the rules count."""
    if not layer.area:
        return []
    fg_root = layer.fg.roots()
    bg_root = layer.bg.roots()
    bg_touch = np.zeros(len(bg_root), dtype=bool)
    if layer.bg_border:
        np.logical_or.at(bg_touch, bg_root, np.concatenate(layer.bg_border))
    area = np.concatenate(layer.area)
    boxes = np.concatenate(layer.box)
    sums = np.concatenate(layer.sums)
    seeds = np.concatenate(layer.seed)
    left_bg = np.concatenate(layer.left_bg)
    roots, group = np.unique(fg_root, return_inverse=True)
    count = len(roots)
    total = np.bincount(group, weights=area, minlength=count).astype(np.int64)
    top = np.full(count, np.iinfo(np.int64).max)
    left = top.copy()
    bottom = np.full(count, -1, dtype=np.int64)
    right = bottom.copy()
    np.minimum.at(top, group, boxes[:, 0])
    np.minimum.at(left, group, boxes[:, 1])
    np.maximum.at(bottom, group, boxes[:, 2])
    np.maximum.at(right, group, boxes[:, 3])
    sum_x = np.bincount(group, weights=sums[:, 0], minlength=count)
    sum_y = np.bincount(group, weights=sums[:, 1], minlength=count)
    order = np.lexsort((seeds, group))  # by group, then seed: the first of each group is its raster-first part
    starts = np.r_[0, np.flatnonzero(np.diff(group[order])) + 1]
    first_part = order[starts]
    seed = seeds[first_part]
    outside = left_bg[first_part]
    external = (outside < 0) | bg_touch[bg_root[np.maximum(outside, 0)]]
    geometries: dict[int, list[BaseGeometry]] = {}
    for part, geom in layer.pieces:
        geometries.setdefault(int(np.searchsorted(roots, fg_root[part])), []).append(geom)
    objects = []
    for i in np.flatnonzero(external):
        bbox = np.array([top[i], left[i], bottom[i], right[i]])
        if total[i] < settings.min_object_pixels and not _isolated_objects(mask, layer, bbox, int(seed[i]), settings):
            continue
        geometry = None
        if i in geometries:
            geometry = shapely.union_all([shapely.make_valid(g) for g in geometries[i]])
        objects.append(
            SceneObject(
                category=layer.name,
                pixels=int(total[i]),
                bbox=(int(left[i]), int(top[i]), int(right[i] - left[i] + 1), int(bottom[i] - top[i] + 1)),
                centroid=(float(sum_x[i] / total[i]), float(sum_y[i] / total[i])),
                geometry=geometry,
            )
        )
    objects.sort(key=lambda o: (o.bbox[1], o.bbox[0]))
    return objects


class MaskAnalysis(BaseModel):
    """The rules at scene level, with what the merge needed to be exact."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    height: int
    width: int
    summary: ChangeSummary
    cell_class_pixels: dict[str, list[int]]
    objects: dict[str, list[Any]] = Field(description="SceneObject lists per layer: change, road, building.")


def analyse_mask(
    mask: DiskMask,
    settings: RuleSettings | None = None,
    *,
    polygons: bool = True,
    strip_rows: int | None = None,
    class_pixels: Sequence[int] | None = None,
) -> MaskAnalysis:
    """Apply the ChangeChat rules to a disk-backed class mask, strip by strip (see the module docstring)."""
    settings = settings or RuleSettings()
    height, width = mask.height, mask.width
    rows = strip_rows or max(64, STRIP_PIXELS // max(1, width))
    bounds = grid_bounds(height, width)
    cell_pixels = {cell: np.zeros(N_CLASSES, dtype=np.int64) for cell in CELL_IDS}
    # a class absent from the scene (known from the tiles' pixel counts) has no objects: skip its layer
    present = set(range(N_CLASSES)) if class_pixels is None else {i for i, n in enumerate(class_pixels) if n}
    layers = [_Layer(name, classes) for name, classes in LAYERS if present & set(classes)]
    # outlines as the GeoJSON shows them: per category for categorical masks, else all change
    if class_pixels is None:
        outline = {name for name, _ in LAYERS}
    else:
        outline = {"change"} if int(ChangeClass.CHANGE) in present else set(CATEGORIES)
    for row0, strip in mask.strips(rows):
        row1 = row0 + strip.shape[0]
        for cell, (r0, r1, c0, c1) in bounds.items():
            lo, hi = max(r0, row0), min(r1, row1)
            if lo < hi:
                block = strip[lo - row0 : hi - row0, c0:c1]
                cell_pixels[cell] += np.bincount(block.ravel(), minlength=N_CLASSES)[:N_CLASSES]
        for layer in layers:
            _label_strip(layer, strip, row0, height, width, polygons and layer.name in outline)
    objects = {name: [] for name, _ in LAYERS}
    for layer in layers:
        objects[layer.name] = _resolve(layer, mask, settings)
    total_pixels = height * width
    class_totals = sum(cell_pixels.values())
    valid_pixels = int(class_totals.sum())
    if valid_pixels == 0:
        raise ValueError("no pixel of the scene holds valid data in both dates; the rules have nothing to judge")
    changed_pixels = int(class_totals[1:].sum())
    area = {cell: (r1 - r0) * (c1 - c0) for cell, (r0, r1, c0, c1) in bounds.items()}
    no_data = [
        cell
        for cell, p in cell_pixels.items()
        if not cell_has_data(int(p.sum()), area[cell], settings.min_valid_cell_fraction)
    ]

    def fractions(classes: tuple[int, ...]) -> dict[str, float]:
        return {
            cell: int(sum(p[c] for c in classes)) / int(p.sum()) if p.sum() else 0.0 for cell, p in cell_pixels.items()
        }

    def cells(classes: tuple[int, ...]) -> list[str]:
        return [
            cell
            for cell, p in cell_pixels.items()
            if cell not in no_data
            and cell_is_changed(int(sum(p[c] for c in classes)), int(p.sum()), settings.cell_threshold)
        ]

    every = LAYERS[0][1]
    summary = ChangeSummary(
        changed=changed_pixels > 0,
        changed_pixels=changed_pixels,
        total_pixels=total_pixels,
        changed_fraction=changed_pixels / valid_pixels,
        categorical=int(class_totals[int(ChangeClass.CHANGE)]) == 0,
        counts={name: len(objects[name]) for name in CATEGORIES},
        changed_regions=len(objects["change"]),
        category_fractions={name: int(class_totals[int(CATEGORY_CLASS[name])]) / valid_pixels for name in CATEGORIES},
        cells=cells(every),
        category_cells={name: cells((int(CATEGORY_CLASS[name]),)) for name in CATEGORIES},
        cell_fractions=fractions(every),
        category_cell_fractions={name: fractions((int(CATEGORY_CLASS[name]),)) for name in CATEGORIES},
        settings=settings,
        valid_pixels=valid_pixels,
        valid_fraction=valid_pixels / total_pixels,
        no_data_cells=no_data,
    )
    return MaskAnalysis(
        height=height,
        width=width,
        summary=summary,
        cell_class_pixels={cell: p.tolist() for cell, p in cell_pixels.items()},
        objects=objects,
    )


def summary_of_array(class_mask: np.ndarray, settings: RuleSettings | None = None, **kwargs: Any) -> MaskAnalysis:
    """The scene merge applied to an in-memory mask (tests compare it with ``rules.summarize``)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        disk = DiskMask(Path(folder) / "mask.u8", *class_mask.shape)
        try:
            disk.write_rows(0, class_mask.astype(np.uint8))
            return analyse_mask(disk, settings, **kwargs)
        finally:
            disk.unlink()
