"""The GeoPackage a batch's merged layer is streamed into: every feature once, in its kind's layer, with one schema
for features whose properties differ, whatever the chunk size."""

from __future__ import annotations

import pyogrio.raw

from tools.crs import to_crs
from tools.vector_export import merged_kind, write_gpkg_stream


def _square(x: float, properties: dict) -> dict:
    ring = [[x, 0.0], [x + 1, 0.0], [x + 1, 1.0], [x, 1.0], [x, 0.0]]
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": properties}


FEATURES = [
    _square(0, {"feature": "cell", "pair": "a", "cell": "A1", "fraction": 0.5}),
    _square(1, {"feature": "object", "pair": "a", "area_m2": 12, "category": "building"}),
    _square(2, {"feature": "object", "pair": "b", "area_m2": 3.5}),  # no categories in pair b's mask
    _square(3, {"feature": "object", "pair": "c", "area_m2": 7, "category": "road", "note": {"kept": True}}),
    _square(4, {"feature": "cell", "pair": "c", "cell": "B2", "fraction": 1}),
]


def test_kinds_merge_to_the_widest_one():
    assert merged_kind(None, 3) == "int" and merged_kind("int", 2.5) == "float" and merged_kind("float", 1) == "float"
    assert merged_kind("bool", 1) == "text" and merged_kind("int", "x") == "text" and merged_kind("int", None) == "int"


def test_streamed_layers_hold_every_feature_with_one_schema(tmp_path):
    reads = []

    def features():
        reads.append(1)
        return iter(FEATURES)

    path = write_gpkg_stream(tmp_path / "changes.gpkg", features, to_crs("EPSG:4326").to_wkt(), chunk=1)
    assert len(reads) == 2  # once for the fields, once to write: never the whole layer in memory
    assert [name for name, _ in pyogrio.list_layers(path)] == ["cells", "objects"]
    meta, _, geometry, fields = pyogrio.raw.read(path, layer="objects")
    assert len(geometry) == 3 and meta["geometry_type"] == "MultiPolygon" and "4326" in meta["crs"]
    columns = dict(zip(meta["fields"], fields, strict=True))
    assert list(columns) == ["feature", "pair", "area_m2", "category", "note"]
    assert list(columns["area_m2"]) == [12.0, 3.5, 7.0]  # integers and a float: one float field
    assert list(columns["category"]) == ["building", None, "road"]  # pair b has none: null, not ""
    assert columns["note"][2] == '{"kept": true}'
    meta, _, geometry, fields = pyogrio.raw.read(path, layer="cells")
    fraction = dict(zip(meta["fields"], fields, strict=True))["fraction"]
    assert len(geometry) == 2 and [float(v) for v in fraction] == [0.5, 1.0]


def test_an_empty_stream_still_has_its_cells_layer_and_pixel_layers_no_crs(tmp_path):
    path = write_gpkg_stream(tmp_path / "empty.gpkg", lambda: iter([]), None)
    assert [name for name, _ in pyogrio.list_layers(path)] == ["cells"]
    meta, _, geometry, _ = pyogrio.raw.read(path, layer="cells")
    assert len(geometry) == 0 and meta["crs"] is None


def test_cells_lead_whatever_kind_fills_a_chunk_first(tmp_path):
    objects_first = [f for f in FEATURES if f["properties"]["feature"] == "object"] + FEATURES[:1]
    path = write_gpkg_stream(tmp_path / "order.gpkg", lambda: iter(objects_first), None, chunk=2)
    assert [name for name, _ in pyogrio.list_layers(path)] == ["cells", "objects"]
    assert len(pyogrio.raw.read(path, layer="objects")[2]) == 3 and len(pyogrio.raw.read(path, layer="cells")[2]) == 1
