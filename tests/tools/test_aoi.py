"""Areas of interest (tools.aoi) on a real georeferenced pair, against a reference computed here with rasterio,
shapely and pyproj: one parcel inside the pair, one straddling its edge, one outside, written in another CRS.

Data: OSCD Bercy (Sentinel-2, EPSG:4326, 10 m) and its change label from ../shared/data, read in place. Nothing was
tuned on it: the figures are rules (pixel-centre rasterisation, the grid's 5 % rule, geodesic areas).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyogrio.raw
import pytest
import rasterio
import rasterio.features
import shapely
from affine import Affine
from pyproj import Geod, Transformer
from shapely.geometry import box, mapping

from tools.aoi import aoi_collection, aoi_figures, read_aoi
from tools.masks import UserMaskProvider
from tools.pairs import load_pair
from tools.raster import InputError
from tools.vector_export import write_vector

WGS84 = Geod(ellps="WGS84")
PARCELS = {  # pixel boxes (col0, row0, col1, row1) on the 360×395 Bercy grid
    "inside": (40, 260, 160, 380),
    "edge": (300, 100, 420, 200),  # 60 of its 120 columns lie east of the pair
    "outside": (500, 0, 600, 100),
}


@pytest.fixture(scope="module")
def bercy(shared_data):
    folder = shared_data / "oscd" / "bercy"
    if not (folder / "t1.tif").is_file():
        pytest.skip("OSCD Bercy not in the shared data")
    pair = load_pair(folder / "t1.tif", folder / "t2.tif")
    mask = UserMaskProvider(str(folder / "label.tif")).provide(pair)
    return pair, mask


def _lonlat(georef, pixel_box):
    t = Affine(*georef.transform)
    return shapely.affinity.affine_transform(box(*pixel_box), [t.a, t.b, t.d, t.e, t.xoff, t.yoff])


def _write_parcels(path: Path, georef, crs: str) -> dict[str, shapely.Geometry]:
    """The parcels as a GeoPackage in ``crs`` (reprojected with pyproj), with a name and a plot number."""
    to_crs = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    lonlat = {name: _lonlat(georef, b) for name, b in PARCELS.items()}
    projected = [
        shapely.transform(g, lambda xy: np.column_stack(to_crs.transform(xy[:, 0], xy[:, 1]))) for g in lonlat.values()
    ]
    pyogrio.raw.write(
        str(path),
        np.array([shapely.to_wkb(g) for g in projected], dtype=object),
        [np.array(list(lonlat), dtype=object), np.array([11, 12, 13])],
        ["name", "plot"],
        layer="parcels",
        geometry_type="Polygon",
        crs=crs,
    )
    return lonlat


def _reference(lonlat, pair, mask):
    """What each parcel's figures must be, computed independently of tools.aoi."""
    georef = pair.georef
    height, width = pair.shape
    t = Affine(*georef.transform)
    inside = rasterio.features.rasterize([(lonlat, 1)], out_shape=(height, width), transform=t).astype(bool)
    changed = (mask.class_mask > 0) & inside
    footprint = _lonlat(georef, (0, 0, width, height))
    row_m2 = []
    for row in range(height):
        ring = [(t.c + t.a * x, t.f + t.e * y) for x, y in ((0, row), (1, row), (1, row + 1), (0, row + 1))]
        row_m2.append(abs(WGS84.polygon_area_perimeter(*zip(*ring, strict=True))[0]))
    area = abs(WGS84.geometry_area_perimeter(lonlat)[0])
    clipped = lonlat.intersection(footprint)
    fraction = changed.sum() / inside.sum() if inside.any() else None
    return {
        "pixels": int(inside.sum()),
        "changed_pixels": int(changed.sum()),
        "changed_fraction": fraction,
        "area_m2": area,
        "inside_share": (abs(WGS84.geometry_area_perimeter(clipped)[0]) / area) if not clipped.is_empty else 0.0,
        "changed_area_m2": float(changed.sum(axis=1) @ np.array(row_m2)),
        "changed": None if fraction is None else bool(fraction > 0.05),
    }


def test_three_parcels_in_another_crs_match_the_reference(bercy, tmp_path):
    pair, mask = bercy
    lonlat = _write_parcels(tmp_path / "parcels.gpkg", pair.georef, "EPSG:32631")  # UTM 31N: metres, not degrees
    layer = read_aoi(tmp_path / "parcels.gpkg")
    summary = aoi_figures(layer, mask, pair.georef)
    by_label = {s.label: s for s in summary.polygons}
    assert list(by_label) == ["inside", "edge", "outside"] and by_label["edge"].properties["plot"] == 12
    for name, geometry in lonlat.items():
        want, got = _reference(geometry, pair, mask), by_label[name]
        assert got.pixels == want["pixels"] and got.changed_pixels == want["changed_pixels"], name
        assert got.area_m2 == pytest.approx(want["area_m2"], rel=1e-4), name
        assert got.inside_share == pytest.approx(want["inside_share"], abs=2e-3), name
        if want["changed_fraction"] is None:
            assert got.changed_fraction is None and got.changed is None
        else:
            assert got.changed_fraction == pytest.approx(want["changed_fraction"])
            assert got.changed_area_m2 == pytest.approx(want["changed_area_m2"], rel=1e-6)
            assert got.changed is want["changed"]
    assert [by_label[n].status for n in PARCELS] == ["inside", "partly outside", "outside"]
    assert by_label["edge"].inside_share == pytest.approx(0.5, abs=0.01)
    assert by_label["inside"].changed_pixels > 0  # the Bercy label has change in the south-west

    # the export is the AOI layer with the figures as columns, in every format
    collection = aoi_collection(layer, summary, pair.georef)
    for name in ("aoi.geojson", "aoi.gpkg"):
        written = write_vector(collection, tmp_path / name)
        meta, _, _, fields = pyogrio.raw.read(written[0], layer="aois" if name.endswith(".gpkg") else None)
        columns = dict(zip(meta["fields"], fields, strict=True))
        assert list(columns["name"]) == list(PARCELS) and meta["geometry_type"] == "MultiPolygon"
        assert columns["area_m2"][0] == pytest.approx(by_label["inside"].area_m2, rel=1e-6)
    # a Shapefile (here the export itself, in EPSG:4326) reads back as the same areas of interest
    shapefile = write_vector(collection, tmp_path / "again.shp")[0]
    again = aoi_figures(read_aoi(shapefile), mask, pair.georef)
    assert [(s.label, s.pixels) for s in again.polygons] == [(s.label, s.pixels) for s in summary.polygons]


def test_invalid_polygons_are_repaired_and_said_and_other_geometries_refused(tmp_path):
    bow_tie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    features = [{"type": "Feature", "geometry": bow_tie, "properties": {"id": "p1"}}]
    (tmp_path / "a.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    layer = read_aoi(tmp_path / "a.geojson")
    assert layer.polygons[0].repaired and "Self-intersection" in layer.polygons[0].repaired
    assert layer.polygons[0].geometry.is_valid and layer.polygons[0].geometry.area == pytest.approx(0.5)
    point = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]}, "properties": {}}]
    (tmp_path / "p.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": point}))
    with pytest.raises(InputError, match=r"p.geojson feature 1 is a Point"):
        read_aoi(tmp_path / "p.geojson")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(InputError, match="GeoJSON, GeoPackage"):
        read_aoi(tmp_path / "x.csv")
    (tmp_path / "broken.geojson").write_text("{not json")
    with pytest.raises(InputError, match=r"broken\.geojson cannot be read"):
        read_aoi(tmp_path / "broken.geojson")


def test_an_unplaced_pair_with_an_aoi_is_a_clear_error(bercy, tmp_path):
    _, mask = bercy
    features = [{"type": "Feature", "geometry": mapping(box(0, 0, 1, 1)), "properties": {}}]
    (tmp_path / "a.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    with pytest.raises(InputError, match=r"no georeference.*a\.geojson cannot be placed"):
        aoi_figures(read_aoi(tmp_path / "a.geojson"), mask, None)
