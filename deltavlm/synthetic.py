"""Synthetic bi-temporal scenes with exact labels, for tests, demos and smoke training.

Real LEVIR-MCI data is research-only and cannot ship with the project, so tests and demos need pairs
whose labels are known by construction. A scene is laid out once (land cover, roads, buildings, trees)
and rendered twice: the second rendering adds the labelled changes (new buildings, demolished
buildings, new roads) and, independently, unlabelled pseudo-changes (season, sun, brightness, colour
temperature, haze, sensor noise) of the kind that make real no-change pairs differ. Registration is
exact, because a shift would be a change nobody labelled.

Pixel sizes follow LEVIR-CD's 0.5 m ground sampling: a house is 11–18 m, a road 5–8 m. A larger tile
shows more ground rather than bigger objects. Every changed object is kept at least 3 px away from
any other building, and each new road is checked to be one piece, so that the counting rule of
:mod:`deltavlm.rules` finds exactly the objects recorded in :attr:`SyntheticPair.changes`; a layout
that breaks this is thrown away and laid out again from the next sub-seed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import rasterio
from pydantic import BaseModel, ConfigDict
from rasterio.crs import CRS
from rasterio.transform import from_origin

from deltavlm import rules
from deltavlm.rules import CELL_NAMES, LEVIR_MCI_LABEL_VALUES, ChangeClass
from deltavlm.text import NO_CHANGE_CAPTIONS

MIN_SIZE = 64
"""Smallest tile side: below it a house and a road no longer both fit."""

GSD_M = 0.5
"""Ground sampling distance the object sizes assume (LEVIR-CD), metres per pixel."""

SPLITS: tuple[str, ...] = ("train", "val", "test")

EXAMPLE_CRS = "EPSG:32614"
"""UTM zone 14N: central Texas, where the LEVIR-CD scenes were taken."""

EXAMPLE_ORIGIN: tuple[float, float] = (620000.0, 3350000.0)
"""Upper-left corner (easting, northing) of the example GeoTIFFs, in metres."""

_MAX_ATTEMPTS = 40
_SHIFT = 4  # fixed-point bits for OpenCV drawing, so geometry is placed to 1/16 px
_ONE = 1 << _SHIFT

# Land-cover classes of the ground and their two colours (RGB, mixed per pixel by a pattern):
# (lush colour A, dry colour A) and (lush colour B, dry colour B); the season mixes lush → dry.
_GRASS, _DRY, _BARE, _FIELD = range(4)
_COVER_WEIGHTS = (0.32, 0.28, 0.28, 0.12)
_COVER_A = np.array(
    [
        [[86, 108, 56], [156, 144, 90]],
        [[138, 136, 92], [178, 162, 118]],
        [[206, 192, 166], [208, 192, 164]],
        [[74, 104, 48], [168, 148, 92]],
    ],
    dtype=np.float32,
)
_COVER_B = np.array(
    [
        [[112, 120, 72], [172, 156, 108]],
        [[170, 160, 124], [190, 176, 144]],
        [[178, 162, 134], [182, 164, 134]],
        [[148, 128, 98], [156, 134, 102]],
    ],
    dtype=np.float32,
)
_TREE = np.array([[46, 70, 36], [118, 100, 50]], dtype=np.float32)  # lush green → yellow-brown
_LAND_WORDS: dict[int, tuple[str, ...]] = {
    _GRASS: ("on the grassland", "on the meadow"),
    _DRY: ("on the bareland", "in the open space"),
    _BARE: ("on the bareland", "in the open space", "in the desert"),
    _FIELD: ("on the farmland", "in the fields"),
}

_ROOF_COLOURS = np.array(
    [
        [140, 140, 138],
        [96, 98, 104],
        [152, 90, 68],
        [126, 100, 82],
        [224, 222, 214],
        [104, 126, 152],
        [186, 170, 140],
    ],
    dtype=np.float32,
)
_ROOF_CUMULATIVE = np.cumsum([0.24, 0.16, 0.18, 0.12, 0.12, 0.1, 0.08])[:-1]
_ASPHALT = np.array([112, 111, 110], dtype=np.float32)
_CONCRETE = np.array([184, 182, 176], dtype=np.float32)
_CENTRE_LINE = np.array([226, 220, 182], dtype=np.float32)
_SCAR = np.array([182, 160, 128], dtype=np.float32)
_SHADOW_TINT = np.array([0.40, 0.44, 0.54], dtype=np.float32)
_HAZE = np.array([212, 216, 226], dtype=np.float32)


class PlacedChange(BaseModel):
    """One labelled change, as placed by the generator."""

    model_config = ConfigDict(frozen=True)

    category: Literal["road", "building"]
    change: Literal["new", "demolished"]
    bbox: tuple[int, int, int, int]
    """x, y, width, height of its pixels in the class mask."""
    cell: str
    """3×3 grid cell (:data:`deltavlm.rules.CELL_IDS`) holding its centroid."""


@dataclass(frozen=True)
class SyntheticPair:
    """A generated pair; the arrays are read-only so a shared pair cannot be altered by a consumer."""

    seed: int
    t1: np.ndarray
    """H×W×3 uint8 RGB, before."""
    t2: np.ndarray
    """H×W×3 uint8 RGB, after."""
    class_mask: np.ndarray
    """H×W uint8 of :class:`deltavlm.rules.ChangeClass` indices."""
    captions: tuple[str, ...]
    """Five LEVIR-CC-style captions (lower case, no final full stop)."""
    changes: tuple[PlacedChange, ...]

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    @property
    def counts(self) -> dict[str, int]:
        """Placed objects per category, in the shape of :attr:`deltavlm.rules.ChangeSummary.counts`."""
        return {name: sum(c.category == name for c in self.changes) for name in rules.CATEGORIES}


class ExamplePaths(BaseModel):
    """Files written by :func:`write_example`."""

    t1: Path
    t2: Path
    mask: Path
    captions: Path


# --------------------------------------------------------------------------------------------- geometry


@dataclass
class _Road:
    points: np.ndarray  # (n, 2) float x, y; runs far past the tile so no end cap shows unless intended
    width: int
    new: bool
    mask: np.ndarray  # bool
    centre_line: np.ndarray | None  # bool, asphalt roads only
    colour: np.ndarray
    turning: bool
    branch: bool
    concrete: bool


@dataclass
class _Building:
    centre: np.ndarray
    u: np.ndarray  # unit vector along the width (the road, for plots)
    v: np.ndarray  # unit vector along the depth, away from the road
    width: float
    depth: float
    roof: str  # gable | hip | flat
    colour: np.ndarray
    height: float  # shadow length at 45° sun, px
    road: int | None
    box: tuple[int, int, int, int]  # y0, y1, x0, x1: the footprint grown by 4 px, clipped to the tile
    local: np.ndarray  # bool footprint (= roof) within box
    drive_ends: tuple[np.ndarray, np.ndarray, int] | None  # start, end, width
    inside: bool
    status: str = "empty"  # empty | existing | new | demolished
    mask: np.ndarray | None = None  # tile-sized footprint, made once the building is accepted
    driveway: np.ndarray | None = None  # tile-sized, made once the building is accepted

    def accept(self, size: int) -> None:
        y0, y1, x0, x1 = self.box
        self.mask = np.zeros((size, size), bool)
        self.mask[y0:y1, x0:x1] = self.local
        if self.drive_ends is not None:
            a, b, width = self.drive_ends
            drive = np.zeros((size, size), np.uint8)
            cv2.line(drive, tuple(_fixed(a).ravel()), tuple(_fixed(b).ravel()), 1, width, cv2.LINE_8, _SHIFT)
            self.driveway = drive.astype(bool)


@dataclass
class _Scene:
    size: int
    cover: np.ndarray  # uint8 land-cover class per pixel
    mix: np.ndarray  # float 0..1, mixes colour A and B of the cover
    texture: np.ndarray  # float, zero-mean ground texture
    grain: np.ndarray  # float, fine noise for man-made surfaces
    roads: list[_Road]
    # Per date (index 0 before, 1 after): roofs standing, driveways, and shadow casters by height.
    roofs: tuple[np.ndarray, np.ndarray]
    drives: tuple[np.ndarray, np.ndarray]
    casters: tuple[list[tuple[float, np.ndarray]], list[tuple[float, np.ndarray]]]
    roof_colour: np.ndarray  # 3×H×W roof colour before sunlight (ridges, parapets), every building
    roof_normal: np.ndarray  # 2×H×W horizontal part of each roof facet's normal (0 on flat roofs)
    scar: np.ndarray  # bare ground left by demolished buildings, after
    canopy: np.ndarray  # float tree height, 0 off-canopy
    canopy_normal: np.ndarray  # N×3 unit normals of the canopy pixels, row-major
    leaf: np.ndarray  # float leaf texture
    class_mask: np.ndarray
    placed: list[tuple[PlacedChange, np.ndarray, _Road | _Building]]  # label, its pixels, its object

    @property
    def changes(self) -> list[PlacedChange]:
        return [change for change, _, _ in self.placed]


def _noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Smooth value noise with features about ``scale`` px wide, roughly unit variance."""
    if scale <= 3:  # blurred white noise is cheaper and as good at grain size
        fine = cv2.GaussianBlur(rng.standard_normal((h, w), dtype=np.float32), (0, 0), scale / 2)
        return fine / (fine.std() + 1e-6)
    gh, gw = math.ceil(h / scale) + 3, math.ceil(w / scale) + 3
    small = rng.standard_normal((gh, gw), dtype=np.float32)
    big = cv2.resize(small, (round(gw * scale), round(gh * scale)), interpolation=cv2.INTER_CUBIC)
    y0 = int(rng.integers(0, big.shape[0] - h + 1))
    x0 = int(rng.integers(0, big.shape[1] - w + 1))
    return big[y0 : y0 + h, x0 : x0 + w]


def _fractal(rng: np.random.Generator, h: int, w: int, scales: tuple[float, ...]) -> np.ndarray:
    out = sum(_noise(rng, h, w, s) * (0.55**i) for i, s in enumerate(scales))
    return (out / (out.std() + 1e-6)).astype(np.float32)


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def _walk(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions and unit tangents every pixel along a polyline."""
    pos, tan = [], []
    for a, b in pairwise(points):
        seg = b - a
        length = float(np.hypot(*seg))
        t = seg / length
        s = np.arange(int(length))[:, None]
        pos.append(a + s * t)
        tan.append(np.repeat(t[None], len(s), axis=0))
    return np.concatenate(pos), np.concatenate(tan)


def _inside(p: np.ndarray, size: int, margin: float) -> np.ndarray:
    return np.all((p >= margin) & (p <= size - 1 - margin), axis=-1)


def _rot(d: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([c * d[0] - s * d[1], s * d[0] + c * d[1]])


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def _shift(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    out = np.zeros_like(mask)
    h, w = mask.shape
    if abs(dx) >= w or abs(dy) >= h:
        return out
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = mask[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def _sweep(mask: np.ndarray, direction: np.ndarray, length: float) -> np.ndarray:
    """Union of ``mask`` moved 1..length px along ``direction``: the shadow of an extruded shape."""
    out = np.zeros_like(mask)
    for k in range(1, max(1, math.ceil(length)) + 1):
        step = direction * min(k, length)
        out |= _shift(mask, round(step[0]), round(step[1]))
    return out


def _make_road(
    rng: np.random.Generator,
    size: int,
    points: list[np.ndarray],
    width: int,
    *,
    new: bool,
    turning: bool,
    branch: bool = False,
    line_skip: float = 0.0,
    cul_de_sac: float = 0.0,
) -> _Road:
    pts = np.array(points, dtype=np.float64)
    mask = np.zeros((size, size), np.uint8)
    cv2.polylines(mask, [_fixed(pts)], False, 1, thickness=width, lineType=cv2.LINE_8, shift=_SHIFT)
    if cul_de_sac:
        centre = tuple(int(v) for v in _fixed(pts[-1]).ravel())
        cv2.circle(mask, centre, round(cul_de_sac * _ONE), 1, -1, lineType=cv2.LINE_8, shift=_SHIFT)
    concrete = bool(rng.random() < 0.3)
    # Brightness varies from road to road; hue barely, so asphalt stays grey.
    colour = (_CONCRETE if concrete else _ASPHALT) * rng.uniform(0.9, 1.1) + rng.normal(0, 1.5, 3).astype(np.float32)
    centre_line = None
    if not concrete:
        pos, _ = _walk(pts)
        dash, gap = int(rng.integers(5, 9)), int(rng.integers(5, 9))
        end = len(pos) - 1 - (int(cul_de_sac) + 2 if cul_de_sac else 0)
        starts = np.arange(int(line_skip), end - dash, dash + gap)
        starts = starts[_inside(pos[starts], size, -dash)]
        lines = np.zeros((size, size), np.uint8)
        segments = _fixed(np.stack([pos[starts], pos[starts + dash]], axis=1)).reshape(-1, 2, 1, 2)
        cv2.polylines(lines, list(segments), False, 1, 1, cv2.LINE_8, _SHIFT)
        centre_line = lines.astype(bool) & mask.astype(bool)
    return _Road(pts, width, new, mask.astype(bool), centre_line, colour, turning, branch, concrete)


def _through_road(rng: np.random.Generator, size: int, direction: np.ndarray, width: int, new: bool) -> _Road:
    """A road crossing the whole tile, straight or with one bend inside it."""
    reach = 2.0 * size
    p0 = rng.uniform(0.22, 0.78, 2) * size
    turning = bool(rng.random() < 0.35)
    d2 = _rot(direction, rng.choice([-1, 1]) * rng.uniform(0.35, 0.9)) if turning else direction
    points = [p0 - direction * reach, p0, p0 + d2 * reach]
    return _make_road(rng, size, points, width, new=new, turning=turning)


def _branch_road(rng: np.random.Generator, size: int, parent: _Road, width: int, new: bool) -> _Road | None:
    """A road leaving ``parent`` sideways: to the tile edge, or to a dead end, maybe with a turn.

    It starts on the parent's centre line and is no wider than the parent, so its round start cap
    stays inside the parent and its new pixels form one piece.
    """
    pos, tan = _walk(parent.points)
    ok = np.flatnonzero(_inside(pos, size, 0.15 * size))
    if not len(ok):
        return None
    k = int(rng.choice(ok))
    q, t = pos[k], tan[k]
    d = _rot(np.array([-t[1], t[0]]) * rng.choice([-1, 1]), rng.normal(0, 0.1))
    turning = bool(rng.random() < 0.3)
    if rng.random() < 0.5:  # to the edge
        first = rng.uniform(0.2, 0.45) * size
        pts = [q, q + d * first]
        d2 = _rot(d, rng.choice([-1, 1]) * rng.uniform(0.5, 1.1)) if turning else d
        pts.append(pts[-1] + d2 * 2.0 * size)
        cul_de_sac = 0.0
    else:  # a dead end, often finished with a turning circle
        length = rng.uniform(0.3, 0.6) * size
        if turning:
            a = length * rng.uniform(0.4, 0.6)
            d2 = _rot(d, rng.choice([-1, 1]) * rng.uniform(0.5, 1.1))
            pts = [q, q + d * a, q + d * a + d2 * (length - a)]
        else:
            pts = [q, q + d * length]
        cul_de_sac = width * rng.uniform(0.9, 1.2) if rng.random() < 0.6 else 0.0
    return _make_road(
        rng,
        size,
        pts,
        width,
        new=new,
        turning=turning,
        branch=True,
        line_skip=parent.width / 2 + 3,
        cul_de_sac=cul_de_sac,
    )


def _clear_of(road: _Road, parent: _Road, near: np.ndarray) -> bool:
    """True when a branch meets ``near`` (the grown older roads) only at its junction with ``parent``.

    A branch that bends back along its parent would add a sliver no one would call a new road.
    """
    size = road.mask.shape[0]
    junction = np.zeros((size, size), np.uint8)
    centre = tuple(int(v) for v in _fixed(road.points[0]).ravel())
    radius = parent.width / 2 + 1.5 * road.width
    cv2.circle(junction, centre, round(radius * _ONE), 1, -1, cv2.LINE_8, _SHIFT)
    return not (road.mask & near & ~junction.astype(bool)).any()


def _layout_roads(rng: np.random.Generator, size: int, n_new: int) -> list[_Road]:
    axis_aligned = rng.random() < 0.55
    phi = rng.choice([0.0, math.pi / 2]) + rng.normal(0, 0.08) if axis_aligned else rng.uniform(0, math.pi)
    main_dir = np.array([math.cos(phi), math.sin(phi)])
    n_existing = int(rng.choice([0, 1, 2], p=[0.12, 0.53, 0.35]))
    roads: list[_Road] = []
    if n_existing:
        roads.append(_through_road(rng, size, main_dir, int(rng.integers(12, 17)), new=False))
    if n_existing == 2:
        width = int(rng.integers(10, roads[0].width + 1))
        if rng.random() < 0.5:
            side = _branch_road(rng, size, roads[0], width, new=False)
            if side is not None and _clear_of(side, roads[0], _dilate(roads[0].mask, 3)):
                roads.append(side)
        else:
            roads.append(_through_road(rng, size, _rot(main_dir, math.pi / 2), width, new=False))
    n_existing = len(roads)
    existing = np.zeros((size, size), bool)
    for road in roads:
        existing |= road.mask
    near_existing = _dilate(existing, 3)
    placed_new = np.zeros((size, size), bool)
    for _ in range(n_new):
        for _try in range(12):
            if n_existing:
                parent = roads[int(rng.integers(0, n_existing))]
                road = _branch_road(rng, size, parent, int(rng.integers(9, parent.width + 1)), new=True)
                clear = road is not None and _clear_of(road, parent, near_existing)
            else:
                direction = main_dir if rng.random() < 0.5 else _rot(main_dir, math.pi / 2)
                road = _through_road(rng, size, direction, int(rng.integers(10, 15)), new=True)
                clear = True
            if road is None or not clear:
                continue
            fresh = road.mask & ~existing
            if (
                rules.count_objects(fresh) == 1
                and fresh.sum() >= 3 * road.width**2
                and not (_dilate(fresh, 3) & placed_new).any()
            ):
                roads.append(road)
                placed_new |= fresh
                break
    return roads


def _building(
    rng: np.random.Generator,
    size: int,
    centre: np.ndarray,
    u: np.ndarray,
    width: float,
    depth: float,
    road: int | None,
    driveway: tuple[np.ndarray, np.ndarray] | None,
) -> _Building:
    v = np.array([-u[1], u[0]])
    hw, hd = u * width / 2, v * depth / 2
    corners = np.array([centre - hw - hd, centre + hw - hd, centre + hw + hd, centre - hw + hd])
    (lo_x, lo_y), (hi_x, hi_y) = corners.min(0).tolist(), corners.max(0).tolist()
    x0, y0 = max(math.floor(lo_x) - 4, 0), max(math.floor(lo_y) - 4, 0)
    x1, y1 = min(math.ceil(hi_x) + 5, size), min(math.ceil(hi_y) + 5, size)
    local = np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), np.uint8)
    if local.size:  # off-tile candidates keep an empty footprint and are refused later
        cv2.fillPoly(local, [_fixed(corners - (x0, y0))], 1, cv2.LINE_8, _SHIFT)
    big = width * depth > 1500
    roof = "flat" if big or rng.random() < 0.12 else ("gable" if rng.random() < 0.58 else "hip")
    colour = _ROOF_COLOURS[np.searchsorted(_ROOF_CUMULATIVE, rng.random())] * rng.uniform(0.9, 1.08)
    return _Building(
        centre=centre,
        u=u,
        v=v,
        width=width,
        depth=depth,
        roof=roof,
        colour=colour.astype(np.float32),
        height=rng.uniform(9, 13) if big else rng.uniform(5, 8),
        road=road,
        box=(y0, y1, x0, x1),
        local=local.astype(bool),
        drive_ends=None if driveway is None else (*driveway, int(rng.integers(4, 7))),
        inside=min(lo_x, lo_y) >= 2 and max(hi_x, hi_y) <= size - 3,
    )


def _plots(rng: np.random.Generator, size: int, roads: list[_Road]) -> list[_Building]:
    """Candidate houses in rows along both sides of every road, facing it, with a driveway."""
    out = []
    for ri, road in enumerate(roads):
        pos, tan = _walk(road.points)
        near = _inside(pos, size, -40)
        for side in (1, -1):
            k = int(rng.integers(0, 12))
            while k < len(pos):
                big = rng.random() < 0.08
                width, depth = (
                    (rng.uniform(44, 66), rng.uniform(34, 48)) if big else (rng.uniform(22, 36), rng.uniform(18, 28))
                )
                kc = k + int(width / 2)
                if kc >= len(pos):
                    break
                if near[kc]:
                    p, t = pos[kc], tan[kc]
                    v = side * np.array([-t[1], t[0]])
                    setback = rng.uniform(4, 10)
                    centre = p + v * (road.width / 2 + setback + depth / 2)
                    u = side * t  # keeps v = rot(u) pointing away from the road
                    drive = None
                    if setback > 6 and not big:
                        front = centre - v * depth / 2 + u * width * rng.uniform(-0.3, 0.3)
                        drive = (front, front - v * (setback - 2.5))
                    out.append(_building(rng, size, centre, u, width, depth, ri, drive))
                k += int(width + rng.uniform(5, 14))
    return out


def _scattered(rng: np.random.Generator, size: int, n: int) -> list[_Building]:
    """Free-standing buildings (farmsteads, sheds), for tiles with few or no roads."""
    out = []
    for _ in range(n):
        angle = rng.choice([0.0, math.pi / 2]) + rng.normal(0, 0.15)
        u = np.array([math.cos(angle), math.sin(angle)])
        centre = rng.uniform(0.1, 0.9, 2) * size
        out.append(_building(rng, size, centre, u, rng.uniform(20, 38), rng.uniform(16, 28), None, None))
    return out


def _clustered(rng: np.random.Generator, pool: list[_Building], n: int) -> list[_Building]:
    """``n`` buildings of ``pool`` close together: a development happens in one place."""
    if not pool:
        return []
    seed = pool[int(rng.integers(0, len(pool)))]
    return sorted(pool, key=lambda b: float(np.hypot(*(b.centre - seed.centre))))[:n]


def _place_trees(
    rng: np.random.Generator, size: int, block: np.ndarray, buildings: list[_Building], roads: list[_Road]
) -> tuple[np.ndarray, np.ndarray]:
    """Tree clumps, yard trees, roadside rows and shrubs; returns canopy height and, per canopy pixel
    (row-major), its unit normal for shading under each date's sun."""
    area = (size / 256) ** 2
    props = []  # arrays of x, y, radius
    for _ in range(int(rng.poisson(3.5 * area)) + 1):
        n = int(rng.integers(4, 32))
        xy = rng.uniform(0, size, 2) + rng.normal(0, rng.uniform(6, 24), (n, 2))
        props.append(np.column_stack([xy, rng.uniform(3, 7.5, n)]))
    for b in buildings:
        if rng.random() < 0.55:
            n = int(rng.integers(1, 3))
            r = rng.uniform(3, 6, n)
            behind = np.outer(b.depth / 2 + r + 4, b.v)
            xy = b.centre + behind + np.outer(rng.uniform(-0.5, 0.5, n) * b.width, b.u)
            props.append(np.column_stack([xy, r]))
    for road in roads:
        if not road.new and rng.random() < 0.3:
            pos, tan = _walk(road.points)
            r = rng.uniform(3.5, 6)
            k = np.arange(int(rng.integers(0, 10)), len(pos), int(2 * r + rng.integers(1, 6)))
            normal = rng.choice([-1, 1]) * np.column_stack([-tan[k, 1], tan[k, 0]])
            props.append(np.column_stack([pos[k] + normal * (road.width / 2 + r + 3), np.full(len(k), r)]))
    n = int(rng.poisson(25 * area))
    props.append(np.column_stack([rng.uniform(0, size, (n, 2)), rng.uniform(1.5, 2.8, n)]))
    trees = np.concatenate(props)
    trees[:, 2] = np.round(trees[:, 2] * 2) / 2  # half-pixel radii, so domes come from a few stamps
    crowns = rng.uniform(0.8, 1.2, len(trees)).astype(np.float32)

    # A tree is kept when its square holds no blocked pixel: one integral image answers them all.
    ix, iy = np.round(trees[:, 0]).astype(int), np.round(trees[:, 1]).astype(int)
    ir = np.ceil(trees[:, 2]).astype(int)
    y0, y1 = np.clip(iy - ir, 0, size), np.clip(iy + ir + 1, 0, size)
    x0, x1 = np.clip(ix - ir, 0, size), np.clip(ix + ir + 1, 0, size)
    summed = cv2.integral(block.astype(np.uint8))
    blocked = summed[y1, x1] - summed[y0, x1] - summed[y1, x0] + summed[y0, x0]
    keep = np.flatnonzero((y0 < y1) & (x0 < x1) & (blocked == 0))

    height = np.zeros((size, size), np.float32)
    stamps: dict[float, np.ndarray] = {}
    for i in keep.tolist():
        r, crown = float(trees[i, 2]), float(crowns[i])
        cx, cy, cr = int(ix[i]), int(iy[i]), int(ir[i])
        ty0, ty1, tx0, tx1 = int(y0[i]), int(y1[i]), int(x0[i]), int(x1[i])
        if r not in stamps:
            d = np.arange(-cr, cr + 1, dtype=np.float32)
            stamps[r] = np.sqrt(np.maximum(r * r - d[:, None] ** 2 - d[None, :] ** 2, 0))
        dome = stamps[r][ty0 - cy + cr : ty1 - cy + cr, tx0 - cx + cr : tx1 - cx + cr] * crown
        np.maximum(height[ty0:ty1, tx0:tx1], dome, out=height[ty0:ty1, tx0:tx1])
    on = height > 0
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3)[on] / 8
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3)[on] / 8
    normal = np.stack([-gx, -gy, np.ones_like(gx)], axis=1)
    normal /= np.sqrt(gx * gx + gy * gy + 1)[:, None]
    return height, normal


def _land_cover(rng: np.random.Generator, size: int) -> tuple[np.ndarray, ...]:
    """Warped Voronoi parcels, each one cover class with its own pattern.

    Returns the cover class per pixel, the A/B colour mix, the ground texture and white grain.
    """
    area = (size / 256) ** 2
    n_parcels = max(3, int(rng.integers(3, 8) * area))
    seeds = rng.uniform(0, size, (n_parcels, 2)) / 2
    half = (size + 1) // 2  # parcels are found at half resolution: their edges are blurred anyway
    hy, hx = np.mgrid[0:half, 0:half].astype(np.float32)
    wx, wy = hx + 7 * _noise(rng, half, half, 20), hy + 7 * _noise(rng, half, half, 20)
    best = np.full((half, half), np.inf, np.float32)
    parcel_half = np.zeros((half, half), np.uint8)
    for i, (sx, sy) in enumerate(seeds):
        dist = (wx - sx) ** 2 + (wy - sy) ** 2
        closer = dist < best
        best[closer], parcel_half[closer] = dist[closer], i
    parcel = cv2.resize(parcel_half, (2 * half, 2 * half), interpolation=cv2.INTER_NEAREST)[:size, :size]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    covers = rng.choice(4, size=n_parcels, p=_COVER_WEIGHTS)
    cover = covers.astype(np.uint8)[parcel]
    blotch = np.clip(0.5 + 0.35 * _fractal(rng, size, size, (48, 20)), 0, 1)
    stripes = np.zeros((size, size), np.float32)
    for i in np.flatnonzero(covers == _FIELD):
        angle, period = rng.uniform(0, math.pi), rng.uniform(4, 9)
        wave = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
        stripes[parcel == i] = (0.5 + 0.5 * wave[parcel == i]) ** 2
    mix = np.where(cover == _FIELD, stripes, blotch).astype(np.float32)
    grain = rng.standard_normal((size, size), dtype=np.float32)
    texture = 0.7 * _fractal(rng, size, size, (10, 4)) + 0.5 * grain
    return cover, mix, texture, grain


def _place_buildings(
    rng: np.random.Generator, size: int, roads: list[_Road], plan: set[str], road_any: np.ndarray
) -> tuple[list[_Building], np.ndarray]:
    """Houses in rows along roads plus a few free-standing ones, with their status at each date.

    Candidates are accepted greedily where they keep 3 px from roads and other buildings, then each
    gets a status: existing, empty lot, or, as the plan asks, new (clustered, as developments are)
    or demolished. Returns the standing-at-some-date buildings and their driveways.
    """
    area = (size / 256) ** 2
    road_block = _dilate(road_any, 3)
    n_free = int(rng.poisson(1.5 * area)) + (int(rng.integers(3, 8)) if not roads else 0)
    candidates = _plots(rng, size, roads) + _scattered(rng, size, n_free)
    accepted: list[_Building] = []
    taken = np.zeros((size, size), bool)  # accepted roofs grown by 3 px, and driveways
    for i in rng.permutation(len(candidates)):
        b = candidates[i]
        y0, y1, x0, x1 = b.box
        blocked = road_block[y0:y1, x0:x1] | taken[y0:y1, x0:x1]
        if b.local.sum() < 0.5 * b.width * b.depth or (b.local & blocked).any():
            continue
        b.accept(size)
        if b.driveway is not None and (b.driveway & taken).any():
            b.driveway = None  # a driveway that would run into a neighbour is dropped, not the house
        accepted.append(b)
        taken[y0:y1, x0:x1] |= _dilate(b.local, 3)
        if b.driveway is not None:
            taken |= b.driveway

    new_roads = {i for i, r in enumerate(roads) if r.new}
    develop = "build" in plan or rng.random() < 0.6
    density = rng.uniform(0.25, 0.95)
    for b in accepted:
        if b.road in new_roads:
            b.status = "new" if develop and b.inside else "empty"
        else:
            b.status = "existing" if rng.random() < density else "empty"
    if "build" in plan:
        pool = [b for b in accepted if b.status == "empty" and b.inside and b.road not in new_roads]
        for b in _clustered(rng, pool, int(rng.choice([1, 1, 2, 2, 3, 3, 4, 5, 6, 8]))):
            b.status = "new"
    if "demolish" in plan:
        pool = [b for b in accepted if b.status == "existing" and b.inside]
        for b in _clustered(rng, pool, int(rng.choice([1, 1, 2, 3]))):
            b.status = "demolished"
    buildings = [b for b in accepted if b.status != "empty"]
    drives = np.zeros((size, size), bool)
    for b in buildings:
        if b.driveway is not None:
            drives |= b.driveway
    return buildings, drives


def _labels(
    size: int, roads: list[_Road], buildings: list[_Building]
) -> tuple[np.ndarray, list[tuple[PlacedChange, np.ndarray, _Road | _Building]]]:
    """The class mask and the placed changes; a new road is labelled only where no road was before."""
    existing_roads = np.zeros((size, size), bool)
    for road in roads:
        if not road.new:
            existing_roads |= road.mask
    class_mask = np.zeros((size, size), np.uint8)
    placed: list[tuple[PlacedChange, np.ndarray, _Road | _Building]] = []
    for road in roads:
        if road.new:
            fresh = road.mask & ~existing_roads
            class_mask[fresh] = ChangeClass.ROAD
            placed.append((_placed("road", "new", fresh), fresh, road))
    for b in buildings:
        if b.status in ("new", "demolished"):
            class_mask[b.mask] = ChangeClass.BUILDING
            change = "new" if b.status == "new" else "demolished"
            placed.append((_placed("building", change, b.mask), b.mask, b))
    return class_mask, placed


def _layout(rng: np.random.Generator, size: int, want_change: bool) -> _Scene | None:
    """One attempt at a scene; ``None`` when the requested change did not fit or the labels would lie."""
    plan: set[str] = set()
    if want_change:
        plans = ["build", "road", "demolish", "build+demolish", "road+build"]
        plan = set(str(rng.choice(plans, p=[0.38, 0.22, 0.12, 0.1, 0.18])).split("+"))
    n_new_roads = (2 if rng.random() < 0.15 else 1) if "road" in plan else 0
    roads = _layout_roads(rng, size, n_new_roads)
    if not any(not r.new for r in roads) and "demolish" in plan:
        plan = {"build"}
    cover, mix, texture, grain = _land_cover(rng, size)
    road_any = np.zeros((size, size), bool)
    for road in roads:
        road_any |= road.mask
    buildings, drives = _place_buildings(rng, size, roads, plan, road_any)

    class_mask, placed = _labels(size, roads, buildings)
    if want_change != bool(placed):
        return None
    for name in rules.CATEGORIES:  # the labels must say what the counting rule will find
        n_placed = sum(change.category == name for change, _, _ in placed)
        if rules.count_objects(rules.change_mask(class_mask, name)) != n_placed:
            return None

    block = _dilate(road_any, 2) | _dilate(drives, 1)
    for b in buildings:
        y0, y1, x0, x1 = b.box
        block[y0:y1, x0:x1] |= _dilate(b.local, 3)
    canopy, normal = _place_trees(rng, size, block, buildings, roads)
    leaf = cv2.GaussianBlur(grain, (0, 0), 0.8) * 2.2

    # What each date shows of the buildings, prepared once: roofs, their shadow casters, driveways.
    roof_colour = np.zeros((3, size, size), np.float32)
    roof_normal = np.zeros((2, size, size), np.float32)
    roofs = (np.zeros((size, size), bool), np.zeros((size, size), bool))
    drives_by_date = (np.zeros((size, size), bool), np.zeros((size, size), bool))
    heights: tuple[dict[int, np.ndarray], dict[int, np.ndarray]] = ({}, {})
    scar = np.zeros((size, size), bool)
    for b in buildings:
        y0, y1, x0, x1 = b.box
        light, facet = _roof(b, grain)
        roof_colour[:, y0:y1, x0:x1][:, b.local] = b.colour[:, None] * light[b.local]
        roof_normal[:, y0:y1, x0:x1][:, b.local] = facet[:, b.local]
        for date, standing in enumerate((b.status != "new", b.status != "demolished")):
            if standing:
                roofs[date][y0:y1, x0:x1] |= b.local
                caster = heights[date].setdefault(round(b.height), np.zeros((size, size), bool))
                caster[y0:y1, x0:x1] |= b.local
            if b.driveway is not None and (date == 1 or b.status != "new"):  # a demolished house's stays
                drives_by_date[date][:] |= b.driveway
        if b.status == "demolished":
            scar[y0:y1, x0:x1] |= _dilate(b.local, 1)
    casters = tuple([(float(h), m) for h, m in sorted(d.items())] for d in heights)
    return _Scene(
        size=size,
        cover=cover,
        mix=mix,
        texture=texture,
        grain=grain,
        roads=roads,
        roofs=roofs,
        drives=drives_by_date,
        casters=casters,
        roof_colour=roof_colour,
        roof_normal=roof_normal,
        scar=scar,
        canopy=canopy,
        canopy_normal=normal,
        leaf=leaf,
        class_mask=class_mask,
        placed=placed,
    )


def _placed(
    category: Literal["road", "building"], change: Literal["new", "demolished"], mask: np.ndarray
) -> PlacedChange:
    ys, xs = np.nonzero(mask)
    x, y = int(xs.min()), int(ys.min())
    cy, cx = float(ys.mean()), float(xs.mean())
    cell = next(c for c, (r0, r1, c0, c1) in rules.grid_bounds(*mask.shape).items() if r0 <= cy < r1 and c0 <= cx < c1)
    return PlacedChange(
        category=category, change=change, bbox=(x, y, int(xs.max()) - x + 1, int(ys.max()) - y + 1), cell=cell
    )


# --------------------------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class _Look:
    """What differs between two acquisitions of an unchanged place: the pseudo-changes."""

    season: float  # 0 lush … 1 dry
    sun: np.ndarray  # unit vector towards the sun in the image plane
    elevation: float  # radians
    brightness: float
    contrast: float
    warmth: float  # colour temperature, −1 cool … 1 warm
    haze: float
    noise: float


def _looks(rng: np.random.Generator) -> tuple[_Look, _Look]:
    """Two acquisitions that always differ visibly, so a no-change pair is never pixel-identical."""
    s1 = rng.uniform(0, 1)
    s2 = float(np.clip(s1 + rng.choice([-1, 1]) * rng.uniform(0.25, 0.7), 0, 1))
    az1 = rng.uniform(0.2, 0.8) * math.pi
    looks = []
    for season, az in ((s1, az1), (s2, az1 + rng.uniform(-0.4, 0.4))):
        looks.append(
            _Look(
                season=season,
                sun=np.array([math.cos(az), math.sin(az)]),
                elevation=rng.uniform(0.75, 1.2),
                brightness=rng.uniform(0.86, 1.14),
                contrast=rng.uniform(0.85, 1.15),
                warmth=rng.uniform(-1, 1),
                haze=rng.uniform(0, 0.12),
                noise=rng.uniform(1.5, 3.5),
            )
        )
    return looks[0], looks[1]


def _roof(b: _Building, grain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Brightness and facet normals (2×h×w) of a roof in the building's box, before any sun lights it.

    Gable roofs have two facets meeting at a ridge along the long axis, hip roofs slope on all four
    sides, flat roofs have a parapet. The facet normals let every date light the same roof its own way.
    """
    y0, y1, x0, x1 = b.box
    along, across = (b.u, b.v) if b.width >= b.depth else (b.v, b.u)
    half_long, half_short = max(b.width, b.depth) / 2, min(b.width, b.depth) / 2
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] - b.centre[1]
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] - b.centre[0]
    p_along, p_across = dx * along[0] + dy * along[1], dx * across[0] + dy * across[1]
    to_eaves = half_short - np.abs(p_across)  # distance to the long edges
    to_ends = half_long - np.abs(p_along)  # distance to the short edges
    light = 1.0 + 0.02 * grain[y0:y1, x0:x1]
    normal = np.zeros((2, *light.shape), np.float32)
    if b.roof == "flat":
        light = light * np.where(np.minimum(to_eaves, to_ends) < 1.5, 0.82, 1.0)
    else:
        normal[:] = across[:, None, None] * np.sign(p_across)
        if b.roof == "hip":
            end_facet = to_ends < to_eaves
            normal[:, end_facet] = (along[:, None, None] * np.sign(p_along))[:, end_facet]
            ridge = (np.abs(to_eaves - to_ends) < 0.8) | ((to_eaves > half_short - 0.9) & ~end_facet)
        else:
            ridge = to_eaves > half_short - 0.9
        light = np.where(ridge, light * 1.14, light)
    return light, normal


def _render(scene: _Scene, date: int, look: _Look, rng: np.random.Generator) -> np.ndarray:
    """One acquisition. Works channel-first, so per-channel colours broadcast along whole rows."""
    size, s = scene.size, look.season
    img = np.empty((3, size, size), np.float32)
    for c in range(3):
        lut_a, lut_b = np.zeros((2, 256), np.float32)
        lut_a[:4] = _COVER_A[:, 0, c] * (1 - s) + _COVER_A[:, 1, c] * s
        lut_b[:4] = _COVER_B[:, 0, c] * (1 - s) + _COVER_B[:, 1, c] * s
        a = cv2.LUT(scene.cover, lut_a)
        ground = a + (cv2.LUT(scene.cover, lut_b) - a) * scene.mix
        img[c] = cv2.GaussianBlur(ground, (0, 0), 1.0) * (1 + 0.07 * scene.texture)

    present = [r for r in scene.roads if date == 1 or not r.new]
    for road in sorted(present, key=lambda r: not r.new):  # existing roads on top at junctions
        img[:, road.mask] = road.colour[:, None] * (1 + 0.04 * scene.grain[road.mask])
    roads_now = np.zeros((size, size), bool)
    for road in present:
        roads_now |= road.mask
    edge = roads_now & ~cv2.erode(roads_now.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    img[:, edge] *= 0.86
    for road in present:
        if road.centre_line is not None:
            img[:, road.centre_line] = _CENTRE_LINE[:, None]

    drives = scene.drives[date]
    img[:, drives] = _CONCRETE[:, None] * 0.96 * (1 + 0.03 * scene.grain[drives])
    if date == 1:
        img[:, scene.scar] = _SCAR[:, None] * (1 + 0.08 * scene.texture[scene.scar])

    roofs, trees = scene.roofs[date], scene.canopy > 0
    reach = 1 / math.tan(look.elevation)
    shadow = _sweep(trees, -look.sun, 8 * reach)
    for height, caster in scene.casters[date]:
        shadow |= _sweep(caster, -look.sun, height * reach)
    img[:, shadow & ~roofs & ~trees] *= _SHADOW_TINT[:, None]
    facing = 1 + 0.3 * (scene.roof_normal[0][roofs] * look.sun[0] + scene.roof_normal[1][roofs] * look.sun[1])
    img[:, roofs] = scene.roof_colour[:, roofs] * facing

    sun3 = np.array(
        [
            look.sun[0] * math.cos(look.elevation),
            look.sun[1] * math.cos(look.elevation),
            math.sin(look.elevation),
        ],
        np.float32,
    )
    lit = np.clip(scene.canopy_normal @ sun3, 0, 1)
    tree = _TREE[0] * (1 - s) + _TREE[1] * s
    img[:, trees] = tree[:, None] * ((0.35 + 0.85 * lit) * (1 + 0.16 * scene.leaf[trees]))

    # Contrast about the mean, brightness, colour temperature and haze, folded into one gain and offset.
    gain = look.brightness * np.array([1 + 0.04 * look.warmth, 1.0, 1 - 0.05 * look.warmth], np.float32)
    scale = look.contrast * gain * (1 - look.haze)
    offset = (1 - look.contrast) * img.mean(axis=(1, 2)) * gain * (1 - look.haze) + _HAZE * look.haze
    noise = (rng.random((size, size), dtype=np.float32) - 0.5) * (look.noise * math.sqrt(12))
    planes = [cv2.GaussianBlur(img[c], (3, 3), 0.6) * scale[c] + (offset[c] + noise) for c in range(3)]
    out = cv2.merge(planes)
    np.rint(out, out=out)
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


# --------------------------------------------------------------------------------------------- captions

_NUMBER = {1: "a", 2: "two", 3: "three"}


def _number(n: int, rng: np.random.Generator) -> str:
    return _NUMBER.get(n) or str(rng.choice(["several", "many", "some"]))


def _location(cells: set[str], rng: np.random.Generator) -> str | None:
    """A natural phrase for a set of grid cells, or ``None`` when they are spread over the scene."""
    parts = [CELL_NAMES[c].split("-") for c in cells]
    rows, cols = {p[0] for p in parts}, {p[1] for p in parts}
    if len(cells) == 1:
        ((v, h),) = parts
        if v == h == "center":
            options = ["in the center", "in the middle of the scene"]
        elif v == "center":
            options = [f"on the {h}", f"on the {h} side"]
        elif h == "center":
            options = [f"at the {v}", f"at the {v} of the scene"]
        else:
            options = [f"in the {v} {h}", f"at the {v} {h} corner"]
    elif len(rows) == 1:
        (v,) = rows
        options = ["across the middle"] if v == "center" else [f"at the {v}", f"at the {v} of the scene"]
    elif len(cols) == 1:
        (h,) = cols
        options = ["in the middle"] if h == "center" else [f"on the {h}", f"on the {h} side"]
    else:
        return None
    return str(rng.choice(options))


@dataclass(frozen=True)
class _Group:
    kind: str  # new_building | demolished | new_road
    n: int
    cells: frozenset[str]
    lands: tuple[str, ...]
    by_road: bool
    turning: bool
    branch: bool
    concrete: bool
    big: bool


_TEMPLATES = {
    "new_building": [
        "{num} {noun} {be} built{loc}",
        "{num} {noun} {appear}{loc}",
        "{num} new {noun} {be} constructed{loc}",
        "{num} {noun} {be} built {land}{loc}",
        "{num} {noun} {show} up{loc}",
    ],
    "demolished": [
        "{num} {noun} {be} demolished{loc}",
        "{num} {noun} {disappear}{loc}",
        "{num} {noun} {be} removed{loc}",
        "{num} {noun} {be} torn down{loc}",
        "{num} {noun} {be} replaced by bare land{loc}",
    ],
    "new_road": [
        "{num} {noun} {be} built{loc}",
        "{num} new {noun} {appear}{loc}",
        "{num} {noun} {be} constructed {land}{loc}",
        "{num} {adj}{noun} {appear}{loc}",
    ],
}


def _clause(g: _Group, rng: np.random.Generator, with_location: bool) -> str:
    templates = list(_TEMPLATES[g.kind])
    if g.kind == "new_building" and g.by_road:
        templates += [
            "{num} {noun} {be} built along the road{loc}",
            "{num} {noun} {appear} beside the road{loc}",
        ]
    if g.kind == "new_road" and g.branch:
        templates += [
            "{num} {noun} {be} built to join the old road{loc}",
            "{num} {noun} {branch} off the main road{loc}",
        ]
    one = g.n == 1
    if g.kind == "new_road":
        noun = "road"
        adjs = (
            ["new "] + (["turning ", "curved "] if g.turning else ["straight "]) + (["cement "] if g.concrete else [])
        )
    else:
        nouns = ["building", "house", "villa"] if g.kind == "new_building" else ["building", "house"]
        noun = "building" if g.big else str(rng.choice(nouns))
        adjs = [""]
    loc = _location(set(g.cells), rng) if with_location else None
    words = {
        "num": _number(g.n, rng),
        "noun": noun if one else noun + "s",
        "adj": str(rng.choice(adjs)),
        "be": "is" if one else "are",
        **{verb: verb + "s" if one else verb for verb in ("appear", "show", "disappear")},
        "branch": "branches" if one else "branch",
        "land": str(rng.choice(g.lands)),
        "loc": f" {loc}" if loc else "",
    }
    return str(rng.choice(templates)).format(**words)


def _groups(scene: _Scene, rng: np.random.Generator) -> list[_Group]:
    groups = []
    kinds = (
        ("new_building", "building", "new"),
        ("demolished", "building", "demolished"),
        ("new_road", "road", "new"),
    )
    for kind, category, change in kinds:
        members = [(c, m, o) for c, m, o in scene.placed if c.category == category and c.change == change]
        if not members:
            continue
        union = np.any([m for _, m, _ in members], axis=0)
        land = int(np.bincount(scene.cover[union], minlength=4).argmax())
        objs = [o for _, _, o in members]
        # A building is where its centroid is; a road is where it covers enough of a cell to change it.
        cells = rules.changed_cells(union) if category == "road" else [c.cell for c, _, _ in members]
        roads = [o for o in objs if isinstance(o, _Road)]
        buildings = [o for o in objs if isinstance(o, _Building)]
        groups.append(
            _Group(
                kind=kind,
                n=len(members),
                cells=frozenset(cells),
                lands=_LAND_WORDS[land],
                by_road=bool(buildings) and all(b.road is not None for b in buildings),
                turning=any(r.turning for r in roads),
                branch=bool(roads) and all(r.branch for r in roads),
                concrete=bool(roads) and all(r.concrete for r in roads),
                big=any(b.width * b.depth > 1500 for b in buildings),
            )
        )
    return [groups[i] for i in rng.permutation(len(groups))]


def _captions(scene: _Scene, rng: np.random.Generator) -> tuple[str, ...]:
    """Five different captions; the first always names the location, as most LEVIR-CC annotators do."""
    if not scene.placed:
        return NO_CHANGE_CAPTIONS
    groups = _groups(scene, rng)
    out: list[str] = []
    for attempt in range(60):
        order = groups if attempt == 0 else [groups[i] for i in rng.permutation(len(groups))]
        text = " and ".join(_clause(g, rng, attempt == 0 or rng.random() < 0.5) for g in order)
        if text not in out:
            out.append(text)
        if len(out) == 5:
            break
    while len(out) < 5:  # a tiny template space can run dry; repeat rather than invent
        out.append(out[len(out) % len(out)])
    return tuple(out)


# --------------------------------------------------------------------------------------------- public API


def generate_pair(seed: int, size: int = 256, *, change: bool | None = None, p_no_change: float = 0.5) -> SyntheticPair:
    """A deterministic synthetic pair: the same ``seed`` and ``size`` give byte-identical arrays.

    ``change=None`` draws whether the pair changes, unchanged with probability ``p_no_change``
    (LEVIR-CC is half unchanged); ``True``/``False`` forces it, for tests that need one or the other.
    """
    if size < MIN_SIZE:
        raise ValueError(f"size {size} is below the minimum {MIN_SIZE}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if not 0.0 <= p_no_change <= 1.0:
        raise ValueError(f"p_no_change must lie in [0, 1], got {p_no_change}")
    want = change if change is not None else bool(np.random.default_rng([seed, 0]).random() >= p_no_change)
    for attempt in range(_MAX_ATTEMPTS):
        scene = _layout(np.random.default_rng([seed, 1, attempt]), size, want)
        if scene is not None:
            break
    else:
        raise RuntimeError(f"no {'changed' if want else 'unchanged'} {size}px scene fits seed {seed}")
    look_rng = np.random.default_rng([seed, 2])
    look1, look2 = _looks(look_rng)
    t1, t2 = _render(scene, 0, look1, look_rng), _render(scene, 1, look2, look_rng)
    captions = _captions(scene, np.random.default_rng([seed, 3]))
    for array in (t1, t2, scene.class_mask):
        array.flags.writeable = False
    return SyntheticPair(
        seed=seed, t1=t1, t2=t2, class_mask=scene.class_mask, captions=captions, changes=tuple(scene.changes)
    )


def pair_seed(seed: int, index: int) -> int:
    """Seed of the ``index``-th pair of a dataset written with ``seed``, so any file can be regenerated."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def label_png(class_mask: np.ndarray) -> np.ndarray:
    """Class mask → LEVIR-MCI label values, by inverting the one convention in :mod:`deltavlm.rules`."""
    lut = np.zeros(max(ChangeClass) + 1, np.uint8)
    for raw, cls in LEVIR_MCI_LABEL_VALUES.items():
        lut[cls] = raw
    if (class_mask == ChangeClass.CHANGE).any():
        raise ValueError("uncategorised change has no LEVIR-MCI label value")
    return lut[class_mask]


def _write_rgb(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def write_levir_mci(
    root: Path, n_pairs: Mapping[str, int], seed: int, size: int = 256, *, p_no_change: float = 0.5
) -> None:
    """Write a LEVIR-MCI-shaped dataset, so data loaders can be exercised without the real data.

    Layout: ``images/{split}/{A,B,label}/{split}_NNNNNN.png`` and ``LevirCCcaptions.json`` in the
    LEVIR-CC (Karpathy) format. The pair with global image id ``k`` is ``generate_pair(pair_seed(seed, k))``.
    """
    unknown = set(n_pairs) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown splits {sorted(unknown)}; expected a subset of {SPLITS}")
    root = Path(root)
    images: list[dict] = []
    sentid = 0
    for split in (s for s in SPLITS if s in n_pairs):
        folders = {part: root / "images" / split / part for part in ("A", "B", "label")}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        for i in range(n_pairs[split]):
            imgid = len(images)
            pair = generate_pair(pair_seed(seed, imgid), size, p_no_change=p_no_change)
            name = f"{split}_{i:06d}.png"
            _write_rgb(folders["A"] / name, pair.t1)
            _write_rgb(folders["B"] / name, pair.t2)
            if not cv2.imwrite(str(folders["label"] / name), label_png(pair.class_mask)):
                raise OSError(f"could not write {folders['label'] / name}")
            sentences = [
                {"tokens": text.split(), "raw": f" {text} .", "imgid": imgid, "sentid": sentid + j}
                for j, text in enumerate(pair.captions)
            ]
            images.append(
                {
                    "filepath": split,
                    "filename": name,
                    "imgid": imgid,
                    "split": split,
                    "sentences": sentences,
                    "changeflag": int(pair.changed),
                    "sentids": [s["sentid"] for s in sentences],
                }
            )
            sentid += len(sentences)
    (root / "LevirCCcaptions.json").write_text(json.dumps({"images": images}))


def write_example(out_dir: Path, seed: int = 7, size: int = 256, georeferenced: bool = True) -> ExamplePaths:
    """Write one changed demo pair as a user would bring it: GeoTIFFs in UTM 14N, or plain PNGs.

    The GeoTIFFs exercise the georeferenced path end to end (alignment checks, GeoJSON in the image's
    CRS) with a real projected CRS and 0.5 m pixels, as LEVIR-CD's Texas scenes would have.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pair = generate_pair(seed, size, change=True)
    if georeferenced:
        paths = ExamplePaths(
            t1=out_dir / "t1.tif",
            t2=out_dir / "t2.tif",
            mask=out_dir / "mask.png",
            captions=out_dir / "captions.json",
        )
        profile = {
            "driver": "GTiff",
            "height": size,
            "width": size,
            "count": 3,
            "dtype": "uint8",
            "crs": CRS.from_string(EXAMPLE_CRS),
            "transform": from_origin(*EXAMPLE_ORIGIN, GSD_M, GSD_M),
            "photometric": "RGB",
            "compress": "deflate",
        }
        for path, rgb in ((paths.t1, pair.t1), (paths.t2, pair.t2)):
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(np.moveaxis(rgb, 2, 0))
    else:
        paths = ExamplePaths(
            t1=out_dir / "t1.png",
            t2=out_dir / "t2.png",
            mask=out_dir / "mask.png",
            captions=out_dir / "captions.json",
        )
        _write_rgb(paths.t1, pair.t1)
        _write_rgb(paths.t2, pair.t2)
    if not cv2.imwrite(str(paths.mask), label_png(pair.class_mask)):
        raise OSError(f"could not write {paths.mask}")
    record = {
        "seed": seed,
        "size": size,
        "captions": list(pair.captions),
        "counts": pair.counts,
        "changes": [c.model_dump() for c in pair.changes],
        "label_values": {str(raw): cls.name.lower() for raw, cls in LEVIR_MCI_LABEL_VALUES.items()},
    }
    paths.captions.write_text(json.dumps(record, indent=2))
    return paths
