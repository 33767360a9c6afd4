"""The default detector on generated obvious changes (tests/obvious_changes.py): every saturated object found at
0.3, 1, 3 and 10 m, in 8-bit and 16-bit, RGB and 4-band files; every made no-change pair called unchanged; and a
pair whose dates differ in bit depth or band count gets one verdict whichever file carries which."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from deltavlm.rules import summarize
from tests.obvious_changes import GSDS_M, encode, found_objects, obvious_scene, write_date
from tools.classical_mask import ClassicalMaskProvider
from tools.pairs import load_pair, pair_from_arrays

KINDS = list(itertools.product(GSDS_M, (8, 16), (3, 4)))


def _pair(tmp_path, gsd: float, changed: bool, first: tuple[int, int], second: tuple[int, int]):
    scene = obvious_scene(gsd, seed=round(gsd * 10), changed=changed)
    a = write_date(tmp_path / "t1.tif", scene.t1, gsd, *first)
    b = write_date(tmp_path / "t2.tif", scene.t2, gsd, *second)
    return scene, load_pair(a, b)


@pytest.mark.parametrize(("gsd", "bits", "bands"), KINDS)
def test_every_saturated_object_is_found(tmp_path, gsd, bits, bands):
    scene, pair = _pair(tmp_path, gsd, True, (bits, bands), (bits, bands))
    assert pair.gsd_m == pytest.approx(gsd)
    mask = ClassicalMaskProvider().provide(pair)
    found = found_objects(mask.class_mask > 0, scene.boxes)
    assert all(found), f"{gsd} m, {bits}-bit, {bands} bands: found {found}"
    assert (mask.class_mask > 0).mean() < 3 * sum(s * s for _, _, s in scene.boxes) / mask.class_mask.size


@pytest.mark.parametrize(("gsd", "bits", "bands"), KINDS)
def test_made_no_change_pairs_are_called_unchanged(tmp_path, gsd, bits, bands):
    _, pair = _pair(tmp_path, gsd, False, (bits, bands), (bits, bands))
    assert not summarize(ClassicalMaskProvider().provide(pair).class_mask).changed


@pytest.mark.parametrize("changed", [True, False])
@pytest.mark.parametrize(("first", "second"), [((8, 3), (16, 3)), ((8, 3), (8, 4)), ((8, 3), (16, 4))])
def test_one_verdict_whichever_date_carries_which_depth(tmp_path, changed, first, second):
    verdicts = []
    for order in ((first, second), (second, first)):
        scene, pair = _pair(tmp_path, 1.0, changed, *order)
        mask = ClassicalMaskProvider().provide(pair)
        verdicts.append((summarize(mask.class_mask).changed, (mask.class_mask > 0).mean()))
        if changed:
            assert all(found_objects(mask.class_mask > 0, scene.boxes)), order
    assert verdicts[0][0] == verdicts[1][0] == changed
    assert verdicts[0][1] == pytest.approx(verdicts[1][1], abs=0.01)


@pytest.mark.parametrize("gsd", [0.3, 1.0])
def test_plain_8bit_tiles_of_unknown_gsd_find_every_object(gsd):
    # The product's main case: sub-metre RGB tiles with no georeference, analysed at an assumed 1 m. (At 3 m a
    # 20 m object is 49 px, under the 200 px that 200 m² make at the assumed 1 m: there the GSD must be given.)
    scene = obvious_scene(gsd, seed=round(gsd * 10) + 1)
    t1, t2 = (np.moveaxis(encode(image, 8, 3), 0, 2) for image in (scene.t1, scene.t2))
    mask = ClassicalMaskProvider().provide(pair_from_arrays(t1, t2))
    assert mask.source.gsd_m is None and all(found_objects(mask.class_mask > 0, scene.boxes))
    calm = obvious_scene(gsd, seed=round(gsd * 10) + 1, changed=False)
    quiet = pair_from_arrays(*(np.moveaxis(encode(image, 8, 3), 0, 2) for image in (calm.t1, calm.t2)))
    assert not ClassicalMaskProvider().provide(quiet).class_mask.any()
