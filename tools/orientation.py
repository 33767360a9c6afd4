"""Which map direction each side of an image faces, read from its georeference.

Compass words in a question ("the south", "north-west") name map directions; the 3×3 grid, halves and rows are
sides of the image as stored. The two agree only when the raster is north-up. A transform with a positive y
pixel size runs its rows north (south-up), and a rotation or shear term turns the whole image; on such rasters
"the south" must be answered from whichever side of the image faces south. This module finds, for each compass
direction, the image side that faces it (the nearest one when the raster is rotated or sheared, saying by how
much), and turns a region named in map terms into the region of the image that holds it.

A region key in map terms is written as on a north-up image ("row:top" is the north row, "BL" the south-west
cell), which is what the question reader produces for compass words.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tools.raster import Georef

Side = Literal["top", "bottom", "left", "right"]
Direction = Literal["north", "south", "east", "west"]
NORTH_UP: dict[str, Side] = {"north": "top", "south": "bottom", "west": "left", "east": "right"}
_OPPOSITE: dict[Side, Side] = {"top": "bottom", "bottom": "top", "left": "right", "right": "left"}
_ROW_OF: dict[Side, str] = {"top": "T", "bottom": "B"}
_COL_OF: dict[Side, str] = {"left": "L", "right": "R"}
EXACT_DEGREES = 0.5
"""A transform turned by less than this from an axis counts as exactly aligned with it."""


class Orientation(BaseModel):
    """The image side that faces each compass direction, and how far the raster is turned from that reading."""

    model_config = ConfigDict(frozen=True)

    sides: dict[str, Side] = Field(description="Compass direction → the image side facing it (nearest side).")
    rotation_deg: float = Field(
        description="Bearing of the image's top edge's outward direction, clockwise from north."
    )
    exact: bool = Field(description="False when rotated or sheared: the sides are the nearest ones.")

    @property
    def north_up(self) -> bool:
        return self.sides == NORTH_UP and self.exact

    @property
    def facing(self) -> dict[Side, Direction]:
        """Image side → the compass direction it faces."""
        return {side: direction for direction, side in self.sides.items()}  # type: ignore[misc]

    def image_region(self, key: str) -> str:
        """The image region holding the map region ``key`` (written as on a north-up image)."""
        if key.startswith("cells:"):
            return "cells:" + "+".join(self.image_region(cell) for cell in key[len("cells:") :].split("+"))
        kind, _, name = key.partition(":")
        if kind in ("row", "col", "half"):
            if name in ("middle", "center"):
                axis_vertical = (kind == "row") == (self.sides["north"] in ("top", "bottom"))
                return "row:middle" if axis_vertical else "col:center"
            direction = {v: k for k, v in NORTH_UP.items()}[name]  # type: ignore[index]
            side = self.sides[direction]
            if kind == "half":
                return f"half:{side}"
            return f"row:{side}" if side in ("top", "bottom") else f"col:{side}"
        if len(key) == 2 and key != "CC" and key[0] in "TCB" and key[1] in "LCR":
            parts = []
            if key[0] != "C":
                parts.append(self.sides["north" if key[0] == "T" else "south"])
            if key[1] != "C":
                parts.append(self.sides["west" if key[1] == "L" else "east"])
            row = next((_ROW_OF[s] for s in parts if s in _ROW_OF), "C")
            col = next((_COL_OF[s] for s in parts if s in _COL_OF), "C")
            return row + col
        return key


def orientation_of(georef: Georef | None) -> Orientation | None:
    """How the raster faces the map; None when it has no georeference (plain images are taken as north-up)."""
    if georef is None:
        return None
    a, b, _, d, e, _ = georef.transform
    det = a * e - b * d
    if not all(math.isfinite(v) for v in (a, b, d, e)) or det == 0:
        return None
    # pixel-space direction (d_col, d_row) of one map unit north (0, 1) and east (1, 0): the inverse transform
    north = (-b / det, a / det)
    east = (e / det, -d / det)
    sides: dict[str, Side] = {}
    for name, (dc, dr) in (("north", north), ("east", east)):
        side: Side = ("top" if dr < 0 else "bottom") if abs(dr) >= abs(dc) else ("left" if dc < 0 else "right")
        sides[name] = side
    if {sides["north"], sides["east"]} in ({"top", "bottom"}, {"left", "right"}):  # a shear past 45°: no honest pair
        return Orientation(sides=dict(NORTH_UP), rotation_deg=_bearing_of_top(a, b, d, e), exact=False)
    sides["south"], sides["west"] = _OPPOSITE[sides["north"]], _OPPOSITE[sides["east"]]
    bearing = _bearing_of_top(a, b, d, e)
    aligned = min(abs(bearing - k) for k in (0.0, 90.0, 180.0, 270.0, 360.0)) < EXACT_DEGREES
    orthogonal = abs(a * b + d * e) <= 1e-9 * max(a * a + d * d, b * b + e * e)
    return Orientation(sides=sides, rotation_deg=round(bearing, 1), exact=aligned and orthogonal)


def _bearing_of_top(a: float, b: float, d: float, e: float) -> float:
    """Compass bearing (degrees clockwise from north) of the direction the image's top edge faces (row decreasing)."""
    up_east, up_north = -b, -e
    return math.degrees(math.atan2(up_east, up_north)) % 360.0
