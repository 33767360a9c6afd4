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

from tools.crs import CrsField

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
    """Where a raster lies: its CRS (parsed; stored as ``EPSG:n`` or WKT) and affine transform (GDAL order a..f)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    crs: CrsField
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


def _png_size(handle: Any, path: Path, role: str) -> tuple[int, int, int]:
    """(width, height, bytes of the inflated image data) from the IHDR chunk, read before anything is inflated."""
    header = handle.read(8 + 13 + 4)
    if len(header) < 25 or header[4:8] != b"IHDR":
        raise InputError(f"{role} file {path} is damaged: its PNG header (IHDR) is missing or cut short")
    width, height, depth, colour = struct.unpack(">IIBB", header[8:18])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 4)
    row_bytes = 1 + (width * channels * max(depth, 1) + 7) // 8
    interlace = header[20]
    return width, height, height * row_bytes * (2 if interlace else 1)


def check_png_whole(path: Path, role: str, max_pixels: int | None = None) -> None:
    """Refuse a PNG that is cut short or damaged (GDAL would silently fill its missing rows).

    The size in its header is checked against ``max_pixels`` *before* any image data is inflated, and inflation
    stops as soon as the data outgrows what that header allows: a 100000² "bomb" is refused at once, not after
    inflating gigabytes."""
    with open(path, "rb") as handle:
        if handle.read(8) != PNG_SIGNATURE:
            return
        width, height, expected = _png_size(handle, path, role)
        if max_pixels is not None and width * height > max_pixels:
            raise InputError(
                f"{role} file {path} is {width}×{height} = {width * height:,} pixels, over the limit of "
                f"{max_pixels:,} (read from its PNG header, before decoding); raise max_pixels if you trust the "
                "file, or analyse it as a scene"
            )
        inflater = zlib.decompressobj()
        inflated = 0
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
                        inflated += len(inflater.decompress(data, _ZLIB_CHUNK))
                        data = inflater.unconsumed_tail
                        if inflated > expected:
                            raise InputError(
                                f"{role} file {path} is damaged: its image data inflates past the {width}×{height} "
                                "its header states (a decompression bomb?)"
                            )
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
            ds = rasterio.open(path)
    except RasterioError as exc:
        raise InputError(f"{role} file {path} is not a readable raster ({gdal_reason(exc)})") from exc
    try:
        refuse_complex(ds, path, role)
        check_geographic_extent(ds, path, role)
    except InputError:
        ds.close()
        raise
    return ds


def _check_path(path: Path, role: str, max_pixels: int | None = None) -> None:
    if "\x00" in str(path):
        raise InputError(f"{role} path {str(path)!r} contains a NUL byte")
    if not path.exists():
        raise InputError(f"{role} file not found: {path}")
    if not path.is_file():
        raise InputError(f"{role} path is not a file: {path}")
    try:
        check_png_whole(path, role, max_pixels)
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
    _check_path(path, role, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                refuse_complex(ds, path, role)
                check_geographic_extent(ds, path, role)
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
                check_memory(path, role, ds.width, ds.height)
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


ANALYSIS_BYTES_PER_PIXEL = 125
"""What analysing one pixel of a pair holds at its peak (both dates, masks, regions, overlay): about 2 GB for
16 MP, measured by ``bench/bench_memory.py``."""


def available_memory() -> int | None:
    """Bytes the kernel says a new allocation can still get (``MemAvailable``); None where it is not known."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(path: Path, role: str, width: int, height: int) -> None:
    """Refuse, with an estimate, an image whose analysis would not fit in the memory that is free now."""
    needed = width * height * ANALYSIS_BYTES_PER_PIXEL
    free = available_memory()
    if free is not None and needed > free:
        raise InputError(
            f"{role} file {path} is {width}×{height}: analysing the pair needs about {needed / 1e9:.1f} GB of memory "
            f"and about {free / 1e9:.1f} GB is free; analyse it as a scene (changeagent scene), which reads it in "
            "tiles"
        )


def check_geographic_extent(ds: Any, path: Path, role: str) -> None:
    """A raster in degrees must lie on the globe: latitudes within ±90° (areas beyond are "nan km²")."""
    if ds.crs is None or not ds.crs.is_geographic:
        return
    t = ds.transform
    corners = [t * (col, row) for col in (0, ds.width) for row in (0, ds.height)]
    latitudes = [lat for _, lat in corners]
    if not all(np.isfinite(latitudes)) or max(abs(lat) for lat in latitudes) > 90.0 + 1e-9:
        low, high = min(latitudes), max(latitudes)
        raise InputError(
            f"{role} file {path} is in degrees ({ds.crs.to_string()}) but reaches latitude {low:g}° to {high:g}°, "
            "beyond ±90°: its georeference is wrong (a swapped axis or a pixel size in the wrong unit?)"
        )


def refuse_complex(ds: Any, path: Path, role: str) -> None:
    """Complex (radar, SLC) samples have no brightness to compare; say so instead of failing deep in numpy."""
    if any(np.issubdtype(np.dtype(dtype), np.complexfloating) or "complex" in str(dtype) for dtype in ds.dtypes):
        raise InputError(
            f"{role} file {path} holds complex values ({ds.dtypes[0]}, e.g. radar SLC); convert it to amplitude "
            "or intensity (e.g. gdal_translate with a |z| band) before comparing dates"
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
    try:
        return Georef(crs=ds.crs, transform=(t.a, t.b, t.c, t.d, t.e, t.f))
    except ValueError as exc:
        raise InputError(f"{ds.name} has a CRS that PROJ does not understand ({ds.crs}); reproject it first") from exc
