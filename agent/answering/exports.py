"""What an answer says about the files it wrote: what a GeoJSON holds, whether it can go on a map, where it is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.answering.catalog import message
from agent.answering.numbers import integer, plural
from agent.answering.wording import gap, join, sentences
from tools.geojson import export_contents
from tools.georef import placement
from tools.pairs import ImagePair


def _counted(key: str, n: int, lang: str) -> str:
    return message(f"{key}:{plural(n, lang)}", lang).format(n=integer(n, lang))


def describe_export(collection: Mapping[str, Any], lang: str = "en", fmt: str = "GeoJSON") -> str:
    """What a written vector file (``fmt``: GeoJSON, Shapefile, GeoPackage) holds, in one or two sentences an answer
    can carry; another format than GeoJSON says that a GeoJSON with the same features was written too."""
    contents = export_contents(collection)
    if not contents.cells and not contents.objects:
        said = message("export_empty_collection", lang).format(fmt=fmt)
    else:
        cells, objects = (
            _counted("export_cells", contents.cells, lang),
            _counted("export_objects", contents.objects, lang),
        )
        said = message("export_holds", lang).format(fmt=fmt, cells=cells, objects=objects)
    if fmt != FORMAT_NAMES["geojson"]:
        said += " " + message("export_geojson_too", lang)
    if contents.pixel_coordinates:
        said += " " + message("export_pixel_coordinates", lang)
    return said


def unplaced_hint(pair: ImagePair, lang: str = "en") -> str:
    """Why exports of a pair without a georeference cannot go on a map, and what to do (empty when placed)."""
    where = placement(pair)
    if where == "placed":
        return ""
    if where == "world_file_without_crs" and pair.t1_path is not None:
        return message("unplaced_world_file", lang).format(file=pair.t1_path.name)
    return message("unplaced", lang)


FORMAT_NAMES = {"geojson": "GeoJSON", "gpkg": "GeoPackage", "shp": "Shapefile", "mask_geotiff": "GeoTIFF"}
"""File formats by artefact kind (proper names: the same in every language)."""
VECTOR_KINDS = ("shp", "gpkg", "geojson")
"""The vector formats an export is written in (the one asked comes first among the artefacts)."""


def export_notes(
    collection: Mapping[str, Any] | None,
    pair: ImagePair,
    artefacts: Mapping[str, str],
    lang: str = "en",
    unwritten: str | None = None,
) -> str:
    """What an export adds to the answer: a format asked for and not written (said first), what the GeoJSON holds,
    whether it can go on a map, where the files are."""
    notes = []
    written = [FORMAT_NAMES[kind] for kind in artefacts if kind in FORMAT_NAMES]
    if unwritten and written:
        notes.append(message("format_not_written", lang).format(asked=unwritten, written=join(written, lang)))
    if collection is not None:
        features = collection.get("features") or []
        aois = sum(1 for f in features if f["properties"].get("feature") == "aoi")
        if aois:
            notes.append(message("export_aoi_layer", lang).format(n=integer(aois, lang)))
        else:
            vector = next((FORMAT_NAMES[kind] for kind in artefacts if kind in VECTOR_KINDS), FORMAT_NAMES["geojson"])
            notes.append(describe_export(collection, lang, vector))
        if pair.georef is None:
            notes.append(unplaced_hint(pair, lang))
    notes.extend(message(f"artefact:{kind}", lang).format(path=path) for kind, path in artefacts.items())
    said = sentences(notes, lang)
    return gap(lang) + said if said else ""  # after the answer's own sentences
