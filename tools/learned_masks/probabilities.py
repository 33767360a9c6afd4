"""Detector outputs to class masks: tiled inference with blended overlaps (no seams at tile borders),
probabilities from logits, and the change threshold."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from deltavlm.rules import ChangeClass
from tools.learned_masks.sidecar import CLASS_VALUES


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering ``length`` with tiles of ``tile`` sharing at least ``overlap`` pixels."""
    if length <= tile:
        return [0]
    stride = max(tile - overlap, 1)
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def blend_window(height: int, width: int, overlap: int) -> np.ndarray:
    """Per-pixel weights of one tile: 1 inside, falling linearly to a small floor over ``overlap``/2 at the rim.

    Predictions near a tile's edge see less context, so where tiles overlap the more central one counts more;
    the floor keeps image-border pixels (covered by one tile only) defined.
    """
    ramp = max(overlap // 2, 1)
    ys = np.minimum(np.arange(height), np.arange(height)[::-1]) + 1
    xs = np.minimum(np.arange(width), np.arange(width)[::-1]) + 1
    wy = np.clip(ys / ramp, 0.02, 1.0)
    wx = np.clip(xs / ramp, 0.02, 1.0)
    return np.minimum(wy[:, None], wx[None, :]).astype(np.float32)


def tiled_probabilities(
    shape: tuple[int, int],
    tile: tuple[int, int],
    overlap: int,
    predict: Callable[[list[tuple[int, int]]], list[np.ndarray]],
    channels: int,
    batch_size: int,
) -> np.ndarray:
    """Blend per-tile C×h×w probabilities into C×H×W; ``predict`` gets a batch of (row, col) tile origins."""
    height, width = shape
    th, tw = tile
    origins = [(y, x) for y in tile_starts(height, th, overlap) for x in tile_starts(width, tw, overlap)]
    window = blend_window(th, tw, overlap)
    total = np.zeros((channels, max(height, th), max(width, tw)), dtype=np.float32)
    weight = np.zeros((max(height, th), max(width, tw)), dtype=np.float32)
    for i in range(0, len(origins), batch_size):
        batch = origins[i : i + batch_size]
        for (y, x), probs in zip(batch, predict(batch), strict=True):
            total[:, y : y + th, x : x + tw] += probs * window
            weight[y : y + th, x : x + tw] += window
    return total[:, :height, :width] / np.maximum(weight[:height, :width], 1e-12)


def softmax(logits: np.ndarray, axis: int) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def class_mask_from_probabilities(probs: np.ndarray, names: Sequence[str], threshold: float) -> np.ndarray:
    """Changed where 1 − P(background) > ``threshold``; the changed class is the likeliest non-background one."""
    background = list(names).index("background")
    p_change = 1.0 - probs[background]
    others = [i for i in range(len(names)) if i != background]
    best = np.asarray(others)[np.argmax(probs[others], axis=0)]
    lut = np.array([int(CLASS_VALUES[n]) for n in names], dtype=np.uint8)
    return np.where(p_change > threshold, lut[best], int(ChangeClass.BACKGROUND)).astype(np.uint8)


def decision_certainty(p_change: np.ndarray, floor: float = 0.05) -> float:
    """Mean |2p − 1| over pixels the model thought might have changed (p ≥ ``floor``); 1 when none did."""
    considered = p_change[p_change >= floor]
    if considered.size == 0:
        return 1.0
    return float(np.abs(2.0 * considered - 1.0).mean())


def drop_small_regions(classes: np.ndarray, min_pixels: int) -> np.ndarray:
    """The class mask with changed regions (8-connected) under ``min_pixels`` set to background."""
    import cv2

    changed = (classes != int(ChangeClass.BACKGROUND)).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(changed, connectivity=8)
    small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < min_pixels)
    small = small[small != 0]
    if small.size == 0:
        return classes
    return np.where(np.isin(labels, small), int(ChangeClass.BACKGROUND), classes).astype(classes.dtype)
