"""The tiling plan: a scene cut into tiles of ``tile`` px, each read with ``overlap`` px of context."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from rasterio.windows import Window

from tools.raster import InputError

# ------------------------------------------------------------------------------------------------ tiles


class SceneTile(BaseModel):
    """One tile: its own pixels (``core``) and the larger window read for context (``read``), as
    ``(row_off, col_off, height, width)`` in scene pixels."""

    model_config = ConfigDict(frozen=True)

    row: int
    col: int
    core: tuple[int, int, int, int]
    read: tuple[int, int, int, int]

    def core_in_read(self) -> tuple[slice, slice]:
        """Where the core lies inside the read window."""
        r0, c0 = self.core[0] - self.read[0], self.core[1] - self.read[1]
        return slice(r0, r0 + self.core[2]), slice(c0, c0 + self.core[3])


def check_tiling(tile: int, overlap: int) -> None:
    """Refuse tilings that cannot work, before any file is opened."""
    if tile < 16:
        raise InputError(f"tile size {tile} px is too small; use at least 16")
    if not 0 <= overlap < tile:
        raise InputError(f"overlap {overlap} px must lie in [0, tile size {tile})")


def plan_tiles(height: int, width: int, tile: int, overlap: int) -> list[SceneTile]:
    """Row-major tiles partitioning the scene; each read window adds ``overlap`` px of context per side."""
    check_tiling(tile, overlap)
    tiles = []
    for row, r0 in enumerate(range(0, height, tile)):
        for col, c0 in enumerate(range(0, width, tile)):
            h, w = min(tile, height - r0), min(tile, width - c0)
            rr0, cc0 = max(0, r0 - overlap), max(0, c0 - overlap)
            rr1, cc1 = min(height, r0 + h + overlap), min(width, c0 + w + overlap)
            tiles.append(SceneTile(row=row, col=col, core=(r0, c0, h, w), read=(rr0, cc0, rr1 - rr0, cc1 - cc0)))
    return tiles


def window_of(span: tuple[int, int, int, int]) -> Window:
    return Window(span[1], span[0], span[3], span[2])
