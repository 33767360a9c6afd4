"""Vector exports in the formats GIS users open every day: GeoJSON, GeoPackage and Shapefile, chosen by suffix.

Every format holds the same facts as the GeoJSON FeatureCollection built by :mod:`tools.geojson`. GeoPackage and
Shapefile are written through pyogrio (GDAL) with one geometry type per layer, MultiPolygon, and one layer per kind of
feature (``cells``, ``objects``, ``aois``, ``tiles``): QGIS and ``ogrinfo`` report the type instead of "Unknown (any)",
and a Shapefile needs no ``-nlt PROMOTE_TO_MULTI``. A GeoPackage is one file holding every layer, with the run's
provenance as dataset metadata; a Shapefile holds one layer, so ``changes.shp`` is written as ``changes_cells.shp``,
``changes_objects.shp`` …, with field names cut to the format's 10 characters by a fixed table.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyogrio.raw
import shapely
from shapely.geometry import shape

from tools.atomic import replacing, write_atomic
from tools.crs import to_crs
from tools.geojson import PROVENANCE_MEMBER, tidy, write_geojson
from tools.raster import InputError

VectorFormat = Literal["geojson", "gpkg", "shp"]
SUFFIXES: dict[str, VectorFormat] = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".shp": "shp"}
DRIVERS = {"gpkg": "GPKG", "shp": "ESRI Shapefile"}
SHAPEFILE_WORDS = (("fraction", "frac"), ("changed", "chg"), ("building", "bldg"), ("count", "n"))
"""How long property names are shortened for a Shapefile's 10-character fields (``building_fraction`` →
``bldg_frac``), before any cut: shortened words keep names apart that a plain cut would merge."""


def format_of(path: str | Path) -> VectorFormat:
    """The export format a file name asks for; an unknown suffix is an input error naming the known ones."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        known = ", ".join(sorted(SUFFIXES))
        raise InputError(f"cannot tell the export format of {Path(path).name}: use one of the suffixes {known}")
    return SUFFIXES[suffix]


def file_suffix(fmt: VectorFormat) -> str:
    return {"geojson": ".geojson", "gpkg": ".gpkg", "shp": ".shp"}[fmt]


def write_vector(collection: Mapping[str, Any], path: str | Path) -> list[Path]:
    """Write ``collection`` in the format its suffix names; returns every file written (a Shapefile has several
    layers, each a ``.shp`` with its sidecars, of which the ``.shp`` files are listed)."""
    path = Path(path)
    fmt = format_of(path)
    if fmt == "geojson":
        return [write_geojson(dict(collection), path)]
    path.parent.mkdir(parents=True, exist_ok=True)
    layers = _layers(collection)
    crs = _crs_wkt(collection)
    provenance = collection.get(PROVENANCE_MEMBER)
    written = []
    if fmt == "gpkg":
        with replacing(path) as temporary:
            for number, (name, features) in enumerate(layers.items()):
                metadata = {PROVENANCE_MEMBER: json.dumps(provenance)} if provenance and number == 0 else None
                _write_layer(temporary, name, features, crs, "gpkg", append=number > 0, dataset_metadata=metadata)
        written.append(path)
    else:  # several files per layer (.shp, .shx, .dbf, .prj, .cpg): written aside, then each renamed into place
        staging = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", dir=path.parent))
        try:
            for name, features in layers.items():
                layer_path = path.with_name(f"{path.stem}_{name}.shp")
                _write_layer(staging / layer_path.name, name, features, crs, "shp")
                for stale in layer_path.parent.glob(f"{layer_path.stem}.*"):
                    stale.unlink()
                for part in staging.glob(f"{layer_path.stem}.*"):
                    os.replace(part, layer_path.with_suffix(part.suffix))
                written.append(layer_path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return written


def write_zipped_shapefile(collection: Mapping[str, Any], path: str | Path) -> Path:
    """The Shapefile layers of ``collection`` in one ``.zip`` (a single download; QGIS and GDAL open it as it is)."""
    path = Path(path)
    if path.suffix.lower() != ".zip":
        raise InputError(f"a zipped Shapefile is written to a .zip file, not {path.name}")
    with tempfile.TemporaryDirectory() as staging:
        layers = write_vector(collection, Path(staging) / f"{path.stem}.shp")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for layer in layers:
                for part in sorted(layer.parent.glob(f"{layer.stem}.*")):
                    archive.write(part, part.name)
    return write_atomic(path, buffer.getvalue())


def layer_of(feature: Mapping[str, Any]) -> str:
    """The layer a feature goes to, by its ``feature`` property (``cell`` → ``cells``)."""
    return f"{feature['properties'].get('feature') or 'feature'}s"


def _layers(collection: Mapping[str, Any]) -> dict[str, list[Mapping[str, Any]]]:
    """Features grouped by their ``feature`` property (``cell`` → layer ``cells``); a change export always has its
    ``cells`` layer, empty when no cell changed, so it opens with the same first layer (an AOI export has ``aois``)."""
    features = collection.get("features") or []
    aoi = any(f["properties"].get("feature") == "aoi" for f in features)
    layers: dict[str, list[Mapping[str, Any]]] = {} if aoi else {"cells": []}
    for feature in features:
        layers.setdefault(layer_of(feature), []).append(feature)
    return layers


def write_gpkg_stream(
    path: str | Path, features: Callable[[], Iterable[Mapping[str, Any]]], crs: str | None, *, chunk: int = 5000
) -> Path:
    """A GeoPackage of the features ``features()`` yields, read twice (once for each layer's fields and their types,
    once to write them ``chunk`` at a time), so a batch of any size needs the memory of one chunk, not of its whole
    layer. Pairs whose features carry different properties share one schema: a property a feature lacks is null.
    ``crs`` is WKT, or None for pixel coordinates. Written aside and moved into place."""
    path = Path(path)
    fields: dict[str, dict[str, FieldKind | None]] = {"cells": {}}
    for feature in features():
        kinds = fields.setdefault(layer_of(feature), {})
        for key, value in feature["properties"].items():
            kinds[key] = merged_kind(kinds.get(key), value)
    with replacing(path) as temporary:
        for number, (name, kinds) in enumerate(fields.items()):  # every layer made first: ``cells`` leads
            _write_layer(temporary, name, [], crs, "gpkg", append=number > 0, kinds=kinds)
        pending: dict[str, list[Mapping[str, Any]]] = {name: [] for name in fields}

        def flush(name: str) -> None:
            _write_layer(temporary, name, pending[name], crs, "gpkg", append=True, kinds=fields[name])
            pending[name] = []

        for feature in features():
            name = layer_of(feature)
            pending[name].append(feature)
            if len(pending[name]) >= chunk:
                flush(name)
        for name in fields:
            if pending[name]:
                flush(name)
    return path


def _crs_wkt(collection: Mapping[str, Any]) -> str | None:
    """The collection's coordinates as WKT: its legacy ``crs`` member, none for pixel coordinates, else WGS84."""
    if "coordinate_system" in collection:
        return None
    named = (collection.get("crs") or {}).get("properties", {}).get("name")
    return to_crs(named or "EPSG:4326").to_wkt()


def _write_layer(
    path: Path,
    layer: str,
    features: list[Mapping[str, Any]],
    crs: str | None,
    fmt: VectorFormat,
    *,
    append: bool = False,
    dataset_metadata: dict[str, str] | None = None,
    kinds: Mapping[str, FieldKind | None] | None = None,
) -> None:
    """One layer (or, with ``append`` on an existing layer, more of its features); ``kinds`` fixes the fields and
    their types when the features are written in chunks, else they come from these features."""
    if kinds is None:
        found: dict[str, FieldKind | None] = {}
        for feature in features:
            for key, value in feature["properties"].items():
                found[key] = merged_kind(found.get(key), value)
        kinds = found
    keys = list(kinds)
    names = _shapefile_names(keys) if fmt == "shp" else keys
    columns = [_column([f["properties"].get(k) for f in features], kinds[k], fmt) for k in keys]
    geometry = np.array([shapely.to_wkb(tidy(shape(f["geometry"]))) for f in features], dtype=object)
    options: dict[str, Any] = {"encoding": "UTF-8"} if fmt == "shp" else {}
    if fmt == "gpkg" and not append:
        options["dataset_options"] = {"VERSION": "1.2"}  # GeoPackage 1.2: opens in older GDAL and QGIS too
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'crs' was not provided")  # pixel exports: no CRS, said in the file
        pyogrio.raw.write(
            str(path),
            geometry,
            [values for values, _ in columns],
            names,
            field_mask=[mask for _, mask in columns],
            layer=layer,
            driver=DRIVERS[fmt],
            geometry_type="MultiPolygon",
            crs=crs,
            append=append,
            dataset_metadata=dataset_metadata,
            **options,
        )


FieldKind = Literal["bool", "int", "float", "text"]


def merged_kind(kind: FieldKind | None, value: Any) -> FieldKind | None:
    """A field's type once ``value`` is seen too: one kind stays, integers with floats are floats, any other mix is
    text (None: only nulls so far)."""
    if value is None:
        return kind
    seen: FieldKind = (
        "bool"
        if isinstance(value, bool)
        else "int"
        if isinstance(value, int)
        else "float"
        if isinstance(value, float)
        else "text"
    )
    if kind is None or kind == seen:
        return seen
    return "float" if {kind, seen} == {"int", "float"} else "text"


def _column(values: list[Any], kind: FieldKind | None, fmt: VectorFormat) -> tuple[np.ndarray, np.ndarray | None]:
    """One field's values as an array of its kind and their null mask (a property a feature lacks is null, never
    0)."""
    missing = np.array([v is None for v in values], dtype=bool)
    mask = missing if missing.any() else None
    if kind == "bool":
        if fmt == "shp":  # no boolean fields in a Shapefile
            return np.array([int(bool(v)) for v in values], dtype=np.int32), mask
        return np.array([bool(v) for v in values], dtype=bool), mask
    if kind == "int":
        return np.array([v or 0 for v in values], dtype=np.int64), mask
    if kind == "float":
        return np.array([float("nan") if v is None else float(v) for v in values], dtype=np.float64), mask
    text = [None if v is None else v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in values]
    return np.array(text, dtype=object), mask


def _shapefile_names(keys: list[str]) -> list[str]:
    """Property names within a Shapefile's 10 characters, distinct, by the fixed table then a numbered cut."""
    names: list[str] = []
    for key in keys:
        short = key
        if len(short) > 10:
            for word, abbreviation in SHAPEFILE_WORDS:
                short = short.replace(word, abbreviation)
        short = re.sub(r"[^A-Za-z0-9_]", "_", short)[:10]
        number = 1
        while short in names:
            tail = f"_{number}"
            short, number = short[: 10 - len(tail)] + tail, number + 1
        names.append(short)
    return names
