"""Reading one raster file (PNG, JPEG, TIFF, GeoTIFF) through rasterio, with errors a user can act on.

Everything the product reads from disk goes through :func:`read_raster`, so every input gets the same
checks: the file exists, GDAL recognises it, it is not a decompression bomb, and its georeference is
kept exactly as stored.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import rasterio
from pydantic import BaseModel, ConfigDict
from rasterio.enums import ColorInterp
from rasterio.errors import NotGeoreferencedWarning, RasterioError

DEFAULT_MAX_PIXELS = 64_000_000
"""Refuse larger images unless asked: 64 MP (8000×8000) per date. Whole scenes go through the tiler."""


class InputError(ValueError):
    """A user's input cannot be used; the message names the file and the problem."""


class Georef(BaseModel):
    """Where a raster lies: its CRS (as stored, ``EPSG:n`` or WKT) and affine transform (GDAL order a..f)."""

    model_config = ConfigDict(frozen=True)

    crs: str
    transform: tuple[float, float, float, float, float, float]


class RasterData(BaseModel):
    """The pixels of one file (bands first) and what the file says about them."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    path: Path
    bands: np.ndarray
    georef: Georef | None
    color_interp: tuple[str, ...]
    nodata: float | None
    palette: dict[int, tuple[int, int, int, int]] | None

    @property
    def height(self) -> int:
        return int(self.bands.shape[1])

    @property
    def width(self) -> int:
        return int(self.bands.shape[2])


def read_raster(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, role: str = "image") -> RasterData:
    """Read every band of ``path``; ``role`` names the input in error messages (``t1``, ``mask`` …)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{role} file not found: {path}")
    if not path.is_file():
        raise InputError(f"{role} path is not a file: {path}")
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
                bands = ds.read()
                interp = tuple(ci.name for ci in ds.colorinterp)
                palette = dict(ds.colormap(1)) if ds.colorinterp[0] == ColorInterp.palette else None
                georef = georef_of(ds)
                nodata = ds.nodata
    except InputError:
        raise
    except RasterioError as exc:
        raise InputError(f"{role} file {path} is not a readable image ({exc})") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"{role} file {path} could not be read: {exc}") from exc
    return RasterData(path=path, bands=bands, georef=georef, color_interp=interp, nodata=nodata, palette=palette)


def georef_of(ds: rasterio.io.DatasetReader) -> Georef | None:
    """A georeference only when the file has a CRS; PNG/JPEG tiles get pixel coordinates."""
    if ds.crs is None:
        return None
    t = ds.transform
    return Georef(crs=ds.crs.to_string(), transform=(t.a, t.b, t.c, t.d, t.e, t.f))
