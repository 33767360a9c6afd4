"""Where a plain image lies: a georeference the user gives, or one completed from GDAL sidecars.

GDAL (through rasterio) already reads the sidecars beside an image: a world file (``.pgw``, ``.jgw``, ``.wld``, …)
gives the pixel grid and an ``.aux.xml`` may add the CRS; such a pair arrives georeferenced from
:func:`tools.pairs.load_pair`. A world file alone has no CRS, and a grid without a CRS is no georeference, so
:func:`place_pair` completes it from a ``.prj`` beside the image (the ESRI convention, which GDAL does not read for
PNG or JPEG) or from a CRS the user names. An image with no sidecar at all is placed by bounds and a CRS. Nothing
here guesses: a pair that is still unplaced stays in pixel coordinates, and exports say so.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import rasterio
from pyproj import CRS as ProjCRS
from rasterio.crs import CRS
from rasterio.errors import CRSError, NotGeoreferencedWarning, RasterioError
from rasterio.transform import from_bounds

from tools.crs import to_crs
from tools.pairs import ImagePair, load_pair, pair_gsd
from tools.raster import Georef, InputError

Bounds = tuple[float, float, float, float]


def parse_crs(text: str) -> str:
    """A CRS as the user names it (``EPSG:32614``, ``4326``, WKT, PROJ) → ``EPSG:n`` when it has a code, else WKT."""
    try:
        crs = CRS.from_user_input(int(text) if text.strip().isdigit() else text.strip())
    except (CRSError, ValueError) as exc:
        raise InputError(f"CRS {text!r} is not one GDAL knows ({exc}); name it like EPSG:32614") from exc
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def parse_bounds(value: str | Sequence[float]) -> Bounds:
    """``"W,S,E,N"`` (commas or spaces; or four numbers) → the edges, checked: finite, W < E, S < N."""
    parts = re.split(r"[,\s]+", value.strip()) if isinstance(value, str) else list(value)
    try:
        numbers = tuple(float(p) for p in parts)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bounds {value!r} must be four numbers W,S,E,N (west, south, east, north)") from exc
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers):
        raise InputError(f"bounds {value!r} must be four finite numbers W,S,E,N (west, south, east, north)")
    west, south, east, north = numbers
    if not (west < east and south < north):
        raise InputError(
            f"bounds {value!r} are read in the order W,S,E,N (west, south, east, north): west must be less than "
            f"east and south less than north{_swapped_hint(numbers, geographic=False)}"
        )
    return west, south, east, north


def _swapped_hint(numbers: Bounds, *, geographic: bool) -> str:
    """The latitude-first reading (S,W,N,E), offered when it would be valid bounds."""
    west, south, east, north = numbers[1], numbers[0], numbers[3], numbers[2]
    valid = west < east and south < north
    if geographic:
        valid = valid and _in_degrees((west, south, east, north))
    if not valid:
        return ""
    return f"; if you wrote latitude first, the W,S,E,N order is --bounds={west:g},{south:g},{east:g},{north:g}"


def _in_degrees(bounds: Bounds) -> bool:
    west, south, east, north = bounds
    return west >= -180 and east <= 180 and south >= -90 and north <= 90


def georef_from_bounds(bounds: Bounds, crs: str, width: int, height: int) -> Georef:
    """The north-up grid that spreads ``width`` × ``height`` pixels over ``bounds`` in ``crs``."""
    west, south, east, north = bounds
    if to_crs(crs).is_geographic and not _in_degrees(bounds):
        swapped = _swapped_hint(bounds, geographic=True)
        raise InputError(
            f"bounds {west:g},{south:g},{east:g},{north:g} are read as W,S,E,N (west, south, east, north) and fall "
            f"outside longitude −180…180 / latitude −90…90, but {crs} is in degrees"
            + (swapped or "; if they are metres, give the projected CRS they are written in (e.g. --crs EPSG:32614)")
        )
    t = from_bounds(west, south, east, north, width, height)
    return Georef(crs=crs, transform=(t.a, t.b, t.c, t.d, t.e, t.f))


def sidecar_grid(path: str | Path) -> tuple[float, float, float, float, float, float] | None:
    """The pixel grid GDAL read from a world file when the image has no CRS (``None`` when it has no grid)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                t = ds.transform
                return None if t.is_identity else (t.a, t.b, t.c, t.d, t.e, t.f)
    except RasterioError:
        return None


def prj_crs(path: str | Path) -> str | None:
    """The CRS of a ``.prj`` file beside the image (``x.prj`` or ``x.png.prj``), when there is one."""
    path = Path(path)
    for candidate in (path.with_suffix(".prj"), path.with_name(path.name + ".prj")):
        if candidate.is_file():
            try:
                return parse_crs(candidate.read_text(encoding="utf-8", errors="replace"))
            except InputError as exc:
                raise InputError(f"{candidate.name} beside {path.name} does not hold a readable CRS") from exc
    return None


def place_pair(pair: ImagePair, *, bounds: str | Sequence[float] | None = None, crs: str | None = None) -> ImagePair:
    """The pair with a georeference when one is given or can be completed; refuses a second, conflicting one.

    ``bounds`` (W,S,E,N) with ``crs`` place a plain pair; ``crs`` alone completes a world file without a CRS.
    A pair that already carries a georeference is returned as it is, and refuses an override: the file's own
    georeference and the user's would disagree silently.
    """
    names = f"{_name(pair.t1_path, 't1')} and {_name(pair.t2_path, 't2')}"
    if pair.georef is not None:
        if bounds is not None or crs:
            raise InputError(
                f"{names} are already georeferenced ({_short(pair.georef.crs)}); bounds and a CRS are for images "
                "without one"
            )
        return pair
    given_crs = parse_crs(crs) if crs else None
    grid = _shared_grid(pair)
    height, width = pair.shape
    if bounds is not None:
        if given_crs is None:
            raise InputError("bounds need the CRS they are written in, e.g. --crs EPSG:4326 for longitude/latitude")
        georef = georef_from_bounds(parse_bounds(bounds), given_crs, width, height)
    elif grid is not None:
        found = given_crs or (prj_crs(pair.t1_path) if pair.t1_path else None)
        if found is None:
            return pair
        georef = Georef(crs=found, transform=grid)
    elif given_crs is not None:
        raise InputError(
            f"a CRS alone cannot place {names}: give the bounds too (W,S,E,N), or put a world file beside the images"
        )
    else:
        return pair
    return pair.model_copy(update={"georef": georef, "gsd_m": pair_gsd(georef, pair.gsd_m)})


def load_placed_pair(
    t1: str | Path,
    t2: str | Path,
    *,
    bounds: str | Sequence[float] | None = None,
    crs: str | None = None,
    **kwargs: object,
) -> ImagePair:
    """:func:`tools.pairs.load_pair`, then :func:`place_pair`: what every front-end calls to read a pair."""
    return place_pair(load_pair(t1, t2, **kwargs), bounds=bounds, crs=crs)  # type: ignore[arg-type]


Placement = Literal["placed", "world_file_without_crs", "no_georeference"]


def placement(pair: ImagePair) -> Placement:
    """Whether the pair's exports can go on a map, and if not, what is missing (a CRS beside a world file, or all)."""
    if pair.georef is not None:
        return "placed"
    if pair.t1_path is not None and sidecar_grid(pair.t1_path) is not None:
        return "world_file_without_crs"
    return "no_georeference"


def _shared_grid(pair: ImagePair) -> tuple[float, float, float, float, float, float] | None:
    if pair.t1_path is None or pair.t2_path is None:
        return None
    first, second = sidecar_grid(pair.t1_path), sidecar_grid(pair.t2_path)
    if (first is None) != (second is None):
        with_grid, without = (pair.t1_path, pair.t2_path) if first else (pair.t2_path, pair.t1_path)
        raise InputError(
            f"{with_grid.name} has a world file but {without.name} has none; give both dates the same world file"
        )
    if first is not None and second is not None and any(abs(a - b) > 1e-6 for a, b in zip(first, second, strict=True)):
        raise InputError(
            f"the world files of {pair.t1_path.name} and {pair.t2_path.name} place them on different grids; "
            "the dates must share one"
        )
    return first


def _name(path: Path | None, role: str) -> str:
    return f"{role} ({path.name})" if path else role


def _short(crs: ProjCRS) -> str:
    return f"EPSG:{crs.to_epsg()}" if crs.to_epsg() else crs.name
