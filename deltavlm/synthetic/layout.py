"""Laying out a scene: land cover, roads, buildings and trees, and the labelled changes between the dates.

Every changed object is kept at least 3 px away from any other building, and each new road is checked to be one
piece, so that the counting rule of :mod:`deltavlm.rules` finds exactly the objects placed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import cv2
import numpy as np

from deltavlm import rules
from deltavlm.rules import ChangeClass
from deltavlm.synthetic.pairs import PlacedChange
from deltavlm.synthetic.palette import (
    ASPHALT,
    CONCRETE,
    COVER_WEIGHTS,
    FIELD,
    ONE,
    ROOF_COLOURS,
    ROOF_CUMULATIVE,
    SHIFT,
)

# --------------------------------------------------------------------------------------------- geometry


@dataclass
class Road:
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
class Building:
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
            cv2.line(drive, tuple(_fixed(a).ravel()), tuple(_fixed(b).ravel()), 1, width, cv2.LINE_8, SHIFT)
            self.driveway = drive.astype(bool)


@dataclass
class Scene:
    size: int
    cover: np.ndarray  # uint8 land-cover class per pixel
    mix: np.ndarray  # float 0..1, mixes colour A and B of the cover
    texture: np.ndarray  # float, zero-mean ground texture
    grain: np.ndarray  # float, fine noise for man-made surfaces
    roads: list[Road]
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
    placed: list[tuple[PlacedChange, np.ndarray, Road | Building]]  # label, its pixels, its object

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
    return np.round(np.asarray(points, dtype=np.float64) * ONE).astype(np.int32).reshape(-1, 1, 2)


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


def sweep(mask: np.ndarray, direction: np.ndarray, length: float) -> np.ndarray:
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
) -> Road:
    pts = np.array(points, dtype=np.float64)
    mask = np.zeros((size, size), np.uint8)
    cv2.polylines(mask, [_fixed(pts)], False, 1, thickness=width, lineType=cv2.LINE_8, shift=SHIFT)
    if cul_de_sac:
        centre = tuple(int(v) for v in _fixed(pts[-1]).ravel())
        cv2.circle(mask, centre, round(cul_de_sac * ONE), 1, -1, lineType=cv2.LINE_8, shift=SHIFT)
    concrete = bool(rng.random() < 0.3)
    # Brightness varies from road to road; hue barely, so asphalt stays grey.
    colour = (CONCRETE if concrete else ASPHALT) * rng.uniform(0.9, 1.1) + rng.normal(0, 1.5, 3).astype(np.float32)
    centre_line = None
    if not concrete:
        pos, _ = _walk(pts)
        dash, gap = int(rng.integers(5, 9)), int(rng.integers(5, 9))
        end = len(pos) - 1 - (int(cul_de_sac) + 2 if cul_de_sac else 0)
        starts = np.arange(int(line_skip), end - dash, dash + gap)
        starts = starts[_inside(pos[starts], size, -dash)]
        lines = np.zeros((size, size), np.uint8)
        segments = _fixed(np.stack([pos[starts], pos[starts + dash]], axis=1)).reshape(-1, 2, 1, 2)
        cv2.polylines(lines, list(segments), False, 1, 1, cv2.LINE_8, SHIFT)
        centre_line = lines.astype(bool) & mask.astype(bool)
    return Road(pts, width, new, mask.astype(bool), centre_line, colour, turning, branch, concrete)


def _through_road(rng: np.random.Generator, size: int, direction: np.ndarray, width: int, new: bool) -> Road:
    """A road crossing the whole tile, straight or with one bend inside it."""
    reach = 2.0 * size
    p0 = rng.uniform(0.22, 0.78, 2) * size
    turning = bool(rng.random() < 0.35)
    d2 = _rot(direction, rng.choice([-1, 1]) * rng.uniform(0.35, 0.9)) if turning else direction
    points = [p0 - direction * reach, p0, p0 + d2 * reach]
    return _make_road(rng, size, points, width, new=new, turning=turning)


def _branch_road(rng: np.random.Generator, size: int, parent: Road, width: int, new: bool) -> Road | None:
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


def _clear_of(road: Road, parent: Road, near: np.ndarray) -> bool:
    """True when a branch meets ``near`` (the grown older roads) only at its junction with ``parent``.

    A branch that bends back along its parent would add a sliver no one would call a new road.
    """
    size = road.mask.shape[0]
    junction = np.zeros((size, size), np.uint8)
    centre = tuple(int(v) for v in _fixed(road.points[0]).ravel())
    radius = parent.width / 2 + 1.5 * road.width
    cv2.circle(junction, centre, round(radius * ONE), 1, -1, cv2.LINE_8, SHIFT)
    return not (road.mask & near & ~junction.astype(bool)).any()


def _layout_roads(rng: np.random.Generator, size: int, n_new: int) -> list[Road]:
    axis_aligned = rng.random() < 0.55
    phi = rng.choice([0.0, math.pi / 2]) + rng.normal(0, 0.08) if axis_aligned else rng.uniform(0, math.pi)
    main_dir = np.array([math.cos(phi), math.sin(phi)])
    n_existing = int(rng.choice([0, 1, 2], p=[0.12, 0.53, 0.35]))
    roads: list[Road] = []
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
) -> Building:
    v = np.array([-u[1], u[0]])
    hw, hd = u * width / 2, v * depth / 2
    corners = np.array([centre - hw - hd, centre + hw - hd, centre + hw + hd, centre - hw + hd])
    (lo_x, lo_y), (hi_x, hi_y) = corners.min(0).tolist(), corners.max(0).tolist()
    x0, y0 = max(math.floor(lo_x) - 4, 0), max(math.floor(lo_y) - 4, 0)
    x1, y1 = min(math.ceil(hi_x) + 5, size), min(math.ceil(hi_y) + 5, size)
    local = np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), np.uint8)
    if local.size:  # off-tile candidates keep an empty footprint and are refused later
        cv2.fillPoly(local, [_fixed(corners - (x0, y0))], 1, cv2.LINE_8, SHIFT)
    big = width * depth > 1500
    roof = "flat" if big or rng.random() < 0.12 else ("gable" if rng.random() < 0.58 else "hip")
    colour = ROOF_COLOURS[np.searchsorted(ROOF_CUMULATIVE, rng.random())] * rng.uniform(0.9, 1.08)
    return Building(
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


def _plots(rng: np.random.Generator, size: int, roads: list[Road]) -> list[Building]:
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


def _scattered(rng: np.random.Generator, size: int, n: int) -> list[Building]:
    """Free-standing buildings (farmsteads, sheds), for tiles with few or no roads."""
    out = []
    for _ in range(n):
        angle = rng.choice([0.0, math.pi / 2]) + rng.normal(0, 0.15)
        u = np.array([math.cos(angle), math.sin(angle)])
        centre = rng.uniform(0.1, 0.9, 2) * size
        out.append(_building(rng, size, centre, u, rng.uniform(20, 38), rng.uniform(16, 28), None, None))
    return out


def _clustered(rng: np.random.Generator, pool: list[Building], n: int) -> list[Building]:
    """``n`` buildings of ``pool`` close together: a development happens in one place."""
    if not pool:
        return []
    seed = pool[int(rng.integers(0, len(pool)))]
    return sorted(pool, key=lambda b: float(np.hypot(*(b.centre - seed.centre))))[:n]


def _place_trees(
    rng: np.random.Generator, size: int, block: np.ndarray, buildings: list[Building], roads: list[Road]
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
    covers = rng.choice(4, size=n_parcels, p=COVER_WEIGHTS)
    cover = covers.astype(np.uint8)[parcel]
    blotch = np.clip(0.5 + 0.35 * _fractal(rng, size, size, (48, 20)), 0, 1)
    stripes = np.zeros((size, size), np.float32)
    for i in np.flatnonzero(covers == FIELD):
        angle, period = rng.uniform(0, math.pi), rng.uniform(4, 9)
        wave = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
        stripes[parcel == i] = (0.5 + 0.5 * wave[parcel == i]) ** 2
    mix = np.where(cover == FIELD, stripes, blotch).astype(np.float32)
    grain = rng.standard_normal((size, size), dtype=np.float32)
    texture = 0.7 * _fractal(rng, size, size, (10, 4)) + 0.5 * grain
    return cover, mix, texture, grain


def _place_buildings(
    rng: np.random.Generator, size: int, roads: list[Road], plan: set[str], road_any: np.ndarray
) -> tuple[list[Building], np.ndarray]:
    """Houses in rows along roads plus a few free-standing ones, with their status at each date.

    Candidates are accepted greedily where they keep 3 px from roads and other buildings, then each
    gets a status: existing, empty lot, or, as the plan asks, new (clustered, as developments are)
    or demolished. Returns the standing-at-some-date buildings and their driveways.
    """
    area = (size / 256) ** 2
    road_block = _dilate(road_any, 3)
    n_free = int(rng.poisson(1.5 * area)) + (int(rng.integers(3, 8)) if not roads else 0)
    candidates = _plots(rng, size, roads) + _scattered(rng, size, n_free)
    accepted: list[Building] = []
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
    size: int, roads: list[Road], buildings: list[Building]
) -> tuple[np.ndarray, list[tuple[PlacedChange, np.ndarray, Road | Building]]]:
    """The class mask and the placed changes; a new road is labelled only where no road was before."""
    existing_roads = np.zeros((size, size), bool)
    for road in roads:
        if not road.new:
            existing_roads |= road.mask
    class_mask = np.zeros((size, size), np.uint8)
    placed: list[tuple[PlacedChange, np.ndarray, Road | Building]] = []
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


def _roof(b: Building, grain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def lay_out_scene(rng: np.random.Generator, size: int, want_change: bool) -> Scene | None:
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
    return Scene(
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
