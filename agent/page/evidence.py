"""What the page does with an answer's files and pictures: server paths shown by role and name, image previews."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

PREVIEW_MAX_SIDE = 2048


def scrub(message: str, labels: Mapping[str | None, str]) -> str:
    """Show uploaded files by role and name: server paths mean nothing to a visitor and should not leak.

    ``labels`` maps each path to what the visitor calls it ("the before (t1) file x.png"): LEVIR-style pairs
    share one file name across the dates, so a name alone would give both files the same name.
    """
    for path, label in sorted(labels.items(), key=lambda item: -len(str(item[0] or ""))):
        if path:
            said = re.escape(str(Path(path)))
            message = re.sub(rf"\b(?:t1|t2|mask|image) (?:file|path) {said}", lambda _, shown=label: shown, message)
            message = re.sub(said, lambda _, shown=label: shown, message)
    return message


def preview(image: np.ndarray) -> np.ndarray:
    """Shrink a picture for the browser (area interpolation keeps small changes visible as tints)."""
    longest = max(image.shape[:2])
    if longest <= PREVIEW_MAX_SIDE:
        return image
    factor = PREVIEW_MAX_SIDE / longest
    size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
