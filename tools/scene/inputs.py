"""Windowed reads of both dates: one grid (or t2 warped onto t1's), the RGB bands picked once, one stretch.

8-bit bands pass unchanged; other types are stretched per band from the 2nd to the 98th percentile of both dates
together (the rule of :mod:`tools.pairs`), with the percentiles taken once on a decimated read of the whole scene
(<= 2048 px a side) so every tile gets the same stretch."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.features
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from tools.masks import MaskKind, classes_from_mask_file
from tools.pairs import STRETCH_PERCENTILES
from tools.raster import Georef, InputError, georef_of
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
        return self.lut[self._raw(window_of(span))]

    def close(self) -> None:
        if getattr(self, "ds", None) is not None:
            self.ds.close()
        if self._env is not None:
            self._env.__exit__(None, None, None)
            self._env = None
