"""Image preprocessing as released: bicubic resize to the model's size, then CLIP mean/std.

The release resizes PIL images with torchvision's bicubic ``Resize`` (which calls PIL's ``Image.resize``
with ``BICUBIC``), converts them with ``ToTensor`` (÷255) and normalises with the CLIP mean/std. We call
PIL's resize itself: PIL's fixed-point, 8-bit-rounded two-pass filter is what the release's weights saw,
and a re-implementation in torch differs by a grey level on a fraction of a percent of the values. The
arithmetic after the resize is the release's, in float32. Any input size works.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Check an image is 8-bit RGB (H×W×3), promoting single-channel images; reject everything else."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected an 8-bit image (uint8), got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 RGB image, got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"empty image of shape {image.shape}")
    return image


def preprocess_image(image: np.ndarray, image_size: int) -> torch.Tensor:
    """One H×W×3 uint8 image → a normalised 3×S×S float tensor."""
    rgb = as_rgb_uint8(image)
    resized = Image.fromarray(np.ascontiguousarray(rgb)).resize((image_size, image_size), Image.Resampling.BICUBIC)
    pixels = torch.from_numpy(np.asarray(resized).copy()).permute(2, 0, 1).float().div(255.0)
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
    std = torch.tensor(CLIP_STD).view(3, 1, 1)
    return (pixels - mean) / std


def preprocess_images(images: Sequence[np.ndarray], image_size: int) -> torch.Tensor:
    """A batch of images of any sizes → B×3×S×S."""
    if not images:
        raise ValueError("no images to preprocess")
    return torch.stack([preprocess_image(image, image_size) for image in images])


def preprocess_pair(t1: np.ndarray, t2: np.ndarray, image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A bi-temporal pair → two 1×3×S×S tensors; the two dates must cover the same footprint."""
    first, second = as_rgb_uint8(t1), as_rgb_uint8(t2)
    if first.shape != second.shape:
        raise ValueError(f"t1 and t2 differ in size: {first.shape} vs {second.shape}")
    return preprocess_image(first, image_size)[None], preprocess_image(second, image_size)[None]
