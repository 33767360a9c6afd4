"""Synthetic change the Self-Pair / copy-paste way: objects and patches cut from other images pasted into a copy
of a real image, with feathered blending and a cast shadow, so the label is known exactly.

A handful of labelled pairs teach a network little; pasting lets every real image become many changed pairs, and
the objects cut along real change labels (buildings, mostly) look like what changes in the imagery. Everything is
drawn from one seeded generator: the same seed gives the same pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Cutout:
    """An object to paste: its RGB pixels and where inside its box it is (bool)."""

    rgb: np.ndarray
    mask: np.ndarray


def cutouts_from_labels(images: list[np.ndarray], labels: list[np.ndarray], min_px: int = 30) -> list[Cutout]:
    """Every labelled change region of a reasonable size (``min_px`` to a quarter of the image), cut from the
    after-date with its outline."""
    found = []
    for image, label in zip(images, labels, strict=True):
        count, components, stats, _ = cv2.connectedComponentsWithStats(label.astype(np.uint8), connectivity=8)
        limit = label.size // 4
        for i in range(1, count):
            x, y, w, h, area = stats[i]
            if min_px <= area <= limit:
                box = components[y : y + h, x : x + w] == i
                found.append(Cutout(rgb=np.ascontiguousarray(image[y : y + h, x : x + w]), mask=box))
    return found


def _random_shape(rng: np.random.Generator, size: int) -> np.ndarray:
    """A filled rotated rectangle, ellipse or polygon inside a size×size box (bool)."""
    mask = np.zeros((size, size), np.uint8)
    centre = (size / 2, size / 2)
    kind = rng.integers(3)
    if kind == 0:
        w, h = rng.uniform(0.4, 0.95, 2) * size
        box = cv2.boxPoints((centre, (float(w), float(h)), float(rng.uniform(0, 90))))
        cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 1)
    elif kind == 1:
        axes = (int(rng.uniform(0.2, 0.48) * size), int(rng.uniform(0.2, 0.48) * size))
        cv2.ellipse(mask, (size // 2, size // 2), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    else:
        n = int(rng.integers(4, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radius = rng.uniform(0.25, 0.48, n) * size
        points = np.stack([centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)], axis=1)
        cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def _patch_cutout(donors: list[np.ndarray], rng: np.random.Generator, max_size: int) -> Cutout:
    """A random shape filled with a patch of another image, or with a flat roof-like colour and a little texture."""
    size = int(rng.integers(8, max(max_size, 9)))
    mask = _random_shape(rng, size)
    donor = donors[int(rng.integers(len(donors)))]
    height, width = donor.shape[:2]
    if height > size and width > size and rng.random() < 0.6:
        y, x = int(rng.integers(height - size)), int(rng.integers(width - size))
        rgb = donor[y : y + size, x : x + size]
    else:
        colour = rng.integers(0, 256, 3).astype(np.float32)
        rgb = np.clip(colour + rng.normal(0, 6, (size, size, 3)), 0, 255).astype(np.uint8)
    return Cutout(rgb=np.ascontiguousarray(rgb), mask=mask)


def paste(image: np.ndarray, label: np.ndarray, cutout: Cutout, rng: np.random.Generator, shadow: bool = True) -> None:
    """Paste one cutout at a random place (in place): feathered alpha, optional shadow, label where alpha ≥ 0.5."""
    height, width = image.shape[:2]
    mask = cutout.mask
    rgb = cutout.rgb
    if rng.random() < 0.5:
        turns = int(rng.integers(4))
        mask, rgb = np.rot90(mask, turns), np.rot90(rgb, turns)
    h, w = mask.shape
    if h >= height or w >= width:
        return
    y, x = int(rng.integers(height - h)), int(rng.integers(width - w))
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), float(rng.uniform(0.4, 1.2)))[..., None]
    region = image[y : y + h, x : x + w].astype(np.float32)
    if shadow and rng.random() < 0.6:
        dy, dx = (int(v) for v in rng.integers(1, max(3, min(h, w) // 3) + 1, 2) * rng.choice([-1, 1], 2))
        shade = np.zeros((height, width), np.float32)
        ys, xs = np.nonzero(mask)
        ys, xs = np.clip(ys + y + dy, 0, height - 1), np.clip(xs + x + dx, 0, width - 1)
        shade[ys, xs] = 1.0
        shade = cv2.GaussianBlur(shade, (0, 0), 1.0)[..., None] * rng.uniform(0.25, 0.55)
        image[:] = np.clip(image.astype(np.float32) * (1.0 - shade), 0, 255).astype(np.uint8)
        region = image[y : y + h, x : x + w].astype(np.float32)
    blended = alpha * rgb.astype(np.float32) + (1.0 - alpha) * region
    image[y : y + h, x : x + w] = np.clip(blended, 0, 255).astype(np.uint8)
    label[y : y + h, x : x + w] |= alpha[..., 0] >= 0.5


def random_crop(image: np.ndarray, size: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left corner of a random size×size window (0 where the image is smaller)."""
    height, width = image.shape[:2]
    return int(rng.integers(max(height - size, 0) + 1)), int(rng.integers(max(width - size, 0) + 1))


def fit(image: np.ndarray, size: int) -> np.ndarray:
    """At least size×size: reflect-pad a smaller image."""
    height, width = image.shape[:2]
    if height >= size and width >= size:
        return image
    pads = ((0, max(size - height, 0)), (0, max(size - width, 0))) + ((0, 0),) * (image.ndim - 2)
    return np.pad(image, pads, mode="reflect")


def copy_paste_pair(
    background: np.ndarray,
    donors: list[np.ndarray],
    cutouts: list[Cutout],
    rng: np.random.Generator,
    size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(before, after, change label) from a random crop of ``background`` with 1–6 pasted objects.

    Half the time the dates are swapped, so objects disappear as often as they appear.
    """
    background = fit(background, size)
    y, x = random_crop(background, size, rng)
    before = np.ascontiguousarray(background[y : y + size, x : x + size])
    after = before.copy()
    label = np.zeros((size, size), bool)
    for _ in range(int(rng.integers(1, 7))):
        if cutouts and rng.random() < 0.5:
            cutout = cutouts[int(rng.integers(len(cutouts)))]
        else:
            cutout = _patch_cutout(donors, rng, size // 3)
        paste(after, label, cutout, rng)
    if rng.random() < 0.5:
        before, after = after, before
    return before, after, label
