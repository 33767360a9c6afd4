"""The merged class mask on disk, one byte per pixel (100 MB for 10,000² px), written by whole tile rows.

Pixels where a date holds no data are stored as :data:`NO_DATA` (255)."""

from __future__ import annotations

import os
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
    """A scene-sized ``uint8`` class mask in a file, written by whole rows and read back by strips.

    The file is unlinked as soon as it is opened and used through its descriptor only, so the kernel frees its
    space when the process ends, however it ends: a scene killed midway (``kill -9``) leaves no 10 GB file."""

    def __init__(self, path: str | Path, height: int, width: int) -> None:
        self.path = Path(path)
        self.height, self.width = height, width
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.unlink(self.path)
        os.ftruncate(self._fd, height * width)

    @property
    def fd(self) -> int:
        if self._fd is None:
            raise ValueError(f"the scene mask {self.path} is closed")
        return self._fd

    def write_rows(self, row0: int, block: np.ndarray) -> None:
        if block.shape[1] != self.width or block.dtype != np.uint8:
            raise ValueError(f"a row block must be (rows, {self.width}) uint8, got {block.shape} {block.dtype}")
        view = memoryview(np.ascontiguousarray(block).tobytes())
        offset = row0 * self.width
        while view:
            written = os.pwrite(self.fd, view, offset)
            view, offset = view[written:], offset + written

    def _read(self, offset: int, count: int) -> bytes:
        parts, remaining = [], count
        while remaining:
            chunk = os.pread(self.fd, min(remaining, 1 << 30), offset)
            if not chunk:
                raise OSError(f"the scene mask {self.path} ends early")
            parts.append(chunk)
            offset, remaining = offset + len(chunk), remaining - len(chunk)
        return b"".join(parts)

    def read_rows(self, row0: int, row1: int) -> np.ndarray:
        data = self._read(row0 * self.width, (row1 - row0) * self.width)
        return np.frombuffer(data, dtype=np.uint8).reshape(row1 - row0, self.width).copy()

    def read_window(self, row0: int, row1: int, col0: int, col1: int) -> np.ndarray:
        out = np.empty((row1 - row0, col1 - col0), dtype=np.uint8)
        for i, row in enumerate(range(row0, row1)):
            out[i] = np.frombuffer(self._read(row * self.width + col0, col1 - col0), dtype=np.uint8)
        return out

    def strips(self, rows: int) -> Iterator[tuple[int, np.ndarray]]:
        for row0 in range(0, self.height, rows):
            yield row0, self.read_rows(row0, min(self.height, row0 + rows))

    def unlink(self) -> None:
        """Close the mask; its space is freed (the file has no name since it was opened)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
