"""Per-region change (tools.regions) and ground areas (tools.areas) against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agent.answering.provenance import gsd_disagreement, pixel_size_text
from deltavlm.rules import ChangeClass
from tools.areas import pixel_area, row_pixel_areas
from tools.raster import Georef
from tools.regions import summarize_regions


def _mask() -> np.ndarray:
    """A 90×90 class mask: a 10×10 building in TL, a 20×30 road in BR, one 2×2 speck (noise) in CC."""
    mask = np.zeros((90, 90), dtype=np.uint8)
    mask[5:15, 5:15] = ChangeClass.BUILDING
    mask[65:85, 60:90] = ChangeClass.ROAD
    mask[44:46, 44:46] = ChangeClass.BUILDING
    return mask


def test_region_shares_objects_and_the_grid_rule():
    summary = summarize_regions(_mask())
    tl, br, cc = (summary.regions[k] for k in ("TL", "BR", "CC"))
    assert (tl.changed_pixels, tl.fraction, tl.objects, tl.changed) == (100, 100 / 900, 1, True)
    assert br.category_objects == {"road": 1, "building": 0} and br.fraction == 600 / 900
    assert cc.changed_pixels == 4 and cc.objects == 0 and not cc.changed  # under 8 px: noise, and under 5 %
    assert summary.regions["half:top"].changed_pixels == 102 and summary.regions["half:bottom"].changed_pixels == 602
    assert summary.regions["row:bottom"].objects == 1 and summary.regions["col:left"].objects == 1
    assert summary.regions["image"].objects == 2 and summary.object_share["TL"] == 0.5
    assert summary.top_cells[0] == "BR" and summary.clusters == [["TL"], ["BR"]]
    assert summary.threshold == 0.05


def test_projected_pixels_are_the_transform_determinant():
    georef = Georef(crs="EPSG:32614", transform=(0.5, 0.0, 500000.0, 0.0, -0.5, 3300000.0))
    area, rows = pixel_area(georef, 90, None)
    assert area.source == "georeference" and area.mean_pixel_m2 == pytest.approx(0.25)
    summary = summarize_regions(_mask(), row_area_m2=rows)
    assert summary.regions["TL"].area_m2 == pytest.approx(25.0)  # 100 px × 0.25 m²
    assert summary.regions["image"].region_area_m2 == pytest.approx(90 * 90 * 0.25)


def test_geographic_pixels_are_measured_on_the_ellipsoid():
    """A 0.0001° pixel at 43.7° N: about 11.1 km per degree of latitude, cos(lat) of that per degree of longitude."""
    georef = Georef(crs="EPSG:4326", transform=(0.0001, 0.0, 10.0, 0.0, -0.0001, 43.7))
    rows, method = row_pixel_areas(georef, 3)
    lat = math.radians(43.7)
    sphere = (0.0001 * 111_320 * math.cos(lat)) * (0.0001 * 110_950)
    assert rows[0] == pytest.approx(sphere, rel=0.01) and method == "geodesic"
    assert rows[0] < rows[2]  # row 0 is the northernmost: pixels shrink towards the pole


def test_a_user_gsd_serves_plain_pairs_and_loses_to_a_georeference():
    area, rows = pixel_area(None, 10, 2.0)
    assert area.source == "user" and rows is not None and rows[0] == 4.0
    unknown, none = pixel_area(None, 10, None)
    assert unknown.source == "unknown" and none is None
    georef = Georef(crs="EPSG:32614", transform=(0.5, 0.0, 0.0, 0.0, -0.5, 0.0))
    disagree, _ = pixel_area(georef, 10, 3.0)
    assert disagree.source == "georeference" and disagree.disagreeing_gsd_m == 3.0
    assert (
        gsd_disagreement(disagree)
        == "you gave a pixel size of 3 m, but the georeference says about 0.5 m; I used the georeference"
    )
    agree, _ = pixel_area(georef, 10, 0.5)
    assert agree.disagreeing_gsd_m is None and gsd_disagreement(agree) is None
    assert pixel_size_text(agree) == "projected CRS EPSG:32614: |a·e − b·d| = 0.25 m² per pixel"
    assert (
        pixel_size_text(area, "fr") == "votre distance d'échantillonnage au sol : 2 m par côté de pixel, 4 m² par pixel"
    )


def test_one_crs_equality_rule_reads_the_crs_not_its_spelling():
    from pyproj import CRS

    from tools.crs import same_crs

    assert same_crs("EPSG:32614", CRS.from_epsg(32614).to_wkt())
    assert same_crs("EPSG:4326", "epsg:4326") and same_crs("not a crs", "not a crs")
    assert not same_crs("EPSG:32614", "EPSG:32615") and not same_crs("EPSG:32614", "not a crs")
