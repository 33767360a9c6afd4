"""Mask files in every convention, the providers' contract, and the classical detector's honesty."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from agent.answering.provenance import mask_detail
from deltavlm.rules import ChangeClass
from tools.change_detection.calibration import gsd_band, load_calibration
from tools.classical_mask import ClassicalMaskProvider
from tools.masks import MaskMethod, MaskProvider, UserMaskProvider, classes_from_mask_file, load_change_mask
from tools.pairs import pair_from_arrays
from tools.raster import InputError


def _write(path, array):
    cv2.imwrite(str(path), array)
    return path


def test_levir_mci_auto_detected(tmp_path):
    raw = np.zeros((30, 30), np.uint8)
    raw[0:5, 0:5] = 128
    raw[10:20, 10:20] = 255
    mask = load_change_mask(_write(tmp_path / "m.png", raw), shape=(30, 30))
    assert set(np.unique(mask.class_mask)) == {0, 1, 2}
    assert mask.source.categorical and mask.source.kind == "user" and mask.source.confidence == 1.0
    assert mask.source.made_by.reading.convention == "levir-mci" and "LEVIR-MCI" in mask_detail(mask.source.made_by)


def test_binary_mask_has_no_category_unless_named(tmp_path):
    raw = np.zeros((30, 30), np.uint8)
    raw[10:20, 10:20] = 255
    path = _write(tmp_path / "m.png", raw)
    unknown = load_change_mask(path)
    assert unknown.class_mask.max() == ChangeClass.CHANGE and not unknown.source.categorical
    building = load_change_mask(path, kind="binary", binary_category="building")
    assert building.class_mask.max() == ChangeClass.BUILDING and building.source.categorical
    as_mci = load_change_mask(path, kind="levir-mci")
    assert as_mci.class_mask.max() == ChangeClass.BUILDING


def test_index_mask(tmp_path):
    raw = np.zeros((30, 30), np.uint8)
    raw[0:3, 0:3] = 1
    raw[5:9, 5:9] = 2
    classes, reading = classes_from_mask_file(raw)
    assert classes.max() == 2 and reading.convention == "index"
    assert mask_detail(MaskMethod(method="user_file", reading=reading), "de").startswith(
        "vom Nutzer gelieferte Maske, gelesen als Klassenindizes"
    )


def test_mask_convention_errors(tmp_path):
    raw = np.array([[0, 7], [200, 0]], np.uint8)
    with pytest.raises(ValueError, match="cannot tell"):
        classes_from_mask_file(raw)
    path = _write(tmp_path / "weird.png", np.tile(raw, (5, 5)))
    with pytest.raises(InputError, match=r"weird\.png.*\[7, 200\]"):
        load_change_mask(path, kind="levir-mci")


def test_mask_size_must_match_pair(tmp_path):
    path = _write(tmp_path / "m.png", np.zeros((30, 31), np.uint8))
    with pytest.raises(InputError, match=r"m\.png is 31×30 but the pair is 30×30"):
        load_change_mask(path, shape=(30, 30))


def test_user_provider_follows_the_interface(tmp_path):
    raw = np.zeros((30, 30), np.uint8)
    raw[10:20, 10:20] = 255
    provider = UserMaskProvider(_write(tmp_path / "m.png", raw), kind="levir-mci")
    assert isinstance(provider, MaskProvider)
    pair = pair_from_arrays(np.zeros((30, 30, 3), np.uint8), np.zeros((30, 30, 3), np.uint8))
    assert provider.provide(pair).class_mask.sum() == 100 * ChangeClass.BUILDING


def _scene(seed=0, size=128):
    rng = np.random.default_rng(seed)
    base = np.clip(rng.normal(110, 12, (size, size, 3)), 0, 255).astype(np.uint8)
    base = cv2.GaussianBlur(base, (0, 0), 1.0)
    return base


@pytest.mark.parametrize("gsd", [None, 0.5, 2.0, 10.0])  # every GSD band of the classical calibration
def test_classical_ignores_global_brightness_shift_and_finds_a_new_roof(gsd):
    t1 = _scene()
    shifted = np.clip(t1.astype(int) + 25, 0, 255).astype(np.uint8)  # illumination / season shift
    quiet = ClassicalMaskProvider().provide(pair_from_arrays(t1, shifted, gsd_m=gsd))
    assert not quiet.class_mask.any()
    t2 = shifted.copy()
    t2[40:80, 30:70] = (200, 60, 50)  # a red roof appears
    found = ClassicalMaskProvider().provide(pair_from_arrays(t1, t2, gsd_m=gsd))
    changed = found.class_mask == ChangeClass.CHANGE
    assert changed[45:75, 35:65].mean() > 0.9
    assert changed.sum() < 2 * 40 * 40
    assert set(np.unique(found.class_mask)) <= {0, int(ChangeClass.CHANGE)}
    assert not found.source.categorical and found.source.kind == "classical"
    entry, _ = load_calibration().lookup(gsd_band(gsd), "rgb8")
    assert (
        found.source.confidence == pytest.approx(entry.confidence, abs=1e-3) and found.source.basis.kind == "held_out"
    )
    assert "not what changed" in mask_detail(found.source.made_by)


def test_classical_on_real_no_change_negative_keeps_change_small(shared_data):
    from tools.pairs import load_pair

    root = shared_data / "levircd"
    pair = load_pair(root / "A" / "train_386_0512_0768.png", root / "B" / "train_386_0512_0768.png")
    mask = ClassicalMaskProvider().provide(pair)
    assert mask.class_mask.shape == (256, 256)
    entry, _ = load_calibration().lookup("unknown-gsd", "rgb8")
    assert mask.source.confidence == pytest.approx(entry.confidence, abs=1e-3) and mask.source.basis.kind == "held_out"
