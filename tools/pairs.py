"""Image pairs: one loader for PNG/JPEG/TIFF/GeoTIFF, turning two dates into aligned 8-bit RGB.

Display and the model both want 8-bit RGB, while archives deliver 16-bit and multi-band imagery.
The scaling rule is stated once here: when both dates are 8-bit their bands pass unchanged; otherwise
EACH date is stretched on its own, per band, linearly from its 2nd to its 98th percentile over its valid
pixels, so an 8-bit date and a 16-bit copy of the same scene come out alike and the answer does not
depend on the bit depth or the dynamic range a date was delivered in. (A date-wide brightening is then
normalised away; the change detectors look for local change, not for exposure.)

The pair's valid part is where both dates hold data (:mod:`tools.raster`); pixels outside it are zeroed in
both dates, so no detector sees change where a date has none, and the pair carries that mask to the
rules, the overlay and the exports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from deltavlm.serving.hashing import pair_hash
from tools.crs import crs_text, same_crs
from tools.naming import scene_name
from tools.raster import DEFAULT_MAX_PIXELS, MIN_SIDE, Georef, InputError, RasterData, read_raster

STRETCH_PERCENTILES = (2.0, 98.0)
STRETCH_RANGE = (48, 207)
"""The 8-bit values the two percentiles map to. The 48 levels kept below and above them hold what is darker or
brighter than almost all of a date (a new white roof, a saturated object), which a stretch to 0–255 clipped to the
level of the date's extremes and so erased from the change (tests/tools/test_obvious_changes.py). Stretching
between the 0.1th and 99.9th percentiles instead kept those objects but packed ordinary ground into so few levels
that JPEG, noise and tone changes read as change on every made no-change Sentinel-2 pair."""


class ImagePair(BaseModel):
    """Two co-registered dates of one place as 8-bit RGB (H×W×3), with their georeference."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    t1: np.ndarray
    t2: np.ndarray
    georef: Georef | None = None
    t1_path: Path | None = None
    t2_path: Path | None = None
    pair_id: str = Field(description="Content hash of both dates: the key of every per-pair cache.")
    scaling: str = Field("none", description="How the pixels were brought to 8-bit RGB.")
    gsd_m: float | None = Field(
        None, gt=0, description="Metres per pixel: from the georeference, else as the caller gave it; None = unknown."
    )
    valid: np.ndarray | None = Field(
        None, description="H×W bool, True where both dates hold data; None when every pixel does."
    )
    valid_id: str | None = Field(
        None, description="Content hash of ``valid`` (None with it), made once at load: part of every per-pair key."
    )
    scene: str | None = Field(
        None, description="The scene's name when the caller gives one (a batch's unique pair id); see ``name``."
    )
    grey_date: Literal["t1", "t2"] | None = Field(
        None, description="The date that had no colour, when the other had: both were then compared in grey."
    )

    @property
    def valid_fraction(self) -> float:
        """Share of the pixels where both dates hold data (1.0 when all do)."""
        return 1.0 if self.valid is None else float(np.count_nonzero(self.valid)) / self.valid.size

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.t1.shape[0]), int(self.t1.shape[1])

    @property
    def name(self) -> str:
        """What exports call the pair: the caller's name, else the scene of t1 (tools.naming.scene_name)."""
        if self.scene:
            return self.scene
        return scene_name(self.t1_path) if self.t1_path else self.pair_id[:12]


def load_pair(
    t1: str | Path,
    t2: str | Path,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    rgb_bands: Sequence[int] | None = None,
    gsd_m: float | None = None,
) -> ImagePair:
    """Read and check two dates; ``rgb_bands`` (1-based) picks red, green, blue from multi-band files.

    ``gsd_m`` (metres per pixel) is used when the files carry no georeference; a georeference wins.
    """
    first = read_raster(t1, max_pixels=max_pixels, role="t1")
    second = read_raster(t2, max_pixels=max_pixels, role="t2")
    _check_aligned(first, second)
    rgb1 = _rgb_bands(first, "t1", rgb_bands)
    rgb2 = _rgb_bands(second, "t2", rgb_bands)
    valid = _pair_valid(first.valid, second.valid, f"t1 {first.path} and t2 {second.path}")
    rgb1, rgb2, colour, grey_date = comparable_dates(
        (rgb1, first.valid, f"t1 file {first.path}"), (rgb2, second.valid, f"t2 file {second.path}")
    )
    (img1, img2), scaling = to_rgb8(rgb1, rgb2, valid=(first.valid, second.valid))
    scaling += colour
    _zero_outside(valid, img1, img2)
    return ImagePair(
        t1=img1,
        t2=img2,
        georef=first.georef,
        t1_path=first.path,
        t2_path=second.path,
        pair_id=pair_hash(img1, img2),
        scaling=scaling,
        valid=valid,
        valid_id=valid_hash(valid),
        gsd_m=pair_gsd(first.georef, gsd_m),
        grey_date=grey_date,
    )


def valid_hash(valid: np.ndarray | None) -> str | None:
    """The content hash of a valid-data mask, taken once when the pair is made (a 4096² mask takes about 25 ms,
    and every turn keys the pair store again)."""
    return None if valid is None else hashlib.sha256(np.ascontiguousarray(valid).tobytes()).hexdigest()[:16]


def pair_gsd(georef: Georef | None, given_m: float | None) -> float | None:
    """The pair's metres per pixel: from its georeference when that has a metric size, else ``given_m``."""
    from tools.gsd import check_gsd, gsd_from_georef

    if given_m is not None:
        given_m = check_gsd(given_m)
    if georef is not None:
        measured = gsd_from_georef(georef)
        if measured is not None:
            return measured
    return given_m


def with_gsd(pair: ImagePair, given_m: float | None) -> ImagePair:
    """The pair with the metres per pixel a user gave, unless its georeference states one (that wins).

    Every front-end calls this, so the GSD a user gives reaches the mask's routing, scale and confidence, not only
    the areas.
    """
    if given_m is None:
        return pair
    gsd = pair_gsd(pair.georef, given_m)
    return pair if gsd == pair.gsd_m else pair.model_copy(update={"gsd_m": gsd})


def _pair_valid(first: np.ndarray | None, second: np.ndarray | None, what: str) -> np.ndarray | None:
    """Where both dates hold data; refused when nowhere."""
    valid = (first if second is None else second) if first is None or second is None else first & second
    if valid is None or valid.all():
        return None
    if not valid.any():
        raise InputError(f"{what} share no valid pixel (where one has data, the other has none); nothing to compare")
    return valid


def _zero_outside(valid: np.ndarray | None, *images: np.ndarray) -> None:
    if valid is not None:
        for image in images:
            image[~valid] = 0


def pair_from_arrays(
    t1: np.ndarray,
    t2: np.ndarray,
    georef: Georef | None = None,
    valid: np.ndarray | None = None,
    gsd_m: float | None = None,
) -> ImagePair:
    """Build a pair from in-memory images (H×W, H×W×3 or H×W×4; any numeric type); ``gsd_m`` as in load_pair.

    Invalid pixels are NaN/inf (float images), an alpha of 0 (H×W×4), or False in ``valid`` (H×W bool).
    """
    bands, masks = [], []
    for role, image in (("t1", t1), ("t2", t2)):
        try:
            image = np.asarray(image)
        except ValueError as exc:  # a ragged nested list
            raise InputError(f"{role} array is not a regular grid of numbers ({exc})") from None
        if image.dtype.kind not in "uif":
            raise InputError(
                f"{role} array holds {image.dtype} values; expected numbers (unsigned or signed integers, or floats)"
                + ("; take the amplitude (np.abs) of complex radar data first" if image.dtype.kind == "c" else "")
            )
        alpha = None
        if image.ndim == 2:
            image = np.repeat(image[None], 3, axis=0)
        elif image.ndim == 3 and image.shape[2] in (3, 4):
            alpha = image[..., 3] if image.shape[2] == 4 else None
            image = np.moveaxis(image[..., :3], 2, 0)
        else:
            raise InputError(f"{role} array has shape {image.shape}; expected H×W, H×W×3 or H×W×4")
        if min(image.shape[1:]) < MIN_SIDE:
            raise InputError(
                f"{role} array is {image.shape[2]}×{image.shape[1]} px; the 3×3 grid needs at least "
                f"{MIN_SIDE}×{MIN_SIDE}"
            )
        mask = np.isfinite(image).all(axis=0) if np.issubdtype(image.dtype, np.floating) else None
        if alpha is not None:
            mask = alpha > 0 if mask is None else mask & (alpha > 0)
        if mask is not None and not mask.any():
            raise InputError(f"{role} array has no valid pixel (all NaN or transparent); nothing to analyse")
        bands.append(image)
        masks.append(None if mask is None or mask.all() else mask)
    if bands[0].shape != bands[1].shape:
        raise InputError(
            f"t1 and t2 differ in size: t1 is {bands[0].shape[2]}×{bands[0].shape[1]}, "
            f"t2 is {bands[1].shape[2]}×{bands[1].shape[1]} (width×height)"
        )
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != bands[0].shape[1:]:
            raise InputError(f"valid mask has shape {valid.shape}; the pair is {bands[0].shape[1:]}")
        masks = [valid if m is None else m & valid for m in masks]
    pair_valid = _pair_valid(masks[0], masks[1], "t1 and t2")
    first, second, colour, grey_date = comparable_dates(
        (bands[0], masks[0], "t1 array"), (bands[1], masks[1], "t2 array")
    )
    (img1, img2), scaling = to_rgb8(first, second, valid=(masks[0], masks[1]))
    scaling += colour
    _zero_outside(pair_valid, img1, img2)
    return ImagePair(
        t1=img1,
        t2=img2,
        georef=georef,
        pair_id=pair_hash(img1, img2),
        scaling=scaling,
        valid=pair_valid,
        valid_id=valid_hash(pair_valid),
        gsd_m=pair_gsd(georef, gsd_m),
        grey_date=grey_date,
    )


def as_pair(pair: ImagePair | Sequence) -> ImagePair:
    """Accept what users naturally pass: an ImagePair, two paths, or two arrays."""
    if isinstance(pair, ImagePair):
        return pair
    if isinstance(pair, Sequence) and not isinstance(pair, str | bytes) and len(pair) == 2:
        first, second = pair
        if isinstance(first, str | Path) and isinstance(second, str | Path):
            return load_pair(first, second)
        if isinstance(first, np.ndarray) and isinstance(second, np.ndarray):
            return pair_from_arrays(first, second)
    raise InputError("a pair must be an ImagePair, two image paths, or two image arrays")


def _is_grey(bands: np.ndarray) -> bool:
    return bool(np.array_equal(bands[0], bands[1]) and np.array_equal(bands[1], bands[2]))


def comparable_dates(
    *dates: tuple[np.ndarray, np.ndarray | None, str],
) -> tuple[np.ndarray, np.ndarray, str, Literal["t1", "t2"] | None]:
    """The two dates' bands made comparable pixel by pixel, a note of what was done ("" when nothing), and the
    date that had no colour (None unless one had and the other had not).

    A grey date against a colour one would read every coloured pixel as changed (54 % of every cell in the
    probe), so the colour date is compared in grey too (its luminance), and the note says which date had no
    colour.
    """
    (first, _, name1), (second, _, name2) = dates
    grey1, grey2 = _is_grey(first), _is_grey(second)
    if grey1 == grey2:
        return first, second, "", None
    grey_name = name1 if grey1 else name2
    if grey1:
        second = _luminance(second)
    else:
        first = _luminance(first)
    note = f"; {grey_name} has no colour, so both dates are compared in grey (luminance)"
    return first, second, note, "t1" if grey1 else "t2"


def refuse_flat_dates(pair: ImagePair) -> None:
    """A date that is one flat value everywhere (an all-black or all-white export) holds no scene: a mask computed
    from the pixels would read "no change" against anything, so it is refused by name. (A user's own mask needs no
    pixels and is not affected.)"""
    for role, image, path in (("t1", pair.t1, pair.t1_path), ("t2", pair.t2, pair.t2_path)):
        values = image[pair.valid] if pair.valid is not None else image.reshape(-1, image.shape[-1])
        if values.size and values.min() == values.max():
            name = f"{role} file {path}" if path else f"{role} image"
            raise InputError(
                f"{name} is one flat value everywhere ({int(values.min())}): it holds no scene to compare with the "
                "other date (a blank or failed export?)"
            )


def _luminance(bands: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luminance of R, G, B, repeated in three bands, in the bands' own type."""
    grey = 0.299 * bands[0].astype(np.float64) + 0.587 * bands[1] + 0.114 * bands[2]
    if np.issubdtype(bands.dtype, np.integer):
        grey = np.round(grey)
    return np.repeat(grey.astype(bands.dtype)[None], 3, axis=0)


def _check_aligned(first: RasterData, second: RasterData) -> None:
    if (first.width, first.height) != (second.width, second.height):
        raise InputError(
            f"t1 and t2 differ in size: {first.path} is {first.width}×{first.height}, "
            f"{second.path} is {second.width}×{second.height} (width×height); the dates must be co-registered"
        )
    if (first.georef is None) != (second.georef is None):
        geo, plain = (first, second) if first.georef else (second, first)
        raise InputError(
            f"{geo.path} is georeferenced ({crs_text(geo.georef.crs)}) but {plain.path} is not; "
            "both dates must be georeferenced, or neither"
        )
    if first.georef and second.georef:
        if not same_crs(first.georef.crs, second.georef.crs):
            raise InputError(
                f"t1 and t2 are in different CRS: {first.path} is {crs_text(first.georef.crs)}, "
                f"{second.path} is {crs_text(second.georef.crs)}; reproject one onto the other's grid first"
            )
        if not np.allclose(first.georef.transform, second.georef.transform, rtol=0, atol=1e-6):
            raise InputError(
                f"t1 and t2 lie on different pixel grids: {first.path} has transform {first.georef.transform}, "
                f"{second.path} has {second.georef.transform}; resample one onto the other's grid first"
            )


def _rgb_bands(raster: RasterData, role: str, rgb_bands: Sequence[int] | None) -> np.ndarray:
    """Pick red, green, blue (bands first) by the stated rule, or refuse with the reason."""
    bands, interp = raster.bands, raster.color_interp
    count = bands.shape[0]
    if rgb_bands is not None:
        if len(rgb_bands) != 3 or any(not 1 <= b <= count for b in rgb_bands):
            raise InputError(f"{role} file {raster.path} has {count} bands; rgb_bands={list(rgb_bands)} is invalid")
        return bands[[b - 1 for b in rgb_bands]]
    if raster.palette is not None:
        lut = np.zeros((256, 3), dtype=np.uint8)
        for index, colour in raster.palette.items():
            lut[index] = colour[:3]
        return np.moveaxis(lut[bands[0].astype(np.uint8)], 2, 0)
    colour = [interp.index(name) for name in ("red", "green", "blue") if name in interp]
    if len(colour) == 3:
        return bands[colour]
    non_alpha = [i for i, name in enumerate(interp) if name != "alpha"]
    if len(non_alpha) == 1:
        return np.repeat(bands[non_alpha], 3, axis=0)
    if len(non_alpha) == 3:
        return bands[non_alpha]
    raise InputError(
        f"{role} file {raster.path} has {count} bands ({', '.join(interp)}) and no red/green/blue colour "
        "interpretation; choose them with rgb_bands (1-based, e.g. rgb_bands=(4, 3, 2) for Sentinel-2)"
    )


def stretch_bounds(bands: np.ndarray, valid: np.ndarray | None) -> list[tuple[float, float]]:
    """Per band (low, high): the STRETCH_PERCENTILES of one date's valid, finite pixels."""
    lo_p, hi_p = STRETCH_PERCENTILES
    bounds = []
    for band in bands:
        keep = np.isfinite(band) if np.issubdtype(band.dtype, np.floating) else np.ones(band.shape, dtype=bool)
        if valid is not None:
            keep &= valid
        values = band[keep]
        lo, hi = np.percentile(values, [lo_p, hi_p]) if values.size else (0.0, 0.0)
        bounds.append((float(lo), float(hi)))
    return bounds


def apply_stretch(bands: np.ndarray, bounds: list[tuple[float, float]]) -> np.ndarray:
    """Bands (3×H×W) → H×W×3 uint8, each band's (low, high) to :data:`STRETCH_RANGE`; non-finite values → low."""
    out = np.zeros((bands.shape[1], bands.shape[2], 3), dtype=np.uint8)
    bottom, top = STRETCH_RANGE
    for band, (lo, hi) in enumerate(bounds):
        scale = (top - bottom) / (hi - lo) if hi > lo else 0.0
        values = np.nan_to_num(bands[band].astype(np.float64), nan=lo, posinf=lo, neginf=lo)
        out[..., band] = np.round(np.clip(bottom + (values - lo) * scale, 0, 255))
    return out


def to_rgb8(
    first: np.ndarray, second: np.ndarray, valid: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
) -> tuple[tuple[np.ndarray, np.ndarray], str]:
    """Bring two 3×H×W band stacks to H×W×3 uint8 by the module's scaling rule (each date on its own)."""
    if first.dtype == np.uint8 and second.dtype == np.uint8:
        return (np.moveaxis(first, 0, 2).copy(), np.moveaxis(second, 0, 2).copy()), "none (8-bit input)"
    dates = zip((first, second), valid, strict=True)
    out = tuple(apply_stretch(bands, stretch_bounds(bands, mask)) for bands, mask in dates)
    lo_p, hi_p = STRETCH_PERCENTILES
    scaling = (
        f"{first.dtype}/{second.dtype} → uint8: each date stretched on its own, per band linearly from its "
        f"{lo_p:g}th to its {hi_p:g}th percentile (to {STRETCH_RANGE[0]}–{STRETCH_RANGE[1]}, room kept beyond)"
    )
    return (out[0], out[1]), scaling
