"""Reading one raster file (PNG, JPEG, TIFF, GeoTIFF) through rasterio, with errors a user can act on.

Everything the product reads from disk goes through :func:`read_raster` (whole files) or :func:`open_raster`
(windowed scene reads), so every input gets the same checks: the file exists, GDAL recognises it, it is
whole, it is not a decompression bomb, and its georeference is kept exactly as stored.

*Whole*: GDAL reports a truncated JPEG or TIFF as a read error, but its PNG driver fills the missing rows
without a word, so PNG files are checked first (:func:`check_png_whole`: every chunk present with a good CRC,
the image data a complete zlib stream, the IEND chunk at the end).

*Valid data*: a pixel is valid unless GDAL's dataset mask says otherwise (nodata in every band, an alpha of
0, an internal mask) or one of its bands is NaN or infinite. :func:`read_raster` returns that mask, so
normalisation, masks, the rules and the overlay all see the same valid part; a date with no valid pixel is
refused here.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from pydantic import BaseModel, ConfigDict
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioError

DEFAULT_MAX_PIXELS = 16_000_000
"""Refuse larger images unless asked: 16 MP (4000×4000) per date, which an analysis holds in about 2 GB
(``bench/bench_memory.py``). Larger scenes go through the tiler (``changeagent scene``)."""
MIN_SIDE = 3
"""The 3×3 grid needs at least three rows and columns."""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ZLIB_CHUNK = 1 << 20


class InputError(ValueError):
    """A user's input cannot be used; the message names the file and the problem."""


class Georef(BaseModel):
    """Where a raster lies: its CRS (as stored, ``EPSG:n`` or WKT) and affine transform (GDAL order a..f)."""

    model_config = ConfigDict(frozen=True)

    crs: str
    transform: tuple[float, float, float, float, float, float]


class RasterData(BaseModel):
    """The pixels of one file (bands first), where they are valid, and what the file says about them."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    path: Path
    bands: np.ndarray
    georef: Georef | None
    color_interp: tuple[str, ...]
    nodata: float | None
    palette: dict[int, tuple[int, int, int, int]] | None
    valid: np.ndarray | None = None
    """H×W bool, True where the pixel holds data; None when every pixel does (or validity was not asked for)."""

    @property
    def height(self) -> int:
        return int(self.bands.shape[1])

    @property
    def width(self) -> int:
        return int(self.bands.shape[2])


def check_png_whole(path: Path, role: str) -> None:
    """Refuse a PNG that is cut short or damaged (GDAL would silently fill its missing rows)."""
    with open(path, "rb") as handle:
        if handle.read(8) != PNG_SIGNATURE:
            return
        inflater = zlib.decompressobj()
        seen_idat = finished = False
        while True:
            header = handle.read(8)
            if len(header) < 8:
                raise InputError(f"{role} file {path} is cut short: the PNG ends before its IEND chunk (truncated?)")
            length, kind = struct.unpack(">I4s", header)
            data = handle.read(length)
            crc = handle.read(4)
            if len(data) < length or len(crc) < 4:
                raise InputError(
                    f"{role} file {path} is cut short inside its {kind.decode('latin-1')} chunk (truncated PNG)"
                )
            if zlib.crc32(kind + data) != struct.unpack(">I", crc)[0]:
                raise InputError(f"{role} file {path} is damaged: the CRC of its {kind.decode('latin-1')} chunk fails")
            if kind == b"IDAT":
                seen_idat = True
                try:
                    while data and not inflater.eof:
                        inflater.decompress(data, _ZLIB_CHUNK)
                        data = inflater.unconsumed_tail
                except zlib.error as exc:
                    raise InputError(f"{role} file {path} is damaged: its image data does not inflate ({exc})") from exc
                finished = inflater.eof
            elif kind == b"IEND":
                if not seen_idat or not finished:
                    raise InputError(f"{role} file {path} is damaged: its image data stops before the image ends")
                return


def _valid_mask(ds: Any, bands: np.ndarray) -> np.ndarray | None:
    """Where the file holds data (see the module docstring); None when everywhere."""
    valid = None
    if any(flag != MaskFlags.all_valid for flags in ds.mask_flag_enums for flag in flags):
        valid = ds.dataset_mask() > 0
    if np.issubdtype(bands.dtype, np.floating):
        finite = np.isfinite(bands).all(axis=0)
        valid = finite if valid is None else valid & finite
    if valid is not None and valid.all():
        return None
    return valid


def open_raster(path: str | Path, role: str = "image") -> Any:
    """Open ``path`` for windowed reads after the same existence and wholeness checks as :func:`read_raster`."""
    path = Path(path)
    _check_path(path, role)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioError as exc:
        raise InputError(f"{role} file {path} is not a readable raster ({gdal_reason(exc)})") from exc


def _check_path(path: Path, role: str) -> None:
    if "\x00" in str(path):
        raise InputError(f"{role} path {str(path)!r} contains a NUL byte")
    if not path.exists():
        raise InputError(f"{role} file not found: {path}")
    if not path.is_file():
        raise InputError(f"{role} path is not a file: {path}")
    try:
        check_png_whole(path, role)
    except OSError as exc:
        raise InputError(f"{role} file {path} could not be read: {exc}") from exc


def read_raster(
    path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, role: str = "image", validity: bool = True
) -> RasterData:
    """Read every band of ``path``; ``role`` names the input in error messages (``t1``, ``mask`` …).

    ``validity`` computes the valid-data mask and refuses a file without a valid pixel; masks pass False
    (a class mask's 0 is "no change", even where its file declares nodata 0).
    """
    path = Path(path)
    _check_path(path, role)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                pixels = ds.width * ds.height
                if pixels > max_pixels:
                    raise InputError(
                        f"{role} file {path} is {ds.width}×{ds.height} = {pixels:,} pixels, over the limit of "
                        f"{max_pixels:,}; raise max_pixels if you trust the file, or analyse it as a scene"
                    )
                if ds.count < 1:
                    raise InputError(f"{role} file {path} has no bands")
                if ds.width < MIN_SIDE or ds.height < MIN_SIDE:
                    raise InputError(
                        f"{role} file {path} is {ds.width}×{ds.height} px; the 3×3 grid needs at least "
                        f"{MIN_SIDE}×{MIN_SIDE}"
                    )
                bands = ds.read()
                interp = tuple(ci.name for ci in ds.colorinterp)
                palette = dict(ds.colormap(1)) if ds.colorinterp[0] == ColorInterp.palette else None
                georef = georef_of(ds)
                nodata = ds.nodata
                valid = _valid_mask(ds, bands) if validity else None
    except InputError:
        raise
    except RasterioError as exc:
        raise InputError(f"{role} file {path} is not a readable image, or is cut short ({gdal_reason(exc)})") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"{role} file {path} could not be read: {exc}") from exc
    if valid is not None and not valid.any():
        raise InputError(
            f"{role} file {path} has no valid pixel (every pixel is nodata, NaN or transparent); nothing to analyse"
        )
    return RasterData(
        path=path, bands=bands, georef=georef, color_interp=interp, nodata=nodata, palette=palette, valid=valid
    )


def gdal_reason(exc: BaseException) -> str:
    """rasterio's message with GDAL's own reason, which rasterio keeps as the exception's cause."""
    cause = exc.__cause__
    return f"{exc}: {cause}" if cause is not None and str(cause) not in str(exc) else str(exc)


def ensure_folder(path: Path, what: str) -> Path:
    """Create the output folder ``path``, or say why it cannot be one (a file is in the way, no permission)."""
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} {path} is a file, not a folder; name a folder for the outputs")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{what} {path} cannot be created: {exc.strerror or exc}") from exc
    return path


def georef_of(ds: rasterio.io.DatasetReader) -> Georef | None:
    """A georeference only when the file has a CRS; PNG/JPEG tiles get pixel coordinates."""
    if ds.crs is None:
        return None
    t = ds.transform
    return Georef(crs=ds.crs.to_string(), transform=(t.a, t.b, t.c, t.d, t.e, t.f))
