"""Colours of the synthetic ground, roofs, roads and atmosphere, and the drawing precision.

Land-cover classes have two colours each (mixed per pixel by a pattern), lush and dry; the season mixes
lush into dry."""

from __future__ import annotations

import numpy as np

MAX_ATTEMPTS = 40
SHIFT = 4  # fixed-point bits for OpenCV drawing, so geometry is placed to 1/16 px
ONE = 1 << SHIFT

# Land-cover classes of the ground and their two colours (RGB, mixed per pixel by a pattern):
# (lush colour A, dry colour A) and (lush colour B, dry colour B); the season mixes lush → dry.
_GRASS, _DRY, _BARE, FIELD = range(4)
COVER_WEIGHTS = (0.32, 0.28, 0.28, 0.12)
COVER_A = np.array(
    [
        [[86, 108, 56], [156, 144, 90]],
        [[138, 136, 92], [178, 162, 118]],
        [[206, 192, 166], [208, 192, 164]],
        [[74, 104, 48], [168, 148, 92]],
    ],
    dtype=np.float32,
)
COVER_B = np.array(
    [
        [[112, 120, 72], [172, 156, 108]],
        [[170, 160, 124], [190, 176, 144]],
        [[178, 162, 134], [182, 164, 134]],
        [[148, 128, 98], [156, 134, 102]],
    ],
    dtype=np.float32,
)
TREE = np.array([[46, 70, 36], [118, 100, 50]], dtype=np.float32)  # lush green → yellow-brown
LAND_WORDS: dict[int, tuple[str, ...]] = {
    _GRASS: ("on the grassland", "on the meadow"),
    _DRY: ("on the bareland", "in the open space"),
    _BARE: ("on the bareland", "in the open space", "in the desert"),
    FIELD: ("on the farmland", "in the fields"),
}

ROOF_COLOURS = np.array(
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
ROOF_CUMULATIVE = np.cumsum([0.24, 0.16, 0.18, 0.12, 0.12, 0.1, 0.08])[:-1]
ASPHALT = np.array([112, 111, 110], dtype=np.float32)
CONCRETE = np.array([184, 182, 176], dtype=np.float32)
CENTRE_LINE = np.array([226, 220, 182], dtype=np.float32)
SCAR = np.array([182, 160, 128], dtype=np.float32)
SHADOW_TINT = np.array([0.40, 0.44, 0.54], dtype=np.float32)
HAZE = np.array([212, 216, 226], dtype=np.float32)
