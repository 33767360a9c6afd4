"""The ChangeChat rules on hand-built masks whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from deltavlm.rules import (
    CELL_IDS,
    LEVIR_MCI_LABEL_VALUES,
    ChangeClass,
    RuleSettings,
    cell_is_changed,
    changed_cells,
    classes_from_label_values,
    count_objects,
    find_objects,
    grid_bounds,
    summarize,
)


def _mask(shape=(90, 90)):
    return np.zeros(shape, dtype=np.uint8)


def test_empty_mask_is_unchanged():
    s = summarize(_mask())
    assert not s.changed
    assert s.counts == {"road": 0, "building": 0}
    assert s.cells == []
    assert s.changed_fraction == 0.0
    assert s.categorical


def test_single_changed_pixel_is_a_change_but_not_an_object():
    m = _mask()
    m[40, 40] = ChangeClass.BUILDING
    s = summarize(m)
    assert s.changed and s.changed_pixels == 1
    assert s.counts["building"] == 0  # one-pixel speck is below min_object_pixels
    assert s.cells == []


def test_speck_threshold_is_inclusive():
    m = _mask()
    m[10:12, 10:14] = ChangeClass.BUILDING  # 8 px
    m[50:52, 50:53] = ChangeClass.BUILDING  # 6 px
    assert summarize(m).counts["building"] == 1
    assert summarize(m, RuleSettings(min_object_pixels=6)).counts["building"] == 2


def test_counts_per_category_and_separated_objects():
    m = _mask()
    m[5:15, 5:15] = ChangeClass.BUILDING
    m[5:15, 20:30] = ChangeClass.BUILDING
    m[60:63, 0:90] = ChangeClass.ROAD
    s = summarize(m)
    assert s.counts == {"road": 1, "building": 2}
    assert s.changed_regions == 3


def test_touching_objects_merge_including_diagonal_contact():
    m = _mask()
    m[10:20, 10:20] = 1
    m[10:20, 20:30] = 1  # shares an edge
    m[20:30, 30:40] = 1  # touches the previous one at a corner only
    assert count_objects(m.astype(bool)) == 1


def test_courtyard_building_counts_once():
    m = _mask()
    m[10:40, 10:40] = 1
    m[20:30, 20:30] = 0
    objs = find_objects(m, "building")
    assert len(objs) == 1
    assert objs[0].pixels == 30 * 30  # filled outline covers the courtyard too


def test_object_touching_cell_border_counts_once_and_marks_both_cells():
    m = _mask()
    m[10:20, 25:35] = ChangeClass.BUILDING  # straddles the TL|TC border at column 30
    s = summarize(m)
    assert s.counts["building"] == 1
    assert s.category_cells["building"] == ["TL", "TC"]


def test_exactly_five_percent_is_not_changed_just_above_is():
    m = _mask((60, 60))  # 20×20 = 400 px per cell; 5 % = 20 px
    m[0:2, 0:10] = ChangeClass.ROAD  # 20 px in TL
    assert summarize(m).cells == []
    m[2, 0] = ChangeClass.ROAD  # 21 px
    assert summarize(m).cells == ["TL"]
    assert summarize(m).category_cells == {"road": ["TL"], "building": []}


def test_cell_threshold_exact_arithmetic():
    assert not cell_is_changed(5, 100, 0.05)
    assert cell_is_changed(6, 100, 0.05)
    assert not cell_is_changed(1, 3, 1 / 3 + 1e-12)


def test_grid_bounds_cover_every_pixel_once_for_odd_sizes():
    for h, w in [(256, 256), (100, 101), (3, 3), (257, 511)]:
        cover = np.zeros((h, w), dtype=int)
        for r0, r1, c0, c1 in grid_bounds(h, w).values():
            cover[r0:r1, c0:c1] += 1
        assert (cover == 1).all()
    b = grid_bounds(256, 256)
    assert b["TL"] == (0, 85, 0, 85) and b["BR"] == (170, 256, 170, 256)


def test_grid_too_small_is_refused():
    with pytest.raises(ValueError, match="too small"):
        grid_bounds(2, 10)


def test_cells_are_row_major():
    m = _mask()
    for r0, r1, c0, c1 in grid_bounds(90, 90).values():
        m[r0:r1, c0:c1] = 0
    m[60:90, 60:90] = 1
    m[0:30, 0:30] = 1
    assert changed_cells(m.astype(bool)) == ["TL", "BR"]
    assert CELL_IDS.index("CC") == 4


def test_unknown_category_pixels_make_the_mask_non_categorical():
    m = _mask()
    m[0:30, 0:30] = ChangeClass.CHANGE
    s = summarize(m)
    assert not s.categorical
    assert s.counts == {"road": 0, "building": 0}
    assert s.changed_regions == 1
    assert s.cells == ["TL"]


def test_fractions_per_category_and_cell():
    m = _mask()
    m[0:30, 0:15] = ChangeClass.BUILDING  # half of TL
    m[0:30, 30:60] = ChangeClass.ROAD  # all of TC
    s = summarize(m)
    assert s.category_fractions["building"] == pytest.approx(450 / 8100)
    assert s.category_cell_fractions["building"]["TL"] == pytest.approx(0.5)
    assert s.cell_fractions["TC"] == pytest.approx(1.0)


def test_levir_mci_label_values():
    raw = np.array([[0, 128], [255, 0]], dtype=np.uint8)
    assert classes_from_label_values(raw, LEVIR_MCI_LABEL_VALUES).tolist() == [[0, 1], [2, 0]]
    with pytest.raises(ValueError, match=r"\[7\]"):
        classes_from_label_values(np.array([[7]], dtype=np.uint8), LEVIR_MCI_LABEL_VALUES)


def test_summarize_refuses_bad_masks():
    with pytest.raises(ValueError, match="2-D"):
        summarize(np.zeros((3, 3, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="classes"):
        summarize(np.full((9, 9), 9, dtype=np.uint8))
