"""Change masks and the one interface every mask provider implements.

Counts, cells and GeoJSON are only as good as the mask behind them, so a mask never travels
without its :class:`MaskSource`: who made it, with which settings, whether it knows categories,
and how far to trust it. The agent quotes that source in every answer.

A mask also carries the pair's valid-data mask (``ChangeMask.valid``): change is only ever reported where
both dates hold data. :class:`UserMaskProvider` attaches it itself; :func:`on_valid_data` wraps any other
provider so it does too.

Mask files are refused rather than half-read: data in more than one channel (unless the file is a LEVIR-MCI
colour label, whose convention is the first channel), or a georeferenced mask on another grid than the pair's
(:func:`check_mask_grid`, the one rule for every surface).
"""

from __future__ import annotations

import json
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
from tools.crs import crs_text, same_crs
from tools.pairs import ImagePair, refuse_flat_dates
from tools.raster import DEFAULT_MAX_PIXELS, Georef, InputError, RasterData, read_raster

MaskKind = Literal["auto", "levir-mci", "index", "binary"]

CalibrationFallback = Literal["all_sensors", "all_pairs"]
"""How a calibration lookup widened when no held-out pairs of the exact kind existed: over every sensor at the
pair's GSD band, or over every held-out pair."""


class MaskReading(BaseModel):
    """How a mask file's values were read: its convention, and the class a binary file's non-zero pixels take."""

    convention: Literal["levir-mci", "index", "binary"]
    binary_class: Literal["change", "road", "building"] | None = None


MadeBy = Literal["user_file", "user_scene_file", "classical", "learned_file", "deltavlm_head", "made", "unstated"]


class MaskMethod(BaseModel):
    """What made a mask and how, as facts (``MaskSource.made_by``); ``agent.answering`` words them."""

    method: Literal[
        "user_file", "user_scene_file", "classical", "learned_file", "deltavlm_head", "made", "unstated"
    ] = "unstated"
    reading: MaskReading | None = Field(None, description="A user's mask file: how its values were read.")
    changed_fraction: float | None = Field(None, description="Classical: share of the image marked changed.")
    analysed_gsd_m: float | None = Field(None, description="Classical: metres per pixel it analysed at.")
    gsd_known: bool = Field(True, description="Classical: False when the pixel size was assumed, not known.")
    min_area_m2: float | None = Field(None, description="Classical: regions under this are dropped.")
    model_name: str | None = None
    model_format: str | None = None
    runtime: str | None = None
    classes: list[str] = Field(default_factory=list, description="Learned: the classes the model marks changed.")
    threshold: float | None = Field(None, description="Learned: changed where P(change) exceeds this.")
    stated_confidence: float | None = Field(None, description="The confidence the model's owner stated.")
    certainty: float | None = Field(None, description="Learned: the mean decision certainty on this pair.")
    config: str | None = Field(None, description="DeltaVLM head: the model config's name.")
    tile_px: int | None = Field(None, description="A scene's mask: made per tile of this side.")
    overlap_px: int | None = Field(None, description="A scene's mask: context around each tile.")


class ConfidenceBasis(BaseModel):
    """Where a mask's confidence comes from, as facts; ``agent.answering`` words them for the user."""

    kind: Literal["ground_truth", "held_out", "validation", "uncalibrated", "unmeasured"] = Field(
        "unmeasured",
        description="ground_truth: the user's own mask; held_out: leave-one-dataset-out scores; validation: scores "
        "on pairs drawn from the training sets; uncalibrated: a baseline with no score; unmeasured: nothing said.",
    )
    detector: Literal["classical", "learned"] | None = None
    binary_accuracy: float | None = None
    binary_correct: int | None = None
    pairs: int | None = None
    grid_f1: float | None = None
    gsd_band: str | None = Field(None, description="The calibration's GSD band key (sub-metre, 1-5m, …).")
    sensor: str | None = Field(None, description="The calibration's sensor key (rgb8, multispectral).")
    datasets: list[str] = Field(default_factory=list, description="The held-out datasets the scores come from.")
    fallback: CalibrationFallback | None = None
    default_settings: bool = Field(True, description="False when the scores were measured with other settings.")


class MaskSource(BaseModel):
    """Provenance of a mask, carried into every answer, GeoJSON property and overlay legend."""

    provider: str = Field(description="user, classical, deltavlm-head, onnx, …")
    kind: Literal["user", "learned", "classical"]
    categorical: bool = Field(description="True when the mask names road/building per pixel.")
    confidence: float = Field(ge=0.0, le=1.0, description="How far counts and cells from it can be trusted.")
    settings: dict[str, Any] = Field(default_factory=dict)
    made_by: MaskMethod = Field(default_factory=MaskMethod, description="What made the mask and how.")
    basis: ConfidenceBasis = Field(
        default_factory=ConfidenceBasis, description="Where the confidence comes from (held-out accuracy …)."
    )
    calibration_key: str | None = Field(
        None, description="The calibration entry the confidence was read from (GSD band / sensor kind)."
    )
    measured: dict[str, float] = Field(
        default_factory=dict,
        description="Held-out scores of this kind of pair by question type: binary_accuracy (yes/no), grid_f1 (where), "
        "count_error (counts); empty when none was measured.",
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
    valid: np.ndarray | None = Field(
        None, description="H×W bool: where both dates hold data (the rules judge only there); None = everywhere."
    )


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
) -> tuple[np.ndarray, MaskReading]:
    """Class indices of a raw single-band mask and how it was read.

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
                f"cannot tell the mask convention from its values {some_values(values)}; "
                "name it with mask kind levir-mci, index or binary"
            )
    if kind == "levir-mci":
        return classes_from_label_values(raw, label_values), MaskReading(convention="levir-mci")
    if kind == "index":
        allowed = {int(c) for c in ChangeClass}
        if not values <= allowed:
            raise ValueError(f"class-index mask holds {some_values(values - allowed)}; classes are {sorted(allowed)}")
        return raw.astype(np.uint8), MaskReading(convention="index")
    if kind == "binary":
        target = ChangeClass.CHANGE
        if binary_category is not None:
            if binary_category not in CATEGORY_CLASS:
                raise ValueError(f"unknown category {binary_category!r}")
            target = CATEGORY_CLASS[binary_category]
        reading = MaskReading(convention="binary", binary_class=target.name.lower())
        return np.where(raw > 0, int(target), 0).astype(np.uint8), reading
    raise ValueError(f"unknown mask kind {kind!r}")


def check_mask_grid(mask_georef: Georef | None, pair_georef: Georef | None, path: Path, what: str = "pair") -> None:
    """A georeferenced mask must lie on the georeferenced pair's grid: same CRS and transform (1e-6)."""
    if mask_georef is None or pair_georef is None:
        return
    same_grid_crs = same_crs(mask_georef.crs, pair_georef.crs)
    same_transform = np.allclose(mask_georef.transform, pair_georef.transform, rtol=0, atol=1e-6)
    if not (same_grid_crs and same_transform):
        raise InputError(
            f"mask file {path} does not lie on the {what}'s grid: the mask is in {crs_text(mask_georef.crs)} with "
            f"transform {mask_georef.transform}, the {what} in {crs_text(pair_georef.crs)} with "
            f"{pair_georef.transform}; reproject the mask onto the first date's grid first"
        )


def mask_channel(raster: RasterData, kind: MaskKind) -> np.ndarray:
    """The one band a mask file's labels live in; data spread over several channels is refused.

    Gray stored as RGB(A) (all colour channels equal) reads as gray. Other multi-channel files are accepted
    only as LEVIR-MCI colour labels (their convention reads the first channel), and only when no other
    channel holds data where the first channel says "no change" (:func:`check_mask_channels`).
    """
    colour = [i for i, name in enumerate(raster.color_interp) if name != "alpha"] or [0]
    bands = raster.bands[colour]
    first = bands[0]
    if bands.shape[0] > 1 and not all(np.array_equal(first, other) for other in bands[1:]):
        values = {int(v) for v in np.unique(first)} if first.dtype == np.uint8 else set()
        hidden = int(np.count_nonzero((first == 0) & (bands[1:] != 0).any(axis=0)))
        check_mask_channels(raster.path, [raster.color_interp[i] for i in colour], values, hidden, kind)
    return first


def check_mask_channels(path: Path, names: list[str], first_values: set[int], hidden: int, kind: MaskKind) -> None:
    """The rule for a mask whose colour channels differ: only a LEVIR-MCI colour label with nothing hidden
    outside its first channel is read (by that channel); anything else is refused, naming the file."""
    levir = kind == "levir-mci" or (
        kind == "auto" and 128 in first_values and first_values <= set(LEVIR_MCI_LABEL_VALUES)
    )
    if levir and not hidden:
        return
    where = f"; {hidden} px have data only outside the first channel" if hidden else ""
    raise InputError(
        f"mask file {path} holds different data in its channels ({', '.join(names)}){where}; a mask must be one "
        "band (or gray stored as RGB), or a LEVIR-MCI colour label (first channel: 0 none, 128 road, 255 building)"
    )


def load_change_mask(
    path: str | Path,
    *,
    shape: tuple[int, int] | None = None,
    kind: MaskKind = "auto",
    binary_category: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    georef: Georef | None = None,
    valid: np.ndarray | None = None,
) -> ChangeMask:
    """Read a user's mask file; ``shape`` (rows, cols) and ``georef`` are the pair's, which the mask must match.

    ``valid`` is the pair's valid-data mask: the class mask is cleared outside it and carries it on.
    """
    raster = read_raster(path, max_pixels=max_pixels, role="mask", validity=False)
    if raster.bands.shape[0] not in (1, 2, 3, 4):
        raise InputError(f"mask file {raster.path} has {raster.bands.shape[0]} bands; expected 1 (or RGB(A))")
    if shape is not None and (raster.height, raster.width) != tuple(shape):
        raise InputError(
            f"mask file {raster.path} is {raster.width}×{raster.height} but the pair is {shape[1]}×{shape[0]} "
            "(width×height)"
        )
    check_mask_grid(raster.georef, georef, raster.path)
    raw = mask_channel(raster, kind)
    refuse_lossy_labels(raster.path, raw)
    if raw.dtype != np.uint8:
        if raw.min() < 0 or raw.max() > 255 or not np.all(np.equal(np.mod(raw, 1), 0)):
            raise InputError(f"mask file {raster.path} holds {raw.dtype} values that are not class labels")
        raw = raw.astype(np.uint8)
    try:
        classes, reading = classes_from_mask_file(raw, kind, binary_category=binary_category)
    except ValueError as exc:
        raise InputError(f"mask file {raster.path}: {exc}") from exc
    return restrict_to_valid(
        ChangeMask(
            class_mask=classes,
            source=MaskSource(
                provider="user",
                kind="user",
                categorical=is_categorical(classes),
                confidence=1.0,
                settings={"path": str(raster.path), "kind": kind},
                made_by=MaskMethod(method="user_file", reading=reading),
                basis=ConfidenceBasis(kind="ground_truth"),
            ),
        ),
        valid,
    )


def some_values(values: set[int], shown: int = 8) -> str:
    """A set of mask values for a message: all of a few, else the first ``shown`` and how many there are."""
    ordered = sorted(values)
    if len(ordered) <= shown:
        return str(ordered)
    return "[" + ", ".join(map(str, ordered[:shown])) + f", … ({len(ordered)} values)]"


LOSSY_SUFFIXES = (".jpg", ".jpeg")


def refuse_lossy_labels(path: Path, raw: np.ndarray) -> None:
    """A JPEG label is refused unless its values are still exactly a label convention's: JPEG compression adds
    in-between values at every edge, and reading them as change merges neighbouring objects (a JPEG copy of a
    16-building label counted 4)."""
    if Path(path).suffix.lower() not in LOSSY_SUFFIXES:
        return
    values = {int(v) for v in np.unique(raw)}
    if values <= {0, 255} or values <= {0, 1} or values <= {0, 128, 255}:
        return
    raise InputError(
        f"mask file {path} is a JPEG and holds {len(values)} different values ({some_values(values)}): lossy "
        "compression has changed its labels at every edge; use the original PNG or TIFF label"
    )


def restrict_to_valid(mask: ChangeMask, valid: np.ndarray | None) -> ChangeMask:
    """The mask with no change outside ``valid``, carrying ``valid`` for the rules and the overlay."""
    if valid is None:
        return mask
    if valid.shape != mask.class_mask.shape:
        raise ValueError(f"valid-data mask {valid.shape} does not match the class mask {mask.class_mask.shape}")
    classes = np.where(valid, mask.class_mask, 0).astype(np.uint8)
    source = mask.source.model_copy(update={"categorical": is_categorical(classes)})
    return ChangeMask(class_mask=classes, source=source, valid=valid)


class ProviderKey(BaseModel):
    """What makes two providers give the same mask for the same pair: their name and their typed settings."""

    model_config = ConfigDict(frozen=True)

    name: str
    settings: str = Field(description="The provider's settings as JSON, or its identity when it states none.")


def provider_key(provider: MaskProvider) -> ProviderKey:
    """The provider's own ``key()`` when it has one; else its identity (never shared with another provider)."""
    key = getattr(provider, "key", None)
    if callable(key):
        return key()
    return ProviderKey(name=provider.name, settings=f"instance {id(provider):x}")


class UserMaskProvider:
    """A mask the user already has, for one pair."""

    name = "user"

    def __init__(self, path: str | Path, kind: MaskKind = "auto", binary_category: str | None = None) -> None:
        self.path = Path(path)
        self.kind = kind
        self.binary_category = binary_category

    def key(self) -> ProviderKey:
        """The file (resolved, with its size and modification time: an edited mask is read again) and how to read
        it."""
        try:
            stat = self.path.stat()
            version = f"{stat.st_size}:{stat.st_mtime_ns}"
        except OSError:
            version = "missing"
        settings = json.dumps([str(self.path.resolve()), version, self.kind, self.binary_category])
        return ProviderKey(name=self.name, settings=settings)

    def provide(self, pair: ImagePair) -> ChangeMask:
        return load_change_mask(
            self.path,
            shape=pair.shape,
            kind=self.kind,
            binary_category=self.binary_category,
            georef=pair.georef,
            valid=pair.valid,
        )


class ValidDataProvider:
    """Any provider, with its mask cleared where a date has no data and the pair's valid-data mask attached."""

    def __init__(self, provider: MaskProvider) -> None:
        self.name = provider.name
        self.inner = provider

    def key(self) -> ProviderKey:
        inner = provider_key(self.inner)
        return ProviderKey(name=inner.name, settings=f"valid-data({inner.settings})")

    def provide(self, pair: ImagePair) -> ChangeMask:
        refuse_flat_dates(pair)
        mask = self.inner.provide(pair)
        if mask.valid is not None or pair.valid is None:
            return mask
        return restrict_to_valid(mask, pair.valid)


def on_valid_data(provider: MaskProvider) -> MaskProvider:
    """``provider`` such that its masks respect the pair's valid data (user masks already do)."""
    if isinstance(provider, UserMaskProvider | ValidDataProvider):
        return provider
    return ValidDataProvider(provider)
