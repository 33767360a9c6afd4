"""Which classical path a pair takes: the sub-metre aerial detector or the GSD-aware one.

Measured with ``python -m tools.lodo`` (README, "How good is the classical mask?"): the aerial path
(:mod:`tools.change_detection.aerial`) is far better on LEVIR-CD-like 0.5 m aerial RGB (grid F1 0.88 against
0.61), the GSD-aware path (:mod:`tools.change_detection.detector`) on 1.5–2 m and Sentinel-2 pairs. Unknown GSD
with 8-bit RGB goes to the aerial path: LEVIR-CD, DSIFN and SZTAKI all ship without a georeference, and with
their GSD hidden the aerial path scored grid F1 0.88 / 0.86 / 0.31 against the GSD-aware path's 0.61 / 0.86 /
0.63: LEVIR-like tiles, the product's main case, gain more than SZTAKI loses.
"""

from __future__ import annotations

from typing import Literal

Path = Literal["aerial", "gsd-aware"]
AERIAL_MAX_GSD_M = 1.0


def choose_path(gsd_m: float | None, sensor: str) -> Path:
    """``sensor`` is :func:`tools.change_detection.calibration.sensor_kind`'s word ("rgb8" or "multispectral")."""
    if sensor != "rgb8":
        return "gsd-aware"
    if gsd_m is None or gsd_m <= AERIAL_MAX_GSD_M:
        return "aerial"
    return "gsd-aware"
