"""One unit rule: a pair in a CRS measured in feet (US survey or international) gets the same areas in the chat and on
every exported object, in m² and ha, converted with the foot's size in metres (never taken as metres).

Synthetic data only: GeoTIFF pairs and their change masks written here in EPSG:2277 (NAD83 / Texas Central, ftUS)
and EPSG:2222 (NAD83 / Arizona East, international feet).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pyogrio.raw
import pytest
import rasterio
from pyproj import CRS, Geod
from rasterio.transform import from_origin
from shapely import from_wkb
from shapely.geometry import shape

from agent.api import Agent
from agent.settings import AgentSettings
from deltavlm.rules import RuleSettings
from graphs.checkpoints import serializer
from graphs.pair_store import PairKey
from tools.masks import UserMaskProvider
from tools.pairs import load_pair
from tools.raster import Georef

TEXAS_CENTRAL_FTUS = "EPSG:2277"
US_SURVEY_FOOT_M = 1200 / 3937  # 0.3048006096…, the definition of the US survey foot
FEET = {  # CRS: (its foot in metres, by definition; a grid origin inside the zone, in its feet)
    TEXAS_CENTRAL_FTUS: (US_SURVEY_FOOT_M, (3_100_000.0, 10_070_000.0)),  # Austin, Texas
    "EPSG:2222": (0.3048, (473_000.0, 437_000.0)),  # Tucson, Arizona
}
PIXEL_FT = 30.0
SIZE = 64


def _write(path: Path, bands: np.ndarray, crs: str = TEXAS_CENTRAL_FTUS) -> Path:
    profile = {
        "driver": "GTiff",
        "width": SIZE,
        "height": SIZE,
        "count": bands.shape[0],
        "dtype": bands.dtype.name,
        "crs": crs,
        "transform": from_origin(*FEET[crs][1], PIXEL_FT, PIXEL_FT),
    }
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(bands)
    return path


@pytest.fixture(params=sorted(FEET))
def feet_pair(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path, Path, int]:
    """t1, t2, a 0/1 change mask on their grid in a feet CRS, and how many pixels it marks changed."""
    crs = request.param
    rng = np.random.default_rng(7)
    t1 = rng.integers(40, 200, size=(3, SIZE, SIZE), dtype=np.uint8)
    t2 = t1.copy()
    mask = np.zeros((1, SIZE, SIZE), dtype=np.uint8)
    mask[0, 5:20, 8:28] = 1  # 15 × 20 px
    mask[0, 40:50, 40:50] = 1  # 10 × 10 px
    t2[:, mask[0] == 1] = 255 - t2[:, mask[0] == 1]
    paths = tuple(
        _write(tmp_path / name, bands, crs) for name, bands in (("t1.tif", t1), ("t2.tif", t2), ("mask.tif", mask))
    )
    return *paths, int(mask.sum())


def test_the_georeference_holds_one_parsed_crs_that_dumps_and_loads_as_text(feet_pair):
    pair = load_pair(feet_pair[0], feet_pair[1])
    georef = pair.georef
    assert georef is not None and georef.crs.axis_info[0].unit_name in ("US survey foot", "foot")
    assert georef.model_dump()["crs"] in FEET
    assert Georef.model_validate_json(georef.model_dump_json()) == georef
    assert georef == Georef(crs=georef.crs.to_wkt(), transform=georef.transform)  # its WKT is the same CRS
    serde = serializer([Georef])  # a checkpoint revives it as a parsed CRS, and so does a pickle
    revived = serde.loads_typed(serde.dumps_typed(georef))
    assert isinstance(revived, Georef) and isinstance(revived.crs, CRS) and revived == georef
    assert pickle.loads(pickle.dumps(georef)) == georef
    assert PairKey.of(pair, UserMaskProvider(str(feet_pair[2]))).digest  # the pair store's key dumps it as text


def test_hectares_in_the_chat_and_on_every_exported_object_use_the_crs_foot(feet_pair, tmp_path):
    t1, t2, mask, changed_px = feet_pair
    crs = load_pair(t1, t2).georef.model_dump()["crs"]
    expected_m2 = changed_px * (PIXEL_FT * FEET[crs][0]) ** 2
    if crs == TEXAS_CENTRAL_FTUS:
        assert expected_m2 == pytest.approx(changed_px * PIXEL_FT**2 * 0.3048006096**2)
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "artefacts", rules=RuleSettings(min_object_pixels=1)))
    pair = load_pair(t1, t2)

    answer = agent.ask(pair, "How much changed in hectares?", thread_id="feet", mask=str(mask))
    assert answer.evidence.regions.regions["image"].area_m2 == pytest.approx(expected_m2, rel=1e-6)
    assert f"{expected_m2 / 1e4:,.2f} ha" in answer.first_sentence  # 3.34 ha; feet taken as metres would say 36 ha

    exported = agent.ask(pair, "Export the changed objects as a GeoPackage", thread_id="feet", mask=str(mask))
    meta, _, geometry, fields = pyogrio.raw.read(exported.artefacts["gpkg"], layer="objects")
    columns = dict(zip(meta["fields"], fields, strict=True))
    assert len(columns["area_m2"]) == 2
    assert float(np.sum(columns["area_m2"])) == pytest.approx(expected_m2, rel=1e-4)
    assert float(np.sum(columns["area_ha"])) == pytest.approx(expected_m2 / 1e4, rel=1e-3)

    layer = json.loads(Path(exported.artefacts["geojson"]).read_text())
    objects = [f for f in layer["features"] if f["properties"]["feature"] == "object"]
    assert sum(f["properties"]["area_m2"] for f in objects) == pytest.approx(expected_m2, rel=1e-4)
    # and PROJ agrees: each object's WGS84 outline, measured on the ellipsoid, has the area it carries
    geod = Geod(ellps="WGS84")
    for feature in objects:
        measured = abs(geod.geometry_area_perimeter(shape(feature["geometry"]))[0])
        assert measured == pytest.approx(feature["properties"]["area_m2"], rel=0.01)
    for wkb, area_m2 in zip(geometry, columns["area_m2"], strict=True):
        assert from_wkb(wkb).is_valid and area_m2 > 0
