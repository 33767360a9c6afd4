"""Areas of interest (tools.aoi) on a real georeferenced pair, against a reference computed here with rasterio,
shapely and pyproj: one parcel inside the pair, one straddling its edge, one outside, written in another CRS.

Data: OSCD Bercy (Sentinel-2, EPSG:4326, 10 m) and its change label from ../shared/data, read in place. Nothing was
tuned on it: the figures are rules (pixel-centre rasterisation, the grid's 5 % rule, geodesic areas).
"""

from __future__ import annotations

import json

import pyogrio.raw
import pytest
from shapely.geometry import box, mapping

from tests.aoi_reference import PARCELS, check_figures, reference, write_parcels
from tools.aoi import aoi_collection, aoi_figures, aoi_figures_on_raster, read_aoi
from tools.mask_geotiff import write_mask_cog
from tools.masks import UserMaskProvider
from tools.pairs import load_pair
from tools.raster import InputError
from tools.vector_export import write_vector


@pytest.fixture(scope="module")
def bercy(shared_data):
    folder = shared_data / "oscd" / "bercy"
    if not (folder / "t1.tif").is_file():
        pytest.skip("OSCD Bercy not in the shared data")
    pair = load_pair(folder / "t1.tif", folder / "t2.tif")
    mask = UserMaskProvider(str(folder / "label.tif")).provide(pair)
    return pair, mask


def test_three_parcels_in_another_crs_match_the_reference(bercy, tmp_path):
    pair, mask = bercy
    outlines = write_parcels(tmp_path / "parcels.gpkg", pair.georef, "EPSG:32631")  # UTM 31N: metres, not degrees
    layer = read_aoi(tmp_path / "parcels.gpkg")
    summary = aoi_figures(layer, mask, pair.georef)
    by_label = {s.label: s for s in summary.polygons}
    assert list(by_label) == ["inside", "edge", "outside"] and by_label["edge"].properties["plot"] == 12
    for name, outline in outlines.items():
        check_figures(by_label[name], reference(outline, pair, mask.class_mask), name)
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


def test_figures_on_a_mask_geotiff_read_window_by_window_match_the_in_memory_ones(bercy, tmp_path):
    """A scene's mask is read around each polygon only; the figures are those of the whole mask in memory."""
    pair, mask = bercy
    write_parcels(tmp_path / "parcels.gpkg", pair.georef, "EPSG:32631")
    layer = read_aoi(tmp_path / "parcels.gpkg")
    path = write_mask_cog(mask, pair.georef, tmp_path / "change_mask.tif")
    windowed = aoi_figures_on_raster(layer, path, mask.source)
    whole = aoi_figures(layer, mask, pair.georef)
    for got, want in zip(windowed.polygons, whole.polygons, strict=True):
        assert (got.label, got.status, got.pixels, got.changed_pixels) == (
            want.label,
            want.status,
            want.pixels,
            want.changed_pixels,
        )
        assert got.area_m2 == pytest.approx(want.area_m2) and got.inside_share == pytest.approx(want.inside_share)
        if want.changed_area_m2 is not None:
            assert got.changed_area_m2 == pytest.approx(want.changed_area_m2, rel=1e-9)
