"""The synthetic generator: deterministic, its labels obey the ChangeChat rules, its writers round-trip."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from deltavlm import rules
from deltavlm.rules import CELL_NAMES, LEVIR_MCI_LABEL_VALUES
from deltavlm.synthetic import SyntheticPair, generate_pair, pair_seed, write_example, write_levir_mci
from deltavlm.synthetic.pairs import EXAMPLE_ORIGIN, GSD_M
from deltavlm.text import NO_CHANGE_CAPTIONS

BUILDING_NOUN = re.compile(r"\b(building|house|villa)s?\b")
ROAD_CLAIM = re.compile(r"\b(a|two|three|several|many|some) (new |turning |curved |straight |cement )?roads?\b")
SEEDS = range(50)


@functools.cache
def pair(seed: int, size: int = 256, change: bool | None = None) -> SyntheticPair:
    """Pairs are read-only, so tests can share them."""
    return generate_pair(seed, size, change=change)


def test_same_seed_gives_identical_bytes_and_other_seeds_differ() -> None:
    a, b = generate_pair(11), generate_pair(11)
    for name in ("t1", "t2", "class_mask"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes()
    assert a.captions == b.captions
    assert a.changes == b.changes
    assert not np.array_equal(a.t1, generate_pair(12).t1)


@pytest.mark.parametrize("size", [64, 97, 250, 256, 301])
def test_shapes_dtypes_and_read_only_arrays(size: int) -> None:
    p = pair(5, size, True)
    assert p.t1.shape == p.t2.shape == (size, size, 3)
    assert p.class_mask.shape == (size, size)
    assert p.t1.dtype == p.t2.dtype == p.class_mask.dtype == np.uint8
    assert set(np.unique(p.class_mask).tolist()) <= {0, 1, 2}
    assert len(p.captions) == 5
    with pytest.raises(ValueError):
        p.t1[0, 0, 0] = 0


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        generate_pair(0, 63)
    with pytest.raises(ValueError):
        generate_pair(-1)
    with pytest.raises(ValueError):
        generate_pair(0, p_no_change=1.5)


def test_counts_and_changed_flag_follow_the_rules_over_many_seeds() -> None:
    flags = set()
    for seed in SEEDS:
        p = pair(seed)
        summary = rules.summarize(p.class_mask)
        assert summary.counts == p.counts, seed
        assert summary.changed == p.changed, seed
        flags.add(p.changed)
        for change in p.changes:
            x, y, w, h = change.bbox
            box = rules.change_mask(p.class_mask, change.category)[y : y + h, x : x + w]
            assert box[0].any() and box[-1].any() and box[:, 0].any() and box[:, -1].any(), seed
    assert flags == {True, False}


@pytest.mark.parametrize("size", [64, 97, 301])
def test_forced_change_at_small_and_odd_sizes(size: int) -> None:
    for seed in range(6):
        p = pair(seed, size, True)
        assert p.changed
        assert rules.summarize(p.class_mask).counts == p.counts


def test_no_change_pairs_have_empty_masks_and_no_change_captions_but_differ_in_pixels() -> None:
    for seed in range(4):
        p = pair(seed, 256, False)
        assert not p.class_mask.any()
        assert p.captions == NO_CHANGE_CAPTIONS
        assert p.changes == ()
        diff = np.abs(p.t1.astype(int) - p.t2.astype(int))
        assert diff.mean() > 3, "season, sun and radiometry must differ between the dates"


def test_changes_are_visible_and_pseudo_changes_stay_unlabelled() -> None:
    for seed in range(12):
        p = pair(seed, 256, True)
        diff = np.abs(p.t1.astype(int) - p.t2.astype(int)).mean(axis=2)
        changed = p.class_mask > 0
        assert diff[~changed].mean() > 2, "background must carry unlabelled pseudo-changes"
        # Real LEVIR-CD pairs differ more in the background than in the change; only ask for a visible change.
        assert diff[changed].mean() > 15, "labelled pixels must visibly change"


def test_captions_agree_with_the_labels() -> None:
    for seed in SEEDS:
        p = pair(seed)
        assert len(set(p.captions)) == 5, seed
        for caption in p.captions:
            assert caption == caption.lower().strip() and not caption.endswith("."), caption
        if not p.changed:
            assert p.captions == NO_CHANGE_CAPTIONS
            continue
        assert not set(p.captions) & set(NO_CHANGE_CAPTIONS)
        for caption in p.captions:
            assert bool(BUILDING_NOUN.search(caption)) == (p.counts["building"] > 0), caption
            if p.counts["road"] == 0:
                assert not ROAD_CLAIM.search(caption), caption
            else:
                assert ROAD_CLAIM.search(caption), caption
        kinds = {(c.category, c.change) for c in p.changes}
        if len({k for k in kinds if k[0] == "building"}) == 1 and p.counts["building"] <= 3:
            word = {1: "a", 2: "two", 3: "three"}[p.counts["building"]]
            number = re.compile(rf"\b{word} (new )?(building|house|villa)s?\b")
            assert all(number.search(c) for c in p.captions), p.captions


def test_first_caption_places_a_single_new_building() -> None:
    checked = 0
    for seed in SEEDS:
        p = pair(seed)
        if len(p.changes) != 1 or p.changes[0].category != "building":
            continue
        vertical, horizontal = CELL_NAMES[p.changes[0].cell].split("-")
        first = p.captions[0]
        if vertical == horizontal == "center":
            assert "center" in first or "middle" in first, first
        else:
            assert all(w in first for w in (vertical, horizontal) if w != "center"), first
        checked += 1
    assert checked >= 2


def test_levir_mci_writer_round_trips(tmp_path: Path) -> None:
    write_levir_mci(tmp_path, {"train": 3, "val": 1, "test": 2}, seed=4, size=96)
    images = json.loads((tmp_path / "LevirCCcaptions.json").read_text())["images"]
    assert [r["filename"] for r in images] == [
        "train_000000.png",
        "train_000001.png",
        "train_000002.png",
        "val_000000.png",
        "test_000000.png",
        "test_000001.png",
    ]
    sentids = [s["sentid"] for r in images for s in r["sentences"]]
    assert sentids == list(range(30))
    for imgid, record in enumerate(images):
        expected = generate_pair(pair_seed(4, imgid), 96)
        folder = tmp_path / "images" / record["split"]
        assert record["filepath"] == record["split"] and record["imgid"] == imgid
        for part, rgb in (("A", expected.t1), ("B", expected.t2)):
            read = cv2.cvtColor(cv2.imread(str(folder / part / record["filename"])), cv2.COLOR_BGR2RGB)
            assert np.array_equal(read, rgb)
        label = cv2.imread(str(folder / "label" / record["filename"]), cv2.IMREAD_UNCHANGED)
        assert label.ndim == 2
        classes = rules.classes_from_label_values(label, LEVIR_MCI_LABEL_VALUES)
        assert np.array_equal(classes, expected.class_mask)
        assert record["changeflag"] == int(label.any())
        assert [s["raw"] for s in record["sentences"]] == [f" {c} ." for c in expected.captions]
        assert [s["tokens"] for s in record["sentences"]] == [c.split() for c in expected.captions]


def test_levir_mci_writer_refuses_unknown_splits(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown splits"):
        write_levir_mci(tmp_path, {"training": 1}, seed=0)


def test_georeferenced_example(tmp_path: Path) -> None:
    paths = write_example(tmp_path / "demo", size=128)
    expected = generate_pair(7, 128, change=True)
    for path, rgb in ((paths.t1, expected.t1), (paths.t2, expected.t2)):
        with rasterio.open(path) as src:
            assert src.crs.to_epsg() == 32614
            assert src.transform == from_origin(*EXAMPLE_ORIGIN, GSD_M, GSD_M)
            assert (src.count, src.dtypes[0]) == (3, "uint8")
            assert np.array_equal(np.moveaxis(src.read(), 0, 2), rgb)
    label = cv2.imread(str(paths.mask), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(rules.classes_from_label_values(label, LEVIR_MCI_LABEL_VALUES), expected.class_mask)
    record = json.loads(paths.captions.read_text())
    assert record["captions"] == list(expected.captions)
    assert record["counts"] == expected.counts


def test_plain_png_example(tmp_path: Path) -> None:
    paths = write_example(tmp_path, seed=3, size=80, georeferenced=False)
    assert paths.t1.suffix == paths.t2.suffix == ".png"
    expected = generate_pair(3, 80, change=True)
    assert np.array_equal(cv2.cvtColor(cv2.imread(str(paths.t2)), cv2.COLOR_BGR2RGB), expected.t2)
