"""Windowed reads of both dates: one grid (or t2 warped onto t1's), the RGB bands picked once, one stretch per date.

When both dates are 8-bit their bands pass unchanged; otherwise each date is stretched on its own, per band from
its 2nd to its 98th percentile (the rule of :mod:`tools.pairs`), with the percentiles taken once per date on a
decimated read of the whole scene (<= 2048 px a side) so every tile gets the same stretch. Files are opened
through :func:`tools.raster.open_raster` (whole-file checks); GDAL read errors become InputErrors naming the file.
The mask file follows the rules of :mod:`tools.masks` (one channel, on t1's grid)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.features
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from tools.crs import same_crs as same_crs_of
from tools.masks import MaskKind, MaskReading, check_mask_channels, check_mask_grid, classes_from_mask_file
from tools.pairs import STRETCH_PERCENTILES, STRETCH_RANGE, apply_stretch, stretch_bounds
from tools.raster import Georef, InputError, gdal_reason, georef_of, open_raster
from tools.scene.disk_mask import STRIP_PIXELS
from tools.scene.tiling import window_of

GDAL_CACHE_MB = 128
"""GDAL's block cache defaults to 5 % of RAM; a scene run caps it so reads cannot grow without bound."""
STRETCH_SAMPLE_SIDE = 2048


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
    return open_raster(path, role)


def _read(ds: Any, path: Path, role: str, *args: Any, **kwargs: Any) -> np.ndarray:
    """``ds.read`` with GDAL's errors (a truncated or damaged file) as an InputError naming the file."""
    try:
        return ds.read(*args, **kwargs)
    except RasterioError as exc:
        raise InputError(f"{role} file {path} is not readable, or is cut short ({gdal_reason(exc)})") from exc


def _dataset_mask(ds: Any, path: Path, role: str, **kwargs: Any) -> np.ndarray:
    try:
        return ds.dataset_mask(**kwargs)
    except RasterioError as exc:
        raise InputError(f"{role} file {path} is not readable, or is cut short ({gdal_reason(exc)})") from exc


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
            self._float = tuple(
                any(np.issubdtype(np.dtype(ds.dtypes[i - 1]), np.floating) for i in plan.indexes)
                for ds, plan in zip(self.datasets, self.plans, strict=True)
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
        """True when either date declares nodata, an alpha band or a mask, or is floating point (NaN): validity is
        then read per window."""
        return any(self._masked) or any(self._float)

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
        same_crs = same_crs_of(first.crs, second.crs)
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

    def _stretch(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]] | None:
        """Per date, per band (low, high) from a decimated read; None when both dates are 8-bit."""
        if all(
            ds.dtypes[i - 1] == "uint8"
            for ds, plan in zip(self.datasets, self.plans, strict=True)
            for i in plan.indexes
        ):
            return None
        scale = max(1, math.ceil(max(self.height, self.width) / STRETCH_SAMPLE_SIDE))
        shape = (max(1, self.height // scale), max(1, self.width // scale))
        bounds = []
        for which, (ds, plan, masked) in enumerate(zip(self.datasets, self.plans, self._masked, strict=True)):
            path, role = self.paths[which], ("t1", "t2")[which]
            bands = _read(
                ds, path, role, plan.indexes, out_shape=(len(plan.indexes), *shape), resampling=Resampling.nearest
            )
            valid = np.isfinite(bands).all(axis=0) if np.issubdtype(bands.dtype, np.floating) else None
            if masked:
                inside = _dataset_mask(ds, path, role, out_shape=shape, resampling=Resampling.nearest) > 0
                valid = inside if valid is None else valid & inside
            bounds.append(stretch_bounds(bands, valid))
        lo_p, hi_p = STRETCH_PERCENTILES
        self.warnings.append(
            f"non-8-bit input: each date stretched on its own, per band linearly between its percentiles {lo_p:g} "
            f"and {hi_p:g} (to {STRETCH_RANGE[0]}–{STRETCH_RANGE[1]}), sampled every {scale} px of the scene"
        )
        return bounds[0], bounds[1]

    def _rgb(self, which: int, window: Window) -> tuple[np.ndarray, np.ndarray | None]:
        ds, plan = self.datasets[which], self.plans[which]
        path, role = self.paths[which], ("t1", "t2")[which]
        bands = _read(ds, path, role, plan.indexes, window=window)
        valid = _dataset_mask(ds, path, role, window=window) > 0 if self._masked[which] else None
        if np.issubdtype(bands.dtype, np.floating):
            finite = np.isfinite(bands).all(axis=0)
            valid = finite if valid is None else valid & finite
        if plan.palette is not None:
            return plan.palette[bands[0].astype(np.uint8)], valid
        if self.stretch is None:
            return np.ascontiguousarray(np.moveaxis(bands, 0, 2)), valid
        return apply_stretch(bands, self.stretch[which]), valid

    def read(self, span: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """t1 and t2 of a window as H×W×3 uint8, and where both are valid (None: everywhere).

        Pixels invalid in either date are zeroed in both, so no detector sees a change where a date has no data.
        """
        window = window_of(span)
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
            check_mask_grid(georef_of(self.ds), georef, self.path, "scene")
            self._colour = [i + 1 for i, ci in enumerate(self.ds.colorinterp) if ci.name != "alpha"] or [1]
            self.lut, self.reading = self._lookup(kind, binary_category)
        except BaseException:
            self.close()
            raise

    def _lookup(self, kind: MaskKind, binary_category: str | None) -> tuple[np.ndarray, MaskReading]:
        """One value→class table for the whole file, so every tile reads the mask by the same convention; the
        channels are checked on the way (the rule of :func:`tools.masks.check_mask_channels`)."""
        present = np.zeros(256, dtype=bool)
        differs, hidden = False, 0
        rows = max(1, STRIP_PIXELS // max(1, self.ds.width))
        for r0 in range(0, self.ds.height, rows):
            window = Window(0, r0, self.ds.width, min(rows, self.ds.height - r0))
            raw = self._raw(window)
            present |= np.bincount(raw.ravel(), minlength=256).astype(bool)
            if len(self._colour) > 1:
                others = _read(self.ds, self.path, "mask", self._colour[1:], window=window)
                if not (others == raw[None]).all():
                    differs = True
                    hidden += int(np.count_nonzero((raw == 0) & (others != 0).any(axis=0)))
        values = np.flatnonzero(present).astype(np.uint8)
        if differs:
            names = [self.ds.colorinterp[i - 1].name for i in self._colour]
            check_mask_channels(self.path, names, {int(v) for v in values}, hidden, kind)
        try:
            classes, reading = classes_from_mask_file(values[None, :], kind, binary_category=binary_category)
        except ValueError as exc:
            raise InputError(f"mask file {self.path}: {exc}") from exc
        lut = np.zeros(256, dtype=np.uint8)
        lut[values] = classes[0]
        return lut, reading

    def _raw(self, window: Window) -> np.ndarray:
        raw = _read(self.ds, self.path, "mask", self._colour[0], window=window)
        if raw.dtype != np.uint8:
            if raw.size and (raw.min() < 0 or raw.max() > 255 or not np.all(np.equal(np.mod(raw, 1), 0))):
                raise InputError(f"mask file {self.path} holds {raw.dtype} values that are not class labels")
            raw = raw.astype(np.uint8)
        return raw

    def read(self, span: tuple[int, int, int, int]) -> np.ndarray:
        return self.lut[self._raw(window_of(span))]

    def close(self) -> None:
        if getattr(self, "ds", None) is not None:
            self.ds.close()
        if self._env is not None:
            self._env.__exit__(None, None, None)
            self._env = None
