"""The one CRS: how a georeference's CRS is parsed, stored, compared and measured.

A georeference holds a parsed :class:`pyproj.CRS` (:data:`CrsField`), read once from whatever names it (``EPSG:n``,
WKT, PROJ, a rasterio CRS) and written back as text (``EPSG:n`` when that is exactly the CRS, else the text it came
from), so a checkpoint, the pair store's key or a JSON file stores it and reads it back. Every comparer (pairs,
masks, scene inputs) uses :func:`same_crs`, and every length or area (pixel size, areas, AOI, exported objects)
turns the CRS's linear unit into metres with :func:`metres_per_unit`: a CRS in US survey feet counts
0.3048006096 m per unit, never 1.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema
from pyproj import CRS
from pyproj.exceptions import CRSError


def to_crs(value: Any) -> CRS:
    """``value`` (a pyproj or rasterio CRS, or text pyproj reads) as a pyproj CRS; a ValueError when it is none."""
    if isinstance(value, CRS):
        return value
    if not isinstance(value, str) and hasattr(value, "to_wkt"):  # a rasterio CRS: its EPSG code, else its WKT
        value = value.to_string() or value.to_wkt()
    if not isinstance(value, str):
        raise ValueError(f"a CRS is named by text (EPSG:n, WKT or PROJ), not {type(value).__name__}")
    return _parsed(value.strip())


@lru_cache(maxsize=64)
def _parsed(text: str) -> CRS:
    """Cached: every pair, mask and answer names its CRS again."""
    try:
        return CRS.from_user_input(text)
    except CRSError as exc:
        raise ValueError(f"CRS {text!r} is not understood: {exc}") from exc


def crs_text(crs: CRS | str) -> str:
    """How a CRS is stored and shown: ``EPSG:n`` when that code is exactly the CRS, else the text it was read from.

    Text is read first: ``model_copy(update=...)`` skips validation, so a copied georeference may still hold it.
    """
    return to_crs(crs).to_string()


CrsField = Annotated[
    CRS,
    BeforeValidator(to_crs),
    PlainSerializer(crs_text, return_type=str),
    WithJsonSchema({"type": "string", "description": "EPSG:n, WKT or PROJ"}),
]
"""A pydantic field holding a parsed CRS that loads from and dumps to text."""


def same_crs(first: Any, second: Any) -> bool:
    """The one CRS equality rule: two CRS are the same when pyproj reads them as equal, so ``EPSG:32614`` and its
    WKT match; text pyproj cannot read is compared as text."""
    if isinstance(first, str) and first == second:
        return True
    try:
        return to_crs(first) == to_crs(second)
    except ValueError:
        return False


def metres_per_unit(crs: CRS) -> float | None:
    """The one unit rule: metres in one unit of a projected CRS's first axis (0.3048006096 for US survey feet);
    None when the CRS names no usable unit."""
    return (crs.axis_info[0].unit_conversion_factor if crs.axis_info else None) or None
