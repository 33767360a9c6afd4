"""The classical detector: GSD in metres, alignment, silence on no-change nuisances, calibrated confidence, and
its behaviour on real pairs of every kind in ../shared/data."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from agent.answering.provenance import mask_detail
from deltavlm.rules import ChangeClass
from tools.change_detection.alignment import estimate_shift, undo_shift
from tools.change_detection.calibration import Calibration, gsd_band, load_calibration, sensor_kind
from tools.change_detection.scale import plan_scale
from tools.classical_mask import ClassicalMaskProvider, ClassicalSettings, analyse, change_score
from tools.gsd import describe_gsd, gsd_from_georef
from tools.lodo_data import NUISANCES
from tools.masks import MaskProvider
from tools.pairs import load_pair, pair_from_arrays
from tools.raster import Georef, InputError
from tools.verify import verify


def _ground(seed: int = 0, size: int = 160) -> np.ndarray:
    """Brownish ground with texture at two scales, like fields and lots seen from the air."""
    rng = np.random.default_rng(seed)
    base = np.empty((size, size, 3), np.float32)
    base[...] = (150, 125, 95)
    base += cv2.resize(rng.normal(0, 25, (size // 8, size // 8, 1)), (size, size))[..., None]
    base += rng.normal(0, 6, (size, size, 1))
    return np.clip(cv2.GaussianBlur(base, (0, 0), 1.0), 0, 255).astype(np.uint8)


def _house(image: np.ndarray, y: int, x: int, roof=(95, 95, 100)) -> np.ndarray:
    """A 24×30 grey roof with a ridge line and a shadow strip: 12 × 15 m at 0.5 m."""
    out = image.copy()
    out[y : y + 24, x : x + 30] = roof
    out[y + 11 : y + 13, x : x + 30] = (60, 60, 66)
    out[y + 24 : y + 28, x + 2 : x + 32] = (30, 30, 35)
    return out


HOUSES = ((20, 20), (20, 70), (70, 20), (70, 70), (110, 100))


def _new_houses(t1: np.ndarray) -> np.ndarray:
    t2 = t1.copy()
    for y, x in HOUSES:
        t2 = _house(t2, y, x)
    return t2


def test_gsd_from_the_georeference():
    utm = Georef(crs="EPSG:32633", transform=(10.0, 0.0, 500000.0, 0.0, -10.0, 5e6))
    assert gsd_from_georef(utm) == pytest.approx(10.0)
    feet = Georef(crs="EPSG:2263", transform=(1.0, 0.0, 0.0, 0.0, -1.0, 0.0))
    assert gsd_from_georef(feet) == pytest.approx(0.3048, rel=1e-4)
    lonlat = Georef(crs="EPSG:4326", transform=(9.9e-5, 0.0, 35.5, 0.0, -9.9e-5, 33.9))  # Beirut, ~9 × 11 m
    assert gsd_from_georef(lonlat) == pytest.approx(10.0, abs=0.3)
    with pytest.raises(ValueError, match="not understood"):  # a georeference holds a parsed CRS, or none
        Georef(crs="EPSG:999999", transform=(1, 0, 0, 0, -1, 0))
    image = _ground()
    assert pair_from_arrays(image, image).gsd_m is None
    assert pair_from_arrays(image, image, gsd_m=0.5).gsd_m == 0.5
    assert pair_from_arrays(image, image, georef=utm, gsd_m=0.5).gsd_m == pytest.approx(10.0)  # georef wins
    with pytest.raises(InputError, match="positive"):
        pair_from_arrays(image, image, gsd_m=0)
    assert describe_gsd(10.02) == "10 m" and describe_gsd(0.5) == "0.5 m" and describe_gsd(None) == "unknown"


def test_scale_in_metres():
    s = ClassicalSettings(smoothing_m=20, smoothing_max_px=6, min_area_m2=200)
    fine, coarse, unknown = plan_scale(0.5, s), plan_scale(10.0, s), plan_scale(None, s)
    assert (fine.smoothing_px, fine.min_area_px) == (6.0, 800)
    assert (coarse.smoothing_px, coarse.min_area_px) == (2.0, 2)  # a two-pixel building at 10 m stands
    assert not unknown.gsd_known and unknown.gsd_m == s.assumed_gsd_m


def test_phase_correlation_finds_and_undoes_a_small_shift():
    t1 = _ground(1, 128)
    moved = cv2.warpAffine(t1, np.float32([[1, 0, 2], [0, 1, 1]]), (128, 128), borderMode=cv2.BORDER_REFLECT)
    shift = estimate_shift(t1, moved, 4.0)
    assert shift.applied and shift.dx == pytest.approx(2, abs=0.3) and shift.dy == pytest.approx(1, abs=0.3)
    back = undo_shift(moved, shift)
    inner = (slice(8, -8), slice(8, -8))
    assert (
        np.abs(back[inner].astype(int) - t1[inner]).mean() < 0.3 * np.abs(moved[inner].astype(int) - t1[inner]).mean()
    )
    assert not estimate_shift(t1, moved, 1.0).applied  # beyond the allowed bound: distrusted, not applied
    assert not estimate_shift(t1[:8, :8], moved[:8, :8], 4.0).applied


@pytest.mark.parametrize(("gsd", "band"), [(0.5, "sub-metre"), (2.0, "1-5m"), (None, "unknown-gsd")])
def test_new_buildings_found_and_honestly_labelled(gsd, band):
    t1 = _ground(2)
    mask = ClassicalMaskProvider().provide(pair_from_arrays(t1, _new_houses(t1), gsd_m=gsd))
    changed = mask.class_mask == ChangeClass.CHANGE
    roofs = np.zeros_like(changed)
    for y, x in HOUSES:
        roofs[y : y + 24, x : x + 30] = True
    assert changed[roofs].mean() > 0.6 and changed[~roofs].mean() < 0.3
    assert set(np.unique(mask.class_mask)) <= {0, int(ChangeClass.CHANGE)}
    source = mask.source
    assert source.provider == "classical" and source.kind == "classical" and not source.categorical
    assert source.gsd_m == gsd and source.calibration_key == f"{band}/rgb8"
    entry, _ = load_calibration().lookup(band, "rgb8")
    assert source.confidence == pytest.approx(entry.confidence, abs=1e-3)  # measured, not a constant
    assert source.basis.kind == "held_out" and source.basis.binary_accuracy == entry.binary_accuracy
    assert source.basis.gsd_band == band and source.basis.pairs == entry.pairs
    detail = mask_detail(source.made_by)
    assert "path" not in source.settings and detail.startswith("classical detector") and source.made_by.min_area_m2
    assert "not what changed" in detail and "estimates" in detail
    assert ("unknown pixel size" in detail) == (gsd is None) == (not source.made_by.gsd_known)
    assert source.min_object_pixels == plan_scale(gsd, ClassicalSettings()).min_area_px
    assert set(ClassicalSettings.model_fields) <= set(source.settings)
    assert isinstance(ClassicalMaskProvider(), MaskProvider)


@pytest.mark.parametrize("nuisance", sorted(NUISANCES))
def test_no_change_nuisances_stay_silent(nuisance):
    t1 = _new_houses(_ground(3, 192))
    t2 = NUISANCES[nuisance](t1, np.random.default_rng(0))
    for gsd in (0.5, 10.0, None):
        assert not ClassicalMaskProvider().provide(pair_from_arrays(t1, t2, gsd_m=gsd)).class_mask.any(), gsd


def test_two_pixel_buildings_survive_at_10_m_and_counts_follow_the_gsd():
    rng = np.random.default_rng(4)
    t1 = np.clip(cv2.GaussianBlur(rng.normal(110, 20, (96, 96, 3)).astype(np.float32), (0, 0), 1.5), 0, 255)
    t1 = t1.astype(np.uint8)
    t2 = t1.copy()
    spots = ((20, 20), (20, 70), (60, 40), (75, 80))
    for y, x in spots:
        t2[y : y + 2, x : x + 1] = (235, 230, 225)  # a new bright roof of 2 px (200 m² at 10 m)
    at_10m = ClassicalMaskProvider().provide(pair_from_arrays(t1, t2, gsd_m=10.0))
    found = [at_10m.class_mask[y - 1 : y + 3, x - 1 : x + 2].any() for y, x in spots]
    assert sum(found) >= 3
    near = np.zeros((96, 96), bool)
    for y, x in spots:
        near[max(y - 6, 0) : y + 8, max(x - 6, 0) : x + 7] = True
    assert not at_10m.class_mask[~near].any()  # nothing called away from the new roofs
    counts = verify(at_10m).counts  # a roof's halo may split in pieces: counts are "about"
    assert 3 <= counts.changed_regions <= 4 * len(spots) and at_10m.source.min_object_pixels <= 2
    at_half_m = ClassicalMaskProvider().provide(pair_from_arrays(t1, t2, gsd_m=0.5))
    assert not at_half_m.class_mask.any()  # 0.5 m²: far under the smallest object in metres


def test_degenerate_inputs_and_scores():
    grey = np.repeat(_ground(5)[..., :1], 3, axis=2)
    assert not ClassicalMaskProvider().provide(pair_from_arrays(grey, grey)).class_mask.any()
    tiny = np.zeros((6, 7, 3), np.uint8)
    assert ClassicalMaskProvider().provide(pair_from_arrays(tiny, tiny + 40)).class_mask.shape == (6, 7)
    t1 = _ground(6)
    score = change_score(pair_from_arrays(t1, _new_houses(t1), gsd_m=0.5))
    assert score.dtype == np.float32 and score.shape == t1.shape[:2] and score.min() >= 0
    for matching in ("meanstd", "quantile"):
        for edge_weight in (1.0, 2.0):
            settings = ClassicalSettings(matching=matching, edge_weight=edge_weight, align=False)
            assert analyse(pair_from_arrays(t1, _new_houses(t1), gsd_m=0.5), settings).changed.any()


def test_calibration_is_data_and_falls_back_to_broader_kinds():
    calibration = load_calibration()
    assert calibration.generated_by.startswith("python -m tools.lodo")
    keys = {e.key for e in calibration.entries}
    assert {"any/any", "sub-metre/rgb8", "over-5m/multispectral", "unknown-gsd/any"} <= keys
    assert len({round(e.confidence, 3) for e in calibration.entries}) > 1  # follows accuracy: not one constant
    for e in calibration.entries:
        assert e.confidence == pytest.approx((e.binary_correct + 1) / (e.pairs + 2), abs=1e-3)
    assert calibration.lookup("over-5m", "rgb8")[1]  # no 10 m 8-bit pairs were held out: says it fell back
    assert gsd_band(0.5) == "sub-metre" and gsd_band(2.0) == "1-5m" and gsd_band(10) == "over-5m"
    assert gsd_band(None) == "unknown-gsd"
    assert sensor_kind("none (8-bit input)") == "rgb8" and sensor_kind("uint16/uint16 → uint8") == "multispectral"
    empty = Calibration(protocol="", settings={}, reliable_when="", entries=[])
    with pytest.raises(InputError, match=r"tools\.lodo"):
        empty.lookup("sub-metre", "rgb8")


def test_calibration_records_the_protocols_all_data_choice():
    # The entries are held-out verdicts with each fold's own choice; "settings" records the all-data choice, which
    # differs from the shipped defaults (see tools/change_detection/settings.py for why), and is a valid setting.
    from tools.lodo_tune import GRID

    recorded = load_calibration().settings
    assert set(recorded) == set(GRID.names)
    assert ClassicalSettings(**recorded).model_dump(include=set(GRID.names)) == recorded


def test_real_no_change_negative_stays_small_and_says_how_far_to_trust_it(shared_data):
    # LEVIR-CD's real no-change crop differs in season and radiometry. The mask stays small, and the confidence is
    # the held-out accuracy of the sub-metre entry, not a constant.
    root = shared_data / "levircd"
    pair = load_pair(root / "A" / "train_386_0512_0768.png", root / "B" / "train_386_0512_0768.png", gsd_m=0.5)
    mask = ClassicalMaskProvider().provide(pair)
    assert (mask.class_mask > 0).mean() < 0.1
    assert mask.source.calibration_key == "sub-metre/rgb8" and mask.source.confidence < 1.0


def test_beirut_at_10_m_is_no_longer_erased(shared_data):
    city = shared_data / "oscd" / "beirut"
    pair = load_pair(city / "t1.tif", city / "t2.tif")
    assert pair.gsd_m == pytest.approx(10.0, abs=0.5)  # from the EPSG:4326 georeference, geodesically
    mask = ClassicalMaskProvider().provide(pair)
    label = cv2.imread(str(city / "label.tif"), cv2.IMREAD_UNCHANGED) > 0
    changed = mask.class_mask > 0
    assert changed.any() and (changed & label).sum() > 0.1 * label.sum()
    assert mask.source.calibration_key == "over-5m/multispectral" and mask.source.gsd_m == pytest.approx(10, abs=0.5)
    assert verify(mask).counts.changed_regions > 5
