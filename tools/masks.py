"""Change masks and the one interface every mask provider implements.

Counts, cells and GeoJSON are only as good as the mask behind them, so a mask never travels
without its :class:`MaskSource`: who made it, with which settings, whether it knows categories,
and how far to trust it. The agent quotes that source in every answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from deltavlm.rules import (
    CATEGORY_CLASS,
    LEVIR_MCI_LABEL_VALUES,
    ChangeClass,
    classes_from_label_values,
    is_categorical,
)
from tools.pairs import ImagePair
from tools.raster import DEFAULT_MAX_PIXELS, InputError, read_raster

MaskKind = Literal["auto", "levir-mci", "index", "binary"]


class MaskSource(BaseModel):
    """Provenance of a mask, carried into every answer, GeoJSON property and overlay legend."""

    provider: str = Field(description="user, classical, deltavlm-head, onnx, …")
    kind: Literal["user", "learned", "classical"]
    categorical: bool = Field(description="True when the mask names road/building per pixel.")
    confidence: float = Field(ge=0.0, le=1.0, description="How far counts and cells from it can be trusted.")
    settings: dict[str, Any] = Field(default_factory=dict)
    detail: str = ""
    confidence_reason: str = Field(
        "", description="Where the confidence comes from, in words an answer can quote (held-out accuracy …)."
    )
    calibration_key: str | None = Field(
        None, description="The calibration entry the confidence was read from (GSD band / sensor kind)."
    )
    gsd_m: float | None = Field(None, description="Metres per pixel the mask was made at; None = unknown.")
    min_object_pixels: int | None = Field(
        None, ge=1, description="Smallest object the provider resolves, in pixels; counts ignore smaller ones."
    )
    reliable: bool = Field(
        True, description="False when held-out accuracy for this kind of pair is too low to state facts plainly."
    )


class ChangeMask(BaseModel):
    """A class mask (``deltavlm.rules.ChangeClass`` per pixel) and where it came from."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    class_mask: np.ndarray
    source: MaskSource


@runtime_checkable
class MaskProvider(Protocol):
    """Anything that turns an image pair into a change mask."""

    name: str

    def provide(self, pair: ImagePair) -> ChangeMask: ...


def classes_from_mask_file(
    raw: np.ndarray,
    kind: MaskKind = "auto",
    *,
    binary_category: str | None = None,
    label_values: Mapping[int, ChangeClass] = LEVIR_MCI_LABEL_VALUES,
) -> tuple[np.ndarray, str]:
    """Class indices of a raw single-band mask and a note of how it was read.

    ``auto`` reads values {0, 128, 255} with 128 present as LEVIR-MCI, small integers up to 3 as class
    indices, and two-valued masks (0/1 or 0/255) as binary change with no category, because a
    two-valued file cannot say whether 255 means "building" (LEVIR-MCI) or "any change" (DSIFN).
    """
    values = {int(v) for v in np.unique(raw)}
    if kind == "auto":
        if 128 in values and values <= set(label_values):
            kind = "levir-mci"
        elif values <= {0, 1} or values <= {0, 255}:
            kind = "binary"
        elif values <= {int(c) for c in ChangeClass}:
            kind = "index"
        else:
            raise ValueError(
                f"cannot tell the mask convention from its values {sorted(values)[:10]}; "
                "name it with mask kind levir-mci, index or binary"
            )
    if kind == "levir-mci":
        return classes_from_label_values(raw, label_values), "LEVIR-MCI values (0 none, 128 road, 255 building)"
    if kind == "index":
        allowed = {int(c) for c in ChangeClass}
        if not values <= allowed:
            raise ValueError(f"class-index mask holds {sorted(values - allowed)}; classes are {sorted(allowed)}")
        return raw.astype(np.uint8), "class indices (0 none, 1 road, 2 building, 3 unknown category)"
    if kind == "binary":
        target = ChangeClass.CHANGE
        if binary_category is not None:
            if binary_category not in CATEGORY_CLASS:
                raise ValueError(f"unknown category {binary_category!r}")
            target = CATEGORY_CLASS[binary_category]
        note = f"binary (non-zero = {target.name.lower()})"
        return np.where(raw > 0, int(target), 0).astype(np.uint8), note
    raise ValueError(f"unknown mask kind {kind!r}")


def load_change_mask(
    path: str | Path,
    *,
    shape: tuple[int, int] | None = None,
    kind: MaskKind = "auto",
    binary_category: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ChangeMask:
    """Read a user's mask file; ``shape`` (rows, cols) is the pair's, which the mask must match."""
    raster = read_raster(path, max_pixels=max_pixels, role="mask")
    if raster.bands.shape[0] not in (1, 3, 4):
        raise InputError(f"mask file {raster.path} has {raster.bands.shape[0]} bands; expected 1 (or RGB(A))")
    if shape is not None and (raster.height, raster.width) != tuple(shape):
        raise InputError(
            f"mask file {raster.path} is {raster.width}×{raster.height} but the pair is {shape[1]}×{shape[0]} "
            "(width×height)"
        )
    raw = raster.bands[0]
    if raw.dtype != np.uint8:
        if raw.min() < 0 or raw.max() > 255 or not np.all(np.equal(np.mod(raw, 1), 0)):
            raise InputError(f"mask file {raster.path} holds {raw.dtype} values that are not class labels")
        raw = raw.astype(np.uint8)
    try:
        classes, note = classes_from_mask_file(raw, kind, binary_category=binary_category)
    except ValueError as exc:
        raise InputError(f"mask file {raster.path}: {exc}") from exc
    return ChangeMask(
        class_mask=classes,
        source=MaskSource(
            provider="user",
            kind="user",
            categorical=is_categorical(classes),
            confidence=1.0,
            settings={"path": str(raster.path), "kind": kind},
            detail=f"user-supplied mask read as {note}; taken as ground truth",
            confidence_reason="a mask you supplied is taken as ground truth",
        ),
    )


class UserMaskProvider:
    """A mask the user already has, for one pair."""

    name = "user"

    def __init__(self, path: str | Path, kind: MaskKind = "auto", binary_category: str | None = None) -> None:
        self.path = Path(path)
        self.kind = kind
        self.binary_category = binary_category

    def provide(self, pair: ImagePair) -> ChangeMask:
        return load_change_mask(self.path, shape=pair.shape, kind=self.kind, binary_category=self.binary_category)
