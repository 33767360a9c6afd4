"""Nuisances a change detector must ignore, applied to either date of a training pair: brightness, gamma,
colour and season-like shifts, blur, sensor noise, JPEG, a 1–3 px shift; and the flips and rotations applied to
both dates (and the label) together.

Each takes an H×W×3 uint8 image and a seeded ``numpy`` generator, so a training run is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Nuisance = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 255).astype(np.uint8)


def brightness(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gain and offset: another exposure or sun elevation."""
    return _to_u8(image.astype(np.float32) * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25))


def gamma(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A tone curve: another sensor's or processing chain's response."""
    lut = _to_u8(255.0 * (np.arange(256) / 255.0) ** rng.uniform(0.6, 1.6))
    return lut[image]


def colour_shift(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-band gains plus a hue and saturation change: white balance, haze, a greener or browner season."""
    x = image.astype(np.float32) * rng.uniform(0.8, 1.2, size=3)
    hsv = cv2.cvtColor(_to_u8(x), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-10, 10)) % 180
    hsv[..., 1] *= rng.uniform(0.6, 1.3)
    return cv2.cvtColor(_to_u8(hsv), cv2.COLOR_HSV2RGB)


def blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Defocus or a coarser resampling."""
    return cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.6))


def noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise, σ 2–8 grey levels."""
    return _to_u8(image.astype(np.float32) + rng.normal(0, rng.uniform(2, 8), image.shape))


def jpeg(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """JPEG compression at quality 30–80."""
    ok, data = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 81))])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])


def shift(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A misregistration of 1–3 px in a random direction (sub-pixel, bilinear)."""
    distance = rng.uniform(1, 3)
    angle = rng.uniform(0, 2 * np.pi)
    matrix = np.float32([[1, 0, distance * np.cos(angle)], [0, 1, distance * np.sin(angle)]])
    height, width = image.shape[:2]
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


PHOTOMETRIC: dict[str, Nuisance] = {
    "brightness": brightness,
    "gamma": gamma,
    "colour": colour_shift,
    "blur": blur,
    "noise": noise,
    "jpeg": jpeg,
}
NUISANCES: dict[str, Nuisance] = {**PHOTOMETRIC, "shift": shift}


def random_nuisances(
    image: np.ndarray, rng: np.random.Generator, probability: float = 0.35, allow_shift: bool = True
) -> np.ndarray:
    """Each nuisance applied with ``probability``, in a fixed order."""
    for name, nuisance in NUISANCES.items():
        if (allow_shift or name != "shift") and rng.random() < probability:
            image = nuisance(image, rng)
    return image


def same_geometry(arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """One random flip / 90° rotation applied to every array (both dates and the label)."""
    k = int(rng.integers(4))
    flip = bool(rng.integers(2))
    out = []
    for a in arrays:
        a = np.rot90(a, k, axes=(0, 1))
        if flip:
            a = a[:, ::-1]
        out.append(np.ascontiguousarray(a))
    return out
