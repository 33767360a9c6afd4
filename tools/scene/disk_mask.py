"""The merged class mask on disk, one byte per pixel (100 MB for 10,000² px), written by whole tile rows.

Pixels where a date holds no data are stored as :data:`NO_DATA` (255)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from deltavlm.rules import ChangeClass

# --------------------------------------------------------------------------------------------- disk mask


STRIP_PIXELS = 8_000_000
"""Pixels per analysis strip (rows = this / width, at least 64): bounds the labelling's memory."""
N_CLASSES = int(max(ChangeClass)) + 1
NO_DATA = 255
"""Disk-mask value of pixels where a date holds no data: no class, counted neither as changed nor as unchanged."""


class DiskMask:
    """A scene-sized ``uint8`` class mask in a file, written by whole rows and read back by strips."""

    def __init__(self, path: str | Path, height: int, width: int) -> None:
        self.path = Path(path)
        self.height, self.width = height, width
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "wb") as handle:
            handle.truncate(height * width)

    def write_rows(self, row0: int, block: np.ndarray) -> None:
        if block.shape[1] != self.width or block.dtype != np.uint8:
            raise ValueError(f"a row block must be (rows, {self.width}) uint8, got {block.shape} {block.dtype}")
        with open(self.path, "r+b") as handle:
            handle.seek(row0 * self.width)
            handle.write(np.ascontiguousarray(block).tobytes())

    def read_rows(self, row0: int, row1: int) -> np.ndarray:
        count = (row1 - row0) * self.width
        data = np.fromfile(self.path, dtype=np.uint8, count=count, offset=row0 * self.width)
        return data.reshape(row1 - row0, self.width)

    def read_window(self, row0: int, row1: int, col0: int, col1: int) -> np.ndarray:
        out = np.empty((row1 - row0, col1 - col0), dtype=np.uint8)
        with open(self.path, "rb") as handle:
            for i, row in enumerate(range(row0, row1)):
                handle.seek(row * self.width + col0)
                out[i] = np.frombuffer(handle.read(col1 - col0), dtype=np.uint8)
        return out

    def strips(self, rows: int) -> Iterator[tuple[int, np.ndarray]]:
        for row0 in range(0, self.height, rows):
            yield row0, self.read_rows(row0, min(self.height, row0 + rows))

    def unlink(self) -> None:
        self.path.unlink(missing_ok=True)
