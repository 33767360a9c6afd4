"""Whole scenes: windowed tiling of a large GeoTIFF pair and an exact, memory-bounded merge of tile masks.

A scene never sits in memory. The pipeline:

1. :class:`SceneInputs` opens both dates, checks that they lie on one grid (or warps t2 onto t1's grid
   through a ``WarpedVRT`` when asked), picks the red/green/blue bands once, and reads any window as
   8-bit RGB. 8-bit bands pass unchanged; other types are stretched per band from the 2nd to the 98th
   percentile of both dates together, the rule of :mod:`tools.pairs`, with the percentiles taken once on a
   decimated read of the whole scene (≤ 2048 px a side) so every tile gets the same stretch.
2. The scene is cut into tiles of ``tile`` px (the partition users see as the fine grid). Each tile's mask
   is made on the tile plus ``overlap`` px of context on every side (clipped at the scene's edge), and only
   the tile's own pixels are kept, so every scene pixel is decided once, with context, by one tile.
   The kept blocks are written into a disk-backed ``uint8`` class mask (:class:`DiskMask`, one byte per
   pixel: 100 MB for 10,000² px) by whole tile rows.
3. :func:`analyse_mask` reads the merged mask back in horizontal strips and applies the ChangeChat rules
   at scene level without double counting. An object of the rules is an external contour
   (``cv2.RETR_EXTERNAL``) of an 8-connected component whose filled contour covers at least
   ``min_object_pixels``. Strips are labelled with OpenCV (foreground 8-connected, background
   4-connected, as Suzuki–Abe contour tracing sees them) and labels are joined across strip borders with
   a union-find, so an object cut by tile or strip borders is one object. A component is external when the
   background just left of its first pixel (in raster order) belongs to a background region that touches
   the scene's border; otherwise it sits in another object's hole and ``RETR_EXTERNAL`` would not see it.
   Components smaller than ``min_object_pixels`` are decided by ``deltavlm.rules.find_objects`` itself on
   their isolated crop (its filled-contour size), so the count equals ``rules.summarize`` on the whole mask
   (tested). 3×3 cells and per-tile fractions come from per-block pixel counts and
   ``rules.cell_is_changed``.
4. Object outlines are polygonised per strip (``rasterio.features.shapes``) and the pieces of one object are
   joined with shapely's ``unary_union``.

Memory is bounded by one tile row of the mask, one strip (≈ 8 M px) of labels, and the objects' outlines.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import rasterio
import rasterio.features
import shapely
from affine import Affine
from pydantic import BaseModel, ConfigDict, Field
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from deltavlm.rules import (
    CATEGORIES,
    CATEGORY_CLASS,
    CELL_IDS,
    ChangeClass,
    ChangeSummary,
    RuleSettings,
    cell_is_changed,
    find_objects,
    grid_bounds,
)
from tools.geojson import cell_features, feature_collection, object_feature, to_map
from tools.masks import MaskKind, MaskProvider, MaskSource, classes_from_mask_file
from tools.pairs import STRETCH_PERCENTILES, pair_from_arrays
from tools.raster import Georef, InputError, georef_of

GDAL_CACHE_MB = 128
"""GDAL's block cache defaults to 5 % of RAM; a scene run caps it so reads cannot grow without bound."""
STRIP_PIXELS = 8_000_000
"""Pixels per analysis strip (rows = this / width, at least 64): bounds the labelling's memory."""
STRETCH_SAMPLE_SIDE = 2048
N_CLASSES = int(max(ChangeClass)) + 1
SCENE_PIXEL_COORDINATES = "pixel (x = column, y = row, origin at the scene's top-left corner)"
LAYERS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("change", (int(ChangeClass.ROAD), int(ChangeClass.BUILDING), int(ChangeClass.CHANGE))),
    ("road", (int(ChangeClass.ROAD),)),
    ("building", (int(ChangeClass.BUILDING),)),
)
"""The masks the rules count on: all change (``changed_regions``) and each named category."""


# ------------------------------------------------------------------------------------------------ tiles


class SceneTile(BaseModel):
    """One tile: its own pixels (``core``) and the larger window read for context (``read``), as
    ``(row_off, col_off, height, width)`` in scene pixels."""

    model_config = ConfigDict(frozen=True)

    row: int
    col: int
    core: tuple[int, int, int, int]
    read: tuple[int, int, int, int]

    def core_in_read(self) -> tuple[slice, slice]:
        """Where the core lies inside the read window."""
        r0, c0 = self.core[0] - self.read[0], self.core[1] - self.read[1]
        return slice(r0, r0 + self.core[2]), slice(c0, c0 + self.core[3])


def check_tiling(tile: int, overlap: int) -> None:
    """Refuse tilings that cannot work, before any file is opened."""
    if tile < 16:
        raise InputError(f"tile size {tile} px is too small; use at least 16")
    if not 0 <= overlap < tile:
        raise InputError(f"overlap {overlap} px must lie in [0, tile size {tile})")


def plan_tiles(height: int, width: int, tile: int, overlap: int) -> list[SceneTile]:
    """Row-major tiles partitioning the scene; each read window adds ``overlap`` px of context per side."""
    check_tiling(tile, overlap)
    tiles = []
    for row, r0 in enumerate(range(0, height, tile)):
        for col, c0 in enumerate(range(0, width, tile)):
            h, w = min(tile, height - r0), min(tile, width - c0)
            rr0, cc0 = max(0, r0 - overlap), max(0, c0 - overlap)
            rr1, cc1 = min(height, r0 + h + overlap), min(width, c0 + w + overlap)
            tiles.append(SceneTile(row=row, col=col, core=(r0, c0, h, w), read=(rr0, cc0, rr1 - rr0, cc1 - cc0)))
    return tiles


def _window(span: tuple[int, int, int, int]) -> Window:
    return Window(span[1], span[0], span[3], span[2])


# ------------------------------------------------------------------------------------------------ inputs


@dataclass
class _BandPlan:
    indexes: list[int]
    palette: np.ndarray | None = None


def _band_plan(ds: Any, path: Path, role: str, rgb_bands: Sequence[int] | None) -> _BandPlan:
    """Which bands make red, green, blue (the rule of ``tools.pairs``, decided once on band indexes)."""
    count = ds.count
    interp = [ci.name for ci in ds.colorinterp]
    if rgb_bands is not None:
        if len(rgb_bands) != 3 or any(not 1 <= b <= count for b in rgb_bands):
            raise InputError(f"{role} file {path} has {count} bands; rgb_bands={list(rgb_bands)} is invalid")
        return _BandPlan(list(rgb_bands))
    if ds.colorinterp[0] == ColorInterp.palette:
        lut = np.zeros((256, 3), dtype=np.uint8)
        for index, colour in ds.colormap(1).items():
            lut[index] = colour[:3]
        return _BandPlan([1], palette=lut)
    colour = [interp.index(name) + 1 for name in ("red", "green", "blue") if name in interp]
    if len(colour) == 3:
        return _BandPlan(colour)
    non_alpha = [i + 1 for i, name in enumerate(interp) if name != "alpha"]
    if len(non_alpha) == 1:
        return _BandPlan(non_alpha * 3)
    if len(non_alpha) == 3:
        return _BandPlan(non_alpha)
    raise InputError(
        f"{role} file {path} has {count} bands ({', '.join(interp)}) and no red/green/blue colour interpretation; "
        "choose them with rgb_bands (1-based, e.g. 4 3 2 for Sentinel-2)"
    )


def _open(path: Path, role: str) -> Any:
    if not path.exists():
        raise InputError(f"{role} file not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioError as exc:
        raise InputError(f"{role} file {path} is not a readable raster ({exc})") from exc


class SceneInputs:
    """Both dates of a scene, aligned, read by windows as 8-bit RGB (use as a context manager)."""

    def __init__(
        self,
        t1: str | Path,
        t2: str | Path,
        *,
        resample: bool = False,
        rgb_bands: Sequence[int] | None = None,
    ) -> None:
        self.paths = (Path(t1), Path(t2))
        self.warnings: list[str] = []
        self._env = rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB)
        self._env.__enter__()
        self._opened: list[Any] = []
        try:
            first = self._keep(_open(self.paths[0], "t1"))
            second = self._keep(_open(self.paths[1], "t2"))
            second = self._align(first, second, resample)
            self.datasets = (first, second)
            self.plans = (
                _band_plan(first, self.paths[0], "t1", rgb_bands),
                _band_plan(second, self.paths[1], "t2", rgb_bands),
            )
            self._masked = tuple(
                any(flag != MaskFlags.all_valid for flags in ds.mask_flag_enums for flag in flags)
                for ds in self.datasets
            )
            self.stretch = self._stretch()
        except BaseException:
            self.close()
            raise

    def _keep(self, ds: Any) -> Any:
        self._opened.append(ds)
        return ds

    @property
    def height(self) -> int:
        return int(self.datasets[0].height)

    @property
    def width(self) -> int:
        return int(self.datasets[0].width)

    @property
    def georef(self) -> Georef | None:
        return georef_of(self.datasets[0])

    @property
    def has_invalid_pixels(self) -> bool:
        """True when either date declares nodata, an alpha band or a mask (validity is then read per window)."""
        return any(self._masked)

    def _align(self, first: Any, second: Any, resample: bool) -> Any:
        """The pair must share one grid; with ``resample``, t2 is warped onto t1's grid (with a warning)."""
        p1, p2 = self.paths
        if (first.crs is None) != (second.crs is None):
            geo, plain = (p1, p2) if first.crs is not None else (p2, p1)
            raise InputError(f"{geo} is georeferenced but {plain} is not; both dates must be georeferenced, or neither")
        same_size = (first.width, first.height) == (second.width, second.height)
        if first.crs is None:
            if not same_size:
                raise InputError(
                    f"t1 and t2 differ in size: {p1} is {first.width}×{first.height}, {p2} is "
                    f"{second.width}×{second.height} (width×height), and neither is georeferenced"
                )
            return second
        same_crs = CRS.from_user_input(first.crs) == CRS.from_user_input(second.crs)
        same_transform = np.allclose(tuple(first.transform)[:6], tuple(second.transform)[:6], rtol=0, atol=1e-6)
        if same_crs and same_transform and same_size:
            return second
        differences = []
        if not same_crs:
            differences.append(f"CRS {first.crs} vs {second.crs}")
        if not same_transform:
            differences.append(f"transform {tuple(first.transform)[:6]} vs {tuple(second.transform)[:6]}")
        if not same_size:
            differences.append(f"size {first.width}×{first.height} vs {second.width}×{second.height}")
        if not resample:
            raise InputError(
                f"t1 {p1} and t2 {p2} lie on different grids ({'; '.join(differences)}); pass --resample "
                "(resample=True) to warp t2 onto t1's grid, or align them first"
            )
        left, bottom, right, top = transform_bounds(second.crs, first.crs, *second.bounds)
        b1 = first.bounds
        if left >= b1.right or right <= b1.left or bottom >= b1.top or top <= b1.bottom:
            raise InputError(f"t1 {p1} and t2 {p2} do not overlap; nothing to compare")
        self.warnings.append(
            f"t2 {p2} lies on another grid ({'; '.join(differences)}); it was resampled (bilinear) onto t1's grid, "
            "and pixels outside t2 are ignored"
        )
        return self._keep(
            WarpedVRT(
                second,
                crs=first.crs,
                transform=first.transform,
                width=first.width,
                height=first.height,
                resampling=Resampling.bilinear,
                add_alpha=True,
            )
        )

    def _stretch(self) -> list[tuple[float, float]] | None:
        """Per-band (low, high) of both dates together, from a decimated read; None for 8-bit input."""
        if all(
            ds.dtypes[i - 1] == "uint8"
            for ds, plan in zip(self.datasets, self.plans, strict=True)
            for i in plan.indexes
        ):
            return None
        scale = max(1, math.ceil(max(self.height, self.width) / STRETCH_SAMPLE_SIDE))
        shape = (max(1, self.height // scale), max(1, self.width // scale))
        samples = []
        for ds, plan, masked in zip(self.datasets, self.plans, self._masked, strict=True):
            bands = ds.read(plan.indexes, out_shape=(len(plan.indexes), *shape), resampling=Resampling.nearest)
            valid = np.isfinite(bands)
            if masked:
                valid &= ds.dataset_mask(out_shape=shape, resampling=Resampling.nearest)[None] > 0
            if ds.nodata is not None:
                valid &= bands != ds.nodata
            samples.append((bands.astype(np.float64), valid))
        lo_p, hi_p = STRETCH_PERCENTILES
        bounds = []
        for band in range(3):
            values = np.concatenate([b[band][v[band]] for b, v in samples])
            lo, hi = np.percentile(values, [lo_p, hi_p]) if values.size else (0.0, 0.0)
            bounds.append((lo, hi))
        self.warnings.append(
            f"non-8-bit input: each band stretched linearly between its percentiles {lo_p:g} and {hi_p:g} over both "
            f"dates together, sampled every {scale} px of the scene"
        )
        return [(float(lo), float(hi)) for lo, hi in bounds]

    def _rgb(self, which: int, window: Window) -> tuple[np.ndarray, np.ndarray | None]:
        ds, plan = self.datasets[which], self.plans[which]
        bands = ds.read(plan.indexes, window=window)
        valid = ds.dataset_mask(window=window) > 0 if self._masked[which] else None
        if plan.palette is not None:
            return plan.palette[bands[0].astype(np.uint8)], valid
        if self.stretch is None:
            return np.ascontiguousarray(np.moveaxis(bands, 0, 2)), valid
        out = np.zeros((bands.shape[1], bands.shape[2], 3), dtype=np.uint8)
        finite = np.isfinite(bands).all(axis=0)
        if ds.nodata is not None:
            finite &= (bands != ds.nodata).all(axis=0)
        valid = finite if valid is None else valid & finite
        for band, (lo, hi) in enumerate(self.stretch):
            scale = 255.0 / (hi - lo) if hi > lo else 0.0
            out[..., band] = np.round(np.clip((bands[band].astype(np.float64) - lo) * scale, 0, 255))
        return out, valid

    def read(self, span: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """t1 and t2 of a window as H×W×3 uint8, and where both are valid (None: everywhere).

        Pixels invalid in either date are zeroed in both, so no detector sees a change where a date has no data.
        """
        window = _window(span)
        rgb1, valid1 = self._rgb(0, window)
        rgb2, valid2 = self._rgb(1, window)
        valid = valid1 if valid2 is None else valid2 if valid1 is None else valid1 & valid2
        if valid is not None:
            rgb1[~valid] = 0
            rgb2[~valid] = 0
        return rgb1, rgb2, valid

    def close(self) -> None:
        for ds in reversed(self._opened):
            ds.close()
        self._opened.clear()
        if self._env is not None:
            self._env.__exit__(None, None, None)
            self._env = None

    def __enter__(self) -> SceneInputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SceneMaskFile:
    """A user's change mask for the whole scene, read by windows (it must lie on t1's grid)."""

    def __init__(
        self,
        path: str | Path,
        height: int,
        width: int,
        georef: Georef | None,
        *,
        kind: MaskKind = "auto",
        binary_category: str | None = None,
    ) -> None:
        self.path = Path(path)
        self._env = rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB)
        self._env.__enter__()
        self.ds = _open(self.path, "mask")
        try:
            if (self.ds.width, self.ds.height) != (width, height):
                raise InputError(
                    f"mask file {self.path} is {self.ds.width}×{self.ds.height} but the scene is {width}×{height} "
                    "(width×height)"
                )
            mask_georef = georef_of(self.ds)
            if (
                mask_georef is not None
                and georef is not None
                and (
                    CRS.from_string(mask_georef.crs) != CRS.from_string(georef.crs)
                    or not np.allclose(mask_georef.transform, georef.transform, rtol=0, atol=1e-6)
                )
            ):
                raise InputError(f"mask file {self.path} does not lie on t1's grid (CRS and transform must match)")
            self.lut, self.note = self._lookup(kind, binary_category)
        except BaseException:
            self.close()
            raise

    def _lookup(self, kind: MaskKind, binary_category: str | None) -> tuple[np.ndarray, str]:
        """One value→class table for the whole file, so every tile reads the mask by the same convention."""
        present = np.zeros(256, dtype=bool)
        rows = max(1, STRIP_PIXELS // max(1, self.ds.width))
        for r0 in range(0, self.ds.height, rows):
            raw = self._raw(Window(0, r0, self.ds.width, min(rows, self.ds.height - r0)))
            present |= np.bincount(raw.ravel(), minlength=256).astype(bool)
        values = np.flatnonzero(present).astype(np.uint8)
        try:
            classes, note = classes_from_mask_file(values[None, :], kind, binary_category=binary_category)
        except ValueError as exc:
            raise InputError(f"mask file {self.path}: {exc}") from exc
        lut = np.zeros(256, dtype=np.uint8)
        lut[values] = classes[0]
        return lut, note

    def _raw(self, window: Window) -> np.ndarray:
        raw = self.ds.read(1, window=window)
        if raw.dtype != np.uint8:
            if raw.size and (raw.min() < 0 or raw.max() > 255 or not np.all(np.equal(np.mod(raw, 1), 0))):
                raise InputError(f"mask file {self.path} holds {raw.dtype} values that are not class labels")
            raw = raw.astype(np.uint8)
        return raw

    def read(self, span: tuple[int, int, int, int]) -> np.ndarray:
        return self.lut[self._raw(_window(span))]

    def close(self) -> None:
        if getattr(self, "ds", None) is not None:
            self.ds.close()
        if self._env is not None:
            self._env.__exit__(None, None, None)
            self._env = None


# --------------------------------------------------------------------------------------------- disk mask


class DiskMask:
    """A scene-sized ``uint8`` class mask in a file, written by whole rows and read back by strips."""

    def __init__(self, path: str | Path, height: int, width: int) -> None:
        self.path = Path(path)
        self.height, self.width = height, width
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "wb") as handle:
            handle.truncate(height * width)

    def write_rows(self, row0: int, block: np.ndarray) -> None:
        if block.shape[1] != self.width or block.dtype != np.uint8:
            raise ValueError(f"a row block must be (rows, {self.width}) uint8, got {block.shape} {block.dtype}")
        with open(self.path, "r+b") as handle:
            handle.seek(row0 * self.width)
            handle.write(np.ascontiguousarray(block).tobytes())

    def read_rows(self, row0: int, row1: int) -> np.ndarray:
        count = (row1 - row0) * self.width
        data = np.fromfile(self.path, dtype=np.uint8, count=count, offset=row0 * self.width)
        return data.reshape(row1 - row0, self.width)

    def read_window(self, row0: int, row1: int, col0: int, col1: int) -> np.ndarray:
        out = np.empty((row1 - row0, col1 - col0), dtype=np.uint8)
        with open(self.path, "rb") as handle:
            for i, row in enumerate(range(row0, row1)):
                handle.seek(row * self.width + col0)
                out[i] = np.frombuffer(handle.read(col1 - col0), dtype=np.uint8)
        return out

    def strips(self, rows: int) -> Iterator[tuple[int, np.ndarray]]:
        for row0 in range(0, self.height, rows):
            yield row0, self.read_rows(row0, min(self.height, row0 + rows))

    def unlink(self) -> None:
        self.path.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------ making the masks


class TileMaskStats(BaseModel):
    """Per tile: pixels of each class in its core, and the mask source when a provider made it."""

    row: int
    col: int
    class_pixels: list[int]
    source: MaskSource | None = None


def tile_row_band(
    tiles: Sequence[SceneTile],
    width: int,
    inputs: SceneInputs | None,
    provider: MaskProvider | None,
    mask_file: SceneMaskFile | None,
) -> tuple[np.ndarray, list[TileMaskStats]]:
    """The class mask of one row of tiles (their cores side by side), from the user's mask or the provider."""
    height = tiles[0].core[2]
    band = np.zeros((height, width), dtype=np.uint8)
    stats = []
    for tile in tiles:
        _, c0, _, w = tile.core
        source = None
        valid = None
        if mask_file is not None:
            block = mask_file.read(tile.core)
            if inputs is not None and inputs.has_invalid_pixels:
                _, _, valid_read = inputs.read(tile.read)
                valid = None if valid_read is None else valid_read[tile.core_in_read()]
        else:
            assert inputs is not None and provider is not None
            rgb1, rgb2, valid_read = inputs.read(tile.read)
            change = provider.provide(pair_from_arrays(rgb1, rgb2))
            block = change.class_mask[tile.core_in_read()]
            source = change.source
            valid = None if valid_read is None else valid_read[tile.core_in_read()]
        if valid is not None:
            block = np.where(valid, block, 0).astype(np.uint8)
        band[:, c0 : c0 + w] = block
        pixels = np.bincount(block.ravel(), minlength=N_CLASSES)
        if pixels.size > N_CLASSES:
            raise ValueError(f"tile {tile.row},{tile.col}: class mask holds values above {N_CLASSES - 1}")
        stats.append(TileMaskStats(row=tile.row, col=tile.col, class_pixels=pixels.tolist(), source=source))
    return band, stats


class SceneSpec(BaseModel):
    """What to read and how to tile it; sent to worker processes, which open the files themselves."""

    t1: Path
    t2: Path
    tile: int = Field(256, ge=16)
    overlap: int = Field(32, ge=0)
    resample: bool = False
    rgb_bands: tuple[int, int, int] | None = None
    mask: Path | None = None
    mask_kind: MaskKind = "auto"
    mask_category: str | None = None


class SceneMeta(BaseModel):
    height: int
    width: int
    georef: Georef | None
    warnings: list[str]
    mask_note: str | None = None
    tiles: int


@dataclass
class _Opened:
    inputs: SceneInputs
    mask_file: SceneMaskFile | None
    rows: list[list[SceneTile]]

    def close(self) -> None:
        if self.mask_file is not None:
            self.mask_file.close()
        self.inputs.close()


def _open_scene(spec: SceneSpec) -> _Opened:
    inputs = SceneInputs(spec.t1, spec.t2, resample=spec.resample, rgb_bands=spec.rgb_bands)
    try:
        mask_file = None
        if spec.mask is not None:
            mask_file = SceneMaskFile(
                spec.mask,
                inputs.height,
                inputs.width,
                inputs.georef,
                kind=spec.mask_kind,
                binary_category=spec.mask_category,
            )
        tiles = plan_tiles(inputs.height, inputs.width, spec.tile, spec.overlap)
    except BaseException:
        inputs.close()
        raise
    rows: dict[int, list[SceneTile]] = {}
    for tile in tiles:
        rows.setdefault(tile.row, []).append(tile)
    return _Opened(inputs, mask_file, [rows[r] for r in sorted(rows)])


_WORKER: dict[str, Any] = {}


def _worker_init(spec_json: str, provider: MaskProvider | None, threads: int) -> None:
    cv2.setNumThreads(threads)  # workers share the cores instead of each claiming all of them
    _WORKER["scene"] = _open_scene(SceneSpec.model_validate_json(spec_json))
    _WORKER["provider"] = provider


def _worker_row(row: int) -> tuple[int, np.ndarray, list[TileMaskStats]]:
    scene: _Opened = _WORKER["scene"]
    tiles = scene.rows[row]
    band, stats = tile_row_band(tiles, scene.inputs.width, scene.inputs, _WORKER["provider"], scene.mask_file)
    return tiles[0].core[0], band, stats


def build_scene_mask(
    spec: SceneSpec,
    provider: MaskProvider | None,
    disk_path: str | Path,
    *,
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[DiskMask, list[TileMaskStats], SceneMeta]:
    """Make every tile's mask (the user's mask file, or ``provider`` on the tile with context) and merge the
    tiles' own pixels into a disk-backed scene mask, one row of tiles at a time.

    With ``workers`` > 1, rows of tiles are made in that many processes (each opens the files itself; the
    provider must be picklable) and this process writes them; at most ``2 × workers`` rows are in flight, so
    memory stays bounded. On any failure the partial disk mask is removed.
    """
    if spec.mask is None and provider is None:
        raise ValueError("a scene mask needs a user mask file or a mask provider")
    scene = _open_scene(spec)
    disk: DiskMask | None = None
    try:
        meta = SceneMeta(
            height=scene.inputs.height,
            width=scene.inputs.width,
            georef=scene.inputs.georef,
            warnings=list(scene.inputs.warnings),
            mask_note=scene.mask_file.note if scene.mask_file else None,
            tiles=sum(len(r) for r in scene.rows),
        )
        disk = DiskMask(disk_path, meta.height, meta.width)
        stats: list[TileMaskStats] = []

        def accept(row0: int, band: np.ndarray, row_stats: list[TileMaskStats]) -> None:
            assert disk is not None
            disk.write_rows(row0, band)
            stats.extend(row_stats)
            if on_progress is not None:
                on_progress(len(row_stats), meta.tiles)

        if workers <= 1:
            for tiles in scene.rows:
                accept(tiles[0].core[0], *tile_row_band(tiles, meta.width, scene.inputs, provider, scene.mask_file))
        else:
            _rows_in_processes(spec, provider, workers, len(scene.rows), accept)
            stats.sort(key=lambda s: (s.row, s.col))
        return disk, stats, meta
    except BaseException:
        if disk is not None:
            disk.unlink()
        raise
    finally:
        scene.close()


def _rows_in_processes(
    spec: SceneSpec,
    provider: MaskProvider | None,
    workers: int,
    n_rows: int,
    accept: Callable[[int, np.ndarray, list[TileMaskStats]], None],
) -> None:
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no fork of a process holding GDAL handles and threads
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_worker_init,
        initargs=(spec.model_dump_json(), provider, max(1, (os.cpu_count() or 1) // workers)),
    ) as pool:
        pending = iter(range(n_rows))
        running = {pool.submit(_worker_row, row) for row in (next(pending) for _ in range(min(n_rows, 2 * workers)))}
        while running:
            done, running = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                accept(*future.result())
                following = next(pending, None)
                if following is not None:
                    running.add(pool.submit(_worker_row, following))


# -------------------------------------------------------------------------------- merging: components


class _UnionFind:
    """Union-find over integer ids, grown as strips add labels (python list: few unions, many ids)."""

    def __init__(self) -> None:
        self.parent: list[int] = []

    def add(self, count: int) -> int:
        start = len(self.parent)
        self.parent.extend(range(start, start + count))
        return start

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union_pairs(self, pairs: np.ndarray) -> None:
        for a, b in np.unique(pairs, axis=0) if len(pairs) else ():
            ra, rb = self.find(int(a)), self.find(int(b))
            if ra != rb:
                self.parent[max(ra, rb)] = min(ra, rb)

    def roots(self) -> np.ndarray:
        parent = np.asarray(self.parent, dtype=np.int64)
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                return parent
            parent = grand


@dataclass
class _Layer:
    """Component tables of one mask layer (all change, road or building), over all strips."""

    name: str
    classes: tuple[int, ...]
    fg: _UnionFind = field(default_factory=_UnionFind)
    bg: _UnionFind = field(default_factory=_UnionFind)
    area: list[np.ndarray] = field(default_factory=list)
    box: list[np.ndarray] = field(default_factory=list)  # top, left, bottom, right (inclusive)
    sums: list[np.ndarray] = field(default_factory=list)  # sum of x, sum of y
    seed: list[np.ndarray] = field(default_factory=list)  # raster index of the first pixel
    left_bg: list[np.ndarray] = field(default_factory=list)  # bg id left of the seed, -1 = outside the scene
    bg_border: list[np.ndarray] = field(default_factory=list)
    pieces: list[tuple[int, BaseGeometry]] = field(default_factory=list)
    last_fg: np.ndarray | None = None
    last_bg: np.ndarray | None = None


def _label_strip(layer: _Layer, strip: np.ndarray, row0: int, height: int, width: int, polygons: bool) -> None:
    fg = np.isin(strip, layer.classes).astype(np.uint8)
    rows = strip.shape[0]
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(fg, connectivity=8, ltype=cv2.CV_32S)
    first_fg = layer.fg.add(n - 1)
    if n > 1:
        s = stats[1:]
        top = s[:, cv2.CC_STAT_TOP].astype(np.int64) + row0
        left = s[:, cv2.CC_STAT_LEFT].astype(np.int64)
        area = s[:, cv2.CC_STAT_AREA].astype(np.int64)
        layer.area.append(area)
        layer.box.append(
            np.stack([top, left, top + s[:, cv2.CC_STAT_HEIGHT] - 1, left + s[:, cv2.CC_STAT_WIDTH] - 1], axis=1)
        )
        layer.sums.append(np.stack([centroids[1:, 0] * area, (centroids[1:, 1] + row0) * area], axis=1))
        flat = np.flatnonzero(fg)
        _, first = np.unique(labels.ravel()[flat], return_index=True)
        seed_local = flat[first]
        seed_row, seed_col = np.divmod(seed_local, width)
        layer.seed.append((seed_row + row0) * width + seed_col)
    nb, bg_labels, bg_stats, _ = cv2.connectedComponentsWithStats(1 - fg, connectivity=4, ltype=cv2.CV_32S)
    first_bg = layer.bg.add(nb - 1)
    if nb > 1:
        b = bg_stats[1:]
        touches = (b[:, cv2.CC_STAT_LEFT] == 0) | (b[:, cv2.CC_STAT_LEFT] + b[:, cv2.CC_STAT_WIDTH] == width)
        if row0 == 0:
            touches |= b[:, cv2.CC_STAT_TOP] == 0
        if row0 + rows == height:
            touches |= b[:, cv2.CC_STAT_TOP] + b[:, cv2.CC_STAT_HEIGHT] == rows
        layer.bg_border.append(touches)
    if n > 1:
        left_of_seed = np.full(n - 1, -1, dtype=np.int64)
        inside = seed_col > 0
        left_of_seed[inside] = bg_labels[seed_row[inside], seed_col[inside] - 1].astype(np.int64) - 1 + first_bg
        layer.left_bg.append(left_of_seed)

    def ids(row: np.ndarray, first: int) -> np.ndarray:  # global ids of one row, -1 where not in that layer
        return np.where(row > 0, row.astype(np.int64) - 1 + first, -1)

    if layer.last_fg is not None and layer.last_bg is not None:
        above, below = layer.last_fg, ids(labels[0], first_fg)
        pairs = []
        for shift in (-1, 0, 1):  # 8-connected across the strip border
            a = above[max(0, shift) : width + min(0, shift)]
            c = below[max(0, -shift) : width - max(0, shift)]
            joined = (a >= 0) & (c >= 0)
            pairs.append(np.stack([a[joined], c[joined]], axis=1))
        layer.fg.union_pairs(np.concatenate(pairs))
        a, c = layer.last_bg, ids(bg_labels[0], first_bg)
        joined = (a >= 0) & (c >= 0)  # 4-connected
        layer.bg.union_pairs(np.stack([a[joined], c[joined]], axis=1))
    layer.last_fg, layer.last_bg = ids(labels[-1], first_fg), ids(bg_labels[-1], first_bg)
    if polygons and n > 1:
        shifted = Affine.translation(0, row0)
        for geom, value in rasterio.features.shapes(labels, mask=fg.astype(bool), connectivity=8, transform=shifted):
            layer.pieces.append((int(value) - 1 + first_fg, shapely.geometry.shape(geom)))


@dataclass
class SceneObject:
    """One counted object of the scene (pixel coordinates)."""

    category: str
    pixels: int
    bbox: tuple[int, int, int, int]
    centroid: tuple[float, float]
    geometry: BaseGeometry | None = None


def _isolated_objects(mask: DiskMask, layer: _Layer, bbox: np.ndarray, seed: int, settings: RuleSettings) -> int:
    """``rules.find_objects`` on one small component alone: does its filled contour reach the size rule?"""
    top, left, bottom, right = (int(v) for v in bbox)
    r0, c0 = max(0, top - 1), max(0, left - 1)
    r1, c1 = min(mask.height, bottom + 2), min(mask.width, right + 2)
    crop = np.isin(mask.read_window(r0, r1, c0, c1), layer.classes).astype(np.uint8)
    _, labels = cv2.connectedComponents(crop, connectivity=8)
    seed_row, seed_col = divmod(seed, mask.width)
    own = labels == labels[seed_row - r0, seed_col - c0]
    return len(find_objects(own, layer.name, settings))


def _resolve(layer: _Layer, mask: DiskMask, settings: RuleSettings) -> list[SceneObject]:
    """Join strip components into scene objects and keep those the rules count."""
    if not layer.area:
        return []
    fg_root = layer.fg.roots()
    bg_root = layer.bg.roots()
    bg_touch = np.zeros(len(bg_root), dtype=bool)
    if layer.bg_border:
        np.logical_or.at(bg_touch, bg_root, np.concatenate(layer.bg_border))
    area = np.concatenate(layer.area)
    boxes = np.concatenate(layer.box)
    sums = np.concatenate(layer.sums)
    seeds = np.concatenate(layer.seed)
    left_bg = np.concatenate(layer.left_bg)
    roots, group = np.unique(fg_root, return_inverse=True)
    count = len(roots)
    total = np.bincount(group, weights=area, minlength=count).astype(np.int64)
    top = np.full(count, np.iinfo(np.int64).max)
    left = top.copy()
    bottom = np.full(count, -1, dtype=np.int64)
    right = bottom.copy()
    np.minimum.at(top, group, boxes[:, 0])
    np.minimum.at(left, group, boxes[:, 1])
    np.maximum.at(bottom, group, boxes[:, 2])
    np.maximum.at(right, group, boxes[:, 3])
    sum_x = np.bincount(group, weights=sums[:, 0], minlength=count)
    sum_y = np.bincount(group, weights=sums[:, 1], minlength=count)
    order = np.lexsort((seeds, group))  # by group, then seed: the first of each group is its raster-first part
    starts = np.r_[0, np.flatnonzero(np.diff(group[order])) + 1]
    first_part = order[starts]
    seed = seeds[first_part]
    outside = left_bg[first_part]
    external = (outside < 0) | bg_touch[bg_root[np.maximum(outside, 0)]]
    geometries: dict[int, list[BaseGeometry]] = {}
    for part, geom in layer.pieces:
        geometries.setdefault(int(np.searchsorted(roots, fg_root[part])), []).append(geom)
    objects = []
    for i in np.flatnonzero(external):
        bbox = np.array([top[i], left[i], bottom[i], right[i]])
        if total[i] < settings.min_object_pixels and not _isolated_objects(mask, layer, bbox, int(seed[i]), settings):
            continue
        geometry = None
        if i in geometries:
            geometry = shapely.union_all([shapely.make_valid(g) for g in geometries[i]])
        objects.append(
            SceneObject(
                category=layer.name,
                pixels=int(total[i]),
                bbox=(int(left[i]), int(top[i]), int(right[i] - left[i] + 1), int(bottom[i] - top[i] + 1)),
                centroid=(float(sum_x[i] / total[i]), float(sum_y[i] / total[i])),
                geometry=geometry,
            )
        )
    objects.sort(key=lambda o: (o.bbox[1], o.bbox[0]))
    return objects


class MaskAnalysis(BaseModel):
    """The rules at scene level, with what the merge needed to be exact."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    height: int
    width: int
    summary: ChangeSummary
    cell_class_pixels: dict[str, list[int]]
    objects: dict[str, list[Any]] = Field(description="SceneObject lists per layer: change, road, building.")


def analyse_mask(
    mask: DiskMask,
    settings: RuleSettings | None = None,
    *,
    polygons: bool = True,
    strip_rows: int | None = None,
    class_pixels: Sequence[int] | None = None,
) -> MaskAnalysis:
    """Apply the ChangeChat rules to a disk-backed class mask, strip by strip (see the module docstring)."""
    settings = settings or RuleSettings()
    height, width = mask.height, mask.width
    rows = strip_rows or max(64, STRIP_PIXELS // max(1, width))
    bounds = grid_bounds(height, width)
    cell_pixels = {cell: np.zeros(N_CLASSES, dtype=np.int64) for cell in CELL_IDS}
    # a class absent from the scene (known from the tiles' pixel counts) has no objects: skip its layer
    present = set(range(N_CLASSES)) if class_pixels is None else {i for i, n in enumerate(class_pixels) if n}
    layers = [_Layer(name, classes) for name, classes in LAYERS if present & set(classes)]
    # outlines as the GeoJSON shows them: per category for categorical masks, else all change
    if class_pixels is None:
        outline = {name for name, _ in LAYERS}
    else:
        outline = {"change"} if int(ChangeClass.CHANGE) in present else set(CATEGORIES)
    for row0, strip in mask.strips(rows):
        row1 = row0 + strip.shape[0]
        for cell, (r0, r1, c0, c1) in bounds.items():
            lo, hi = max(r0, row0), min(r1, row1)
            if lo < hi:
                block = strip[lo - row0 : hi - row0, c0:c1]
                cell_pixels[cell] += np.bincount(block.ravel(), minlength=N_CLASSES)[:N_CLASSES]
        for layer in layers:
            _label_strip(layer, strip, row0, height, width, polygons and layer.name in outline)
    objects = {name: [] for name, _ in LAYERS}
    for layer in layers:
        objects[layer.name] = _resolve(layer, mask, settings)
    total_pixels = height * width
    class_totals = sum(cell_pixels.values())
    changed_pixels = int(class_totals[1:].sum())

    def fractions(classes: tuple[int, ...]) -> dict[str, float]:
        return {cell: int(sum(p[c] for c in classes)) / int(p.sum()) for cell, p in cell_pixels.items()}

    def cells(classes: tuple[int, ...]) -> list[str]:
        return [
            cell
            for cell, p in cell_pixels.items()
            if cell_is_changed(int(sum(p[c] for c in classes)), int(p.sum()), settings.cell_threshold)
        ]

    every = LAYERS[0][1]
    summary = ChangeSummary(
        changed=changed_pixels > 0,
        changed_pixels=changed_pixels,
        total_pixels=total_pixels,
        changed_fraction=changed_pixels / total_pixels,
        categorical=int(class_totals[int(ChangeClass.CHANGE)]) == 0,
        counts={name: len(objects[name]) for name in CATEGORIES},
        changed_regions=len(objects["change"]),
        category_fractions={name: int(class_totals[int(CATEGORY_CLASS[name])]) / total_pixels for name in CATEGORIES},
        cells=cells(every),
        category_cells={name: cells((int(CATEGORY_CLASS[name]),)) for name in CATEGORIES},
        cell_fractions=fractions(every),
        category_cell_fractions={name: fractions((int(CATEGORY_CLASS[name]),)) for name in CATEGORIES},
        settings=settings,
    )
    return MaskAnalysis(
        height=height,
        width=width,
        summary=summary,
        cell_class_pixels={cell: p.tolist() for cell, p in cell_pixels.items()},
        objects=objects,
    )


def summary_of_array(class_mask: np.ndarray, settings: RuleSettings | None = None, **kwargs: Any) -> MaskAnalysis:
    """The scene merge applied to an in-memory mask (tests compare it with ``rules.summarize``)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        disk = DiskMask(Path(folder) / "mask.u8", *class_mask.shape)
        disk.write_rows(0, class_mask.astype(np.uint8))
        return analyse_mask(disk, settings, **kwargs)


# ----------------------------------------------------------------------------------------------- outputs


def write_mask_geotiff(mask: DiskMask, path: str | Path, georef: Georef | None) -> Path:
    """The merged class mask as a tiled, compressed GeoTIFF on t1's grid (class indices 0–3)."""
    path = Path(path)
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": mask.width,
        "height": mask.height,
        "count": 1,
        "dtype": "uint8",
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
    }
    if georef is not None:
        profile |= {"crs": CRS.from_string(georef.crs), "transform": Affine(*georef.transform)}
    rows = 1024
    with warnings.catch_warnings(), rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.set_band_description(1, "change class: 0 none, 1 road, 2 building, 3 changed (category unknown)")
            for row0 in range(0, mask.height, rows):
                row1 = min(mask.height, row0 + rows)
                dst.write(mask.read_rows(row0, row1), 1, window=Window(0, row0, mask.width, row1 - row0))
    return path


def scene_geojson(
    *,
    analysis: MaskAnalysis,
    tiles: Sequence[dict[str, Any]],
    georef: Georef | None,
    scene_name: str,
    provenance: dict[str, Any],
) -> dict[str, Any]:
    """One FeatureCollection in the scene's own CRS: changed 3×3 cells, changed tiles, and every counted object."""
    summary = analysis.summary
    identity = {"scene": scene_name}
    layers = list(CATEGORIES) if summary.categorical else ["change"]
    centroids = {name: [o.centroid for o in analysis.objects[name]] for name in layers}
    features = cell_features(
        summary, analysis.height, analysis.width, centroids, georef, "native", identity, provenance
    )
    for tile in tiles:
        r0, c0, h, w = tile["window"]
        props = {**identity, "feature": "tile", **{k: v for k, v in tile.items() if k != "window"}, **provenance}
        features.append(
            {"type": "Feature", "geometry": to_map(box(c0, r0, c0 + w, r0 + h), georef, "native"), "properties": props}
        )
    for name in layers:
        for obj in analysis.objects[name]:
            if obj.geometry is not None:
                features.append(object_feature(obj.geometry, name, obj.pixels, georef, "native", identity, provenance))
    return feature_collection(features, georef, "native", SCENE_PIXEL_COORDINATES)


__all__ = [
    "DiskMask",
    "MaskAnalysis",
    "SceneInputs",
    "SceneMaskFile",
    "SceneMeta",
    "SceneObject",
    "SceneSpec",
    "SceneTile",
    "TileMaskStats",
    "analyse_mask",
    "build_scene_mask",
    "check_tiling",
    "plan_tiles",
    "scene_geojson",
    "summary_of_array",
    "tile_row_band",
    "write_mask_geotiff",
]
