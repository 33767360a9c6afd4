"""How the detector sees pixels, shared by training, export and inference without importing torch: the input
normalisation, the tile the sidecar states, and the smallest change region kept."""

from __future__ import annotations

MEAN = (0.498, 0.498, 0.498)
STD = (0.502, 0.502, 0.502)
"""EfficientNet-Lite's input normalisation: (pixel − 127) / 128, written per band for the sidecar (pixels / 255)."""
TILE = 256
OVERLAP = 32
SIZE_MULTIPLE = 16
"""The network downsamples by 16: inputs are padded to a multiple of it."""
MIN_OBJECT_PIXELS = 12
"""Changed regions under this many pixels are dropped: a learned model's speckle is not change."""
