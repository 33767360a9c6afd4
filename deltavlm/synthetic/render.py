"""Rendering a laid-out scene at one date, with unlabelled pseudo-changes (season, sun, brightness, colour
temperature, haze, sensor noise) of the kind that make real no-change pairs differ."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from deltavlm.synthetic.layout import Scene, sweep
from deltavlm.synthetic.palette import CENTRE_LINE, CONCRETE, COVER_A, COVER_B, HAZE, SCAR, SHADOW_TINT, TREE

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


def draw_looks(rng: np.random.Generator) -> tuple[_Look, _Look]:
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


def render_date(scene: Scene, date: int, look: _Look, rng: np.random.Generator) -> np.ndarray:
    """One acquisition. Works channel-first, so per-channel colours broadcast along whole rows."""
    size, s = scene.size, look.season
    img = np.empty((3, size, size), np.float32)
    for c in range(3):
        lut_a, lut_b = np.zeros((2, 256), np.float32)
        lut_a[:4] = COVER_A[:, 0, c] * (1 - s) + COVER_A[:, 1, c] * s
        lut_b[:4] = COVER_B[:, 0, c] * (1 - s) + COVER_B[:, 1, c] * s
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
            img[:, road.centre_line] = CENTRE_LINE[:, None]

    drives = scene.drives[date]
    img[:, drives] = CONCRETE[:, None] * 0.96 * (1 + 0.03 * scene.grain[drives])
    if date == 1:
        img[:, scene.scar] = SCAR[:, None] * (1 + 0.08 * scene.texture[scene.scar])

    roofs, trees = scene.roofs[date], scene.canopy > 0
    reach = 1 / math.tan(look.elevation)
    shadow = sweep(trees, -look.sun, 8 * reach)
    for height, caster in scene.casters[date]:
        shadow |= sweep(caster, -look.sun, height * reach)
    img[:, shadow & ~roofs & ~trees] *= SHADOW_TINT[:, None]
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
    tree = TREE[0] * (1 - s) + TREE[1] * s
    img[:, trees] = tree[:, None] * ((0.35 + 0.85 * lit) * (1 + 0.16 * scene.leaf[trees]))

    # Contrast about the mean, brightness, colour temperature and haze, folded into one gain and offset.
    gain = look.brightness * np.array([1 + 0.04 * look.warmth, 1.0, 1 - 0.05 * look.warmth], np.float32)
    scale = look.contrast * gain * (1 - look.haze)
    offset = (1 - look.contrast) * img.mean(axis=(1, 2)) * gain * (1 - look.haze) + HAZE * look.haze
    noise = (rng.random((size, size), dtype=np.float32) - 0.5) * (look.noise * math.sqrt(12))
    planes = [cv2.GaussianBlur(img[c], (3, 3), 0.6) * scale[c] + (offset[c] + noise) for c in range(3)]
    out = cv2.merge(planes)
    np.rint(out, out=out)
    return np.clip(out, 0, 255, out=out).astype(np.uint8)
