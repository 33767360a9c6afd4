"""Cause 3 of issue 19: inputs that do not match are refused, or made to match by a stated rule.

* Bit depth: each date is normalised on its own, so an 8-bit date against a 16-bit copy of the same scene is
  "no change", and a pair's answer does not depend on the depth either date was delivered in.
* A mask with its data in another channel than the first is refused (naming the file) unless it is a LEVIR-MCI
  colour label; a gray mask stored as RGB still reads.
* A georeferenced mask on another grid (CRS, position) than the pair is refused, in every surface.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.bad_inputs.cases import (
    api_agent,
    ask_cli,
    batch_run,
    example,
    green_channel_mask,
    scene_run,
    shifted_mask_tif,
    sixteen_bit_copy,
    summary_row,
    verify_json,
)
from tests.geodata import write_tif
from tools.masks import load_change_mask
from tools.pairs import load_pair
from tools.raster import InputError


def test_an_8bit_date_against_its_16bit_copy_is_no_change_everywhere(tmp_path, capsys):
    ex = example(tmp_path / "ex")
    wide = sixteen_bit_copy(ex.t1, ex.t1.parent / "t1_16.tif")
    pair = load_pair(ex.t1, wide)
    np.testing.assert_array_equal(pair.t1, pair.t2)
    code, payload, _ = verify_json(ex.t1, wide, capsys)
    assert code == 0 and payload["verification"]["binary"]["changed"] is False
    answer = api_agent(tmp_path).ask((ex.t1, wide), "has anything changed?")
    assert answer.changed is False
    _report, record, out = batch_run(tmp_path, ex.t1, wide)
    assert record is None and summary_row(out)["changed"] == "no"
    assert scene_run(tmp_path, ex.t1, wide).summary.changed is False


def test_the_answer_does_not_depend_on_the_bit_depth_of_a_date(tmp_path):
    ex = example(tmp_path / "ex")
    t1_16 = sixteen_bit_copy(ex.t1, ex.t1.parent / "t1_16.tif")
    t2_16 = sixteen_bit_copy(ex.t2, ex.t2.parent / "t2_16.tif")
    mixed = load_pair(ex.t1, t2_16)
    wide = load_pair(t1_16, t2_16)
    np.testing.assert_array_equal(mixed.t1, wide.t1)
    np.testing.assert_array_equal(mixed.t2, wide.t2)


@pytest.fixture
def green(tmp_path):
    ex = example(tmp_path / "ex")
    return ex, green_channel_mask(ex.mask, ex.mask.parent / "green.png")


def test_a_mask_with_data_in_another_channel_is_refused_everywhere(green, tmp_path, capsys):
    ex, mask = green
    with pytest.raises(InputError, match=r"mask file .*green\.png holds different data in its channels"):
        load_change_mask(mask, shape=(64, 64))
    code, _, err = verify_json(ex.t1, ex.t2, capsys, "--mask", mask)
    assert code == 2 and "green.png holds different data" in err
    code, _, err = ask_cli(ex.t1, ex.t2, tmp_path, capsys, "--mask", mask)
    assert code == 2 and "green.png holds different data" in err
    with pytest.raises(InputError, match=r"green\.png holds different data"):
        api_agent(tmp_path).ask((ex.t1, ex.t2), "has anything changed?", mask=mask)
    report, record, _ = batch_run(tmp_path, ex.t1, ex.t2, mask)
    assert report.failed == 1 and "green.png holds different data" in record["error"]
    tif = tmp_path / "green.tif"
    bands = np.moveaxis(cv2.cvtColor(cv2.imread(str(mask)), cv2.COLOR_BGR2RGB), 2, 0)
    write_tif(tif, bands, photometric="RGB")
    with pytest.raises(InputError, match=r"green\.tif holds different data"):
        scene_run(tmp_path, ex.t1, ex.t2, mask=tif)


def test_gray_stored_as_rgb_and_levir_mci_colour_labels_still_read(tmp_path):
    ex = example(tmp_path / "ex")
    label = cv2.imread(str(ex.mask), cv2.IMREAD_GRAYSCALE)
    gray_rgb = tmp_path / "gray_rgb.png"
    cv2.imwrite(str(gray_rgb), np.dstack([label] * 3))
    truth = load_change_mask(ex.mask, kind="levir-mci").class_mask
    np.testing.assert_array_equal(load_change_mask(gray_rgb, kind="levir-mci").class_mask, truth)
    colour = np.dstack([label, np.where(label == 128, 64, label), np.where(label == 128, 0, label)])
    colour_png = tmp_path / "colour.png"
    cv2.imwrite(str(colour_png), cv2.cvtColor(colour.astype(np.uint8), cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(load_change_mask(colour_png, kind="levir-mci").class_mask, truth)


def test_a_mask_on_another_grid_is_refused_everywhere(tmp_path, capsys):
    ex = example(tmp_path / "ex")
    mask = shifted_mask_tif(ex.mask, ex.mask.parent / "elsewhere.tif")
    message = "elsewhere.tif does not lie on the"
    code, _, err = verify_json(ex.t1, ex.t2, capsys, "--mask", mask)
    assert code == 2 and message in err
    code, _, err = ask_cli(ex.t1, ex.t2, tmp_path, capsys, "--mask", mask)
    assert code == 2 and message in err
    with pytest.raises(InputError, match=message):
        api_agent(tmp_path).ask((ex.t1, ex.t2), "has anything changed?", mask=mask)
    report, record, _ = batch_run(tmp_path, ex.t1, ex.t2, mask)
    assert report.failed == 1 and message in record["error"]
    with pytest.raises(InputError, match=message):
        scene_run(tmp_path, ex.t1, ex.t2, mask=mask)


def test_a_mask_in_the_same_crs_but_shifted_is_refused(tmp_path):
    ex = example(tmp_path / "ex")
    mask = shifted_mask_tif(ex.mask, ex.mask.parent / "shifted.tif", crs="EPSG:32614")
    with pytest.raises(InputError, match=r"shifted\.tif does not lie on the pair's grid"):
        load_change_mask(mask, shape=(64, 64), georef=load_pair(ex.t1, ex.t2).georef)
