"""Cause 2 of issue 19: no data is never read as "no change".

A date that is all NaN or all nodata is an error naming it; a date that is half NaN is analysed on its valid
half only: the valid share is stated, the cells without enough data are "no data", and the cells with data keep
exactly the numbers they have when the whole pair is valid. Checked in the CLI, the API, batch and scene.
"""

from __future__ import annotations

import numpy as np
import pytest

from deltavlm.rules import summarize
from tests.bad_inputs.cases import (
    all_nodata,
    api_agent,
    ask_cli,
    batch_run,
    example,
    float_with_nan,
    scene_run,
    summary_row,
    verify_json,
)
from tools.masks import load_change_mask
from tools.overlay import NO_DATA, render_overlay
from tools.pairs import load_pair
from tools.raster import InputError
from tools.verify import verify

INVALID = slice(0, 32)  # the left half of the 64 px example
NO_DATA_CELLS = ["TL", "TC", "CL", "CC", "BL", "BC"]  # columns 0–20 empty, 21–41 only 10 of 21 valid
RIGHT = ["TR", "CR", "BR"]


@pytest.fixture
def half(tmp_path):
    """The example with both dates as float32, t2's left half NaN, and the full-pair truth of its mask."""
    ex = example(tmp_path / "ex")
    t1 = float_with_nan(ex.t1, ex.t1.parent / "t1f.tif", slice(0, 0))
    t2 = float_with_nan(ex.t2, ex.t2.parent / "t2half.tif", INVALID)
    full = summarize(load_change_mask(ex.mask, kind="levir-mci").class_mask)
    return ex, t1, t2, full


def _expected_right(full, cells: list[str]) -> list[str]:
    return [c for c in cells if c in RIGHT]


@pytest.mark.parametrize("make", ["nan", "nodata"])
def test_a_date_without_valid_pixels_is_an_error_everywhere(tmp_path, capsys, make):
    ex = example(tmp_path / "ex")
    empty = ex.t2.parent / "empty.tif"
    if make == "nan":
        float_with_nan(ex.t2, empty, None)
    else:
        all_nodata(ex.t2, empty)
    with pytest.raises(InputError, match=r"t2 file .*empty\.tif has no valid pixel"):
        load_pair(ex.t1, empty)
    code, _, err = verify_json(ex.t1, empty, capsys)
    assert code == 2 and "empty.tif has no valid pixel" in err
    code, _, err = ask_cli(ex.t1, empty, tmp_path, capsys)
    assert code == 2 and "empty.tif has no valid pixel" in err
    with pytest.raises(InputError, match="no valid pixel"):
        api_agent(tmp_path).ask((ex.t1, empty), "has anything changed?")
    report, record, _ = batch_run(tmp_path, ex.t1, empty)
    assert report.failed == 1 and "empty.tif has no valid pixel" in record["error"]
    with pytest.raises(InputError, match="share no valid pixel"):
        scene_run(tmp_path, ex.t1, empty)


def test_dates_valid_in_disjoint_halves_share_no_pixel(tmp_path):
    ex = example(tmp_path / "ex")
    left = float_with_nan(ex.t1, ex.t1.parent / "left.tif", slice(32, 64))
    right = float_with_nan(ex.t2, ex.t2.parent / "right.tif", slice(0, 32))
    with pytest.raises(InputError, match="share no valid pixel"):
        load_pair(left, right)


def test_half_nan_pair_is_judged_on_its_valid_half(half):
    ex, t1, t2, full = half
    pair = load_pair(t1, t2)
    assert pair.valid_fraction == 0.5 and not pair.valid[:, INVALID].any()
    verification = verify(load_change_mask(ex.mask, kind="levir-mci", shape=pair.shape, valid=pair.valid))
    assert verification.valid_fraction == 0.5
    assert verification.grid.no_data_cells == NO_DATA_CELLS
    assert verification.grid.cells == _expected_right(full, full.cells)
    for cell in RIGHT:
        assert verification.grid.cell_fractions[cell] == full.cell_fractions[cell]
    changed_right = int(np.count_nonzero(load_change_mask(ex.mask, kind="levir-mci").class_mask[:, 32:]))
    assert verification.binary.changed_pixels == changed_right
    assert verification.binary.changed_fraction == changed_right / (64 * 32)


def test_overlay_draws_the_no_data_half(half):
    ex, t1, t2, _ = half
    pair = load_pair(t1, t2)
    mask = load_change_mask(ex.mask, kind="levir-mci", shape=pair.shape, valid=pair.valid)
    picture = render_overlay(pair, mask, verify(mask))
    left = picture[100:400, 20:150].reshape(-1, 3)  # inside the no-data half, away from the cell labels
    grey = np.all(left == NO_DATA, axis=1) | np.all(left == (160, 160, 160), axis=1)
    assert grey.mean() > 0.95


def test_cli_verify_states_the_valid_share_and_no_data_cells(half, capsys):
    ex, t1, t2, full = half
    code, payload, _ = verify_json(t1, t2, capsys, "--mask", ex.mask, "--mask-kind", "levir-mci")
    assert code == 0
    v = payload["verification"]
    assert v["valid_fraction"] == 0.5
    assert v["grid"]["no_data_cells"] == NO_DATA_CELLS
    assert v["grid"]["cells"] == _expected_right(full, full.cells)
    code = __import__("agent.cli.main", fromlist=["main"]).main(
        ["verify", str(t1), str(t2), "--mask", str(ex.mask), "--mask-kind", "levir-mci"]
    )
    text = capsys.readouterr().out
    assert code == 0 and "valid data: 50.0% of the image" in text and "no-data cells" in text
    code, payload, _ = verify_json(t1, t2, capsys)  # the classical mask, too, is judged on the valid half
    assert code == 0 and payload["verification"]["valid_fraction"] == 0.5
    assert payload["verification"]["grid"]["no_data_cells"] == NO_DATA_CELLS


def test_api_answers_on_the_valid_half_and_the_classical_mask_stays_inside_it(half, tmp_path):
    ex, t1, t2, full = half
    agent = api_agent(tmp_path)
    answer = agent.ask((t1, t2), "where did it change?", mask=ex.mask, mask_kind="levir-mci")
    assert answer.cells == _expected_right(full, full.cells)
    assert answer.verification.valid_fraction == 0.5
    assert answer.verification.grid.no_data_cells == NO_DATA_CELLS
    classical = api_agent(tmp_path)
    mask = classical.ask((t1, t2), "has anything changed?").mask
    assert mask.valid is not None and not mask.class_mask[:, INVALID].any()


def test_batch_summary_states_the_valid_share(half, tmp_path):
    ex, t1, t2, full = half
    mask = ex.mask
    report, record, out = batch_run(tmp_path, t1, t2, mask, mask_kind="levir-mci")
    assert report.answered == 1 and record is None
    row = summary_row(out)
    assert row["valid_fraction"] == "0.500000"
    assert row["no_data_cells"] == " ".join(NO_DATA_CELLS)
    assert row["changed_cells"] == " ".join(_expected_right(full, full.cells))


def test_scene_states_the_valid_share_and_keeps_no_data_out_of_the_mask(half, tmp_path):
    import rasterio

    ex, t1, t2, full = half
    result = scene_run(tmp_path, t1, t2, mask=ex.mask, mask_kind="levir-mci")
    s = result.summary
    assert s.valid_fraction == 0.5 and s.no_data_cells == NO_DATA_CELLS
    assert s.cells == _expected_right(full, full.cells)
    for cell in RIGHT:
        assert s.cell_fractions[cell] == full.cell_fractions[cell]
    assert "Valid data: 50.00% of the scene" in result.text
    with rasterio.open(result.outputs["change_mask"]) as ds:
        assert ds.nodata == 255
        written = ds.read(1)
    assert (written[:, INVALID] == 255).all() and (written[:, 32:] != 255).all()


def test_scene_outside_the_warped_footprint_is_no_data(tmp_path):
    from tests.bad_inputs.cases import ORIGIN, bands_of, write_like

    ex = example(tmp_path / "ex")
    bands, profile = bands_of(ex.t2)
    from rasterio.transform import from_origin

    shifted = write_like(
        ex.t2.parent / "t2_east.tif", bands, profile, transform=from_origin(ORIGIN[0] + 16.0, ORIGIN[1], 0.5, 0.5)
    )
    with pytest.raises(InputError, match="different grids"):
        scene_run(tmp_path, ex.t1, shifted)
    result = scene_run(tmp_path, ex.t1, shifted, resample=True)
    s = result.summary
    assert 0.45 < s.valid_fraction < 0.55
    assert {"TL", "CL", "BL"} <= set(s.no_data_cells) and not set(s.cells) & set(s.no_data_cells)
    assert any("resampled" in w for w in result.warnings)


def test_the_rules_with_a_valid_mask_everywhere_are_the_rules_without_one():
    from deltavlm.rules import cell_has_data

    rng = np.random.default_rng(3)
    classes = (rng.random((30, 45)) < 0.1).astype(np.uint8) * 2
    plain = summarize(classes)
    everywhere = summarize(classes, valid=np.ones(classes.shape, bool))
    assert everywhere.model_dump() == plain.model_dump()
    assert plain.valid_fraction == 1.0 and plain.no_data_cells == []
    assert cell_has_data(50, 100, 0.5) and not cell_has_data(49, 100, 0.5) and not cell_has_data(0, 100, 0.01)


def test_change_outside_the_valid_part_is_not_counted():
    classes = np.zeros((30, 30), np.uint8)
    classes[2:8, 2:8] = 2  # a building in the top-left cell, where a date has no data
    classes[22:28, 22:28] = 2  # and one in the bottom-right cell, where both have
    valid = np.ones(classes.shape, bool)
    valid[:10, :10] = False
    s = summarize(classes, valid=valid)
    assert s.counts["building"] == 1 and s.changed_pixels == 36
    assert s.no_data_cells == ["TL"] and s.cells == ["BR"]
    assert s.changed_fraction == 36 / 800 and s.valid_fraction == 800 / 900
