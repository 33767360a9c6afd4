"""A small pair with two known changes (a 40×40 block at the top left, a 10×25 bar lower right) and that change as a
user mask: the answers' wording tests need exact figures, not a dataset."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def two_changed_blocks(folder: Path, size: int) -> tuple[tuple[np.ndarray, np.ndarray], Path]:
    """The two dates (``size``² RGB) and the path of their change mask, written into ``folder``."""
    rng = np.random.default_rng(3)
    before = rng.integers(60, 200, size=(size, size, 3), dtype=np.uint8)
    after = before.copy()
    after[0:40, 0:40] = 255 - after[0:40, 0:40]
    after[60:70, 60:85] = 10
    mask = np.zeros((size, size), np.uint8)
    mask[0:40, 0:40] = 255
    mask[60:70, 60:85] = 255
    path = folder / "mask.png"
    cv2.imwrite(str(path), mask)
    return (before, after), path
