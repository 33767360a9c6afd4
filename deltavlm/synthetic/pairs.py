"""What the generator hands out: a synthetic pair, its placed changes, and the files of an example."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from deltavlm import rules

MIN_SIZE = 64
"""Smallest tile side: below it a house and a road no longer both fit."""

GSD_M = 0.5
"""Ground sampling distance the object sizes assume (LEVIR-CD), metres per pixel."""

SPLITS: tuple[str, ...] = ("train", "val", "test")

EXAMPLE_CRS = "EPSG:32614"
"""UTM zone 14N: central Texas, where the LEVIR-CD scenes were taken."""

EXAMPLE_ORIGIN: tuple[float, float] = (620000.0, 3350000.0)
"""Upper-left corner (easting, northing) of the example GeoTIFFs, in metres."""


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
