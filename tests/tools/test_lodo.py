"""The leave-one-dataset-out protocol: datasets and made no-change pairs, the grid, folds, calibration, table."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tools.change_detection.calibration import Calibration
from tools.lodo import (
    NaiveCvaOtsu,
    format_lodo_table,
    main,
    run_leave_one_dataset_out,
    time_sizes,
    timing_pairs,
    write_calibration,
)
from tools.lodo_bands import roc_auc
from tools.lodo_data import NUISANCES, available_datasets, load_dataset
from tools.lodo_tune import FIELDS, Grid, choose, grid_points, grid_search
from tools.pairs import pair_from_arrays
from tools.raster import InputError

TINY_GRID = Grid(
    stage_a={"matching": ("meanstd",), "edge_weight": (0.0,)},
    stage_b={
        "smoothing_m": (2.0,),
        "threshold": (0.05, 0.8),
        "noise_factor": (0.0,),
        "refine_ratio": (0.0,),
        "min_area_m2": (4.0,),
    },
)


def _dataset(root, name: str, seed: int) -> None:
    """Two 64² pairs with a new bright block (and its label), and one pair with nothing new."""
    rng = np.random.default_rng(seed)
    for sub in ("A", "B", "label"):
        (root / name / sub).mkdir(parents=True)
    for index, block in enumerate([(10, 12), (30, 20), None]):
        t1 = np.clip(cv2.GaussianBlur(rng.normal(100, 25, (64, 64, 3)), (0, 0), 2), 0, 255).astype(np.uint8)
        t2 = t1.copy()
        label = np.zeros((64, 64), np.uint8)
        if block:
            y, x = block
            t2[y : y + 16, x : x + 16] = 240
            label[y : y + 16, x : x + 16] = 255
        for sub, image in (("A", t1), ("B", t2), ("label", label)):
            cv2.imwrite(str(root / name / sub / f"p{index}.png"), image)


@pytest.fixture
def data_root(tmp_path):
    _dataset(tmp_path, "levircd", 1)
    _dataset(tmp_path, "dsifn", 2)
    return tmp_path


def test_datasets_and_no_change_pairs(data_root):
    assert [s.name for s in available_datasets(data_root)] == ["levircd", "dsifn"]
    items = load_dataset(available_datasets(data_root)[0], data_root)
    real = [i for i in items if i.origin == "real"]
    made = [i for i in items if i.origin != "real"]
    assert len(real) == 3 and len(made) == 3 * len(NUISANCES)
    assert all(i.pair.gsd_m == 0.5 for i in items) and not any(i.truth.class_mask.any() for i in made)
    assert {i.origin for i in made} == set(NUISANCES)


def test_grid_scores_and_choice(data_root):
    items = [i for s in available_datasets(data_root) for i in load_dataset(s, data_root)]
    scores = grid_search(items, TINY_GRID, processes=1)
    assert scores.shape == (len(grid_points(TINY_GRID)), len(items), len(FIELDS))
    best = choose(scores, items, ["levircd"])
    assert grid_points(TINY_GRID)[best].settings.threshold == 0.8  # 0.05 calls every made no-change pair changed


def test_protocol_runs_end_to_end_and_writes_the_calibration(data_root, tmp_path, capsys):
    report = run_leave_one_dataset_out(data_root, [("naive again", NaiveCvaOtsu())], grid=TINY_GRID, processes=1)
    assert [f.held_out for f in report.folds] == ["levircd", "dsifn"] and report.folds[0].tuned_on == ["dsifn"]
    classical = [r for r in report.rows if r.provider.startswith("classical (tuned")]
    assert len(classical) == 2 and all(r.pairs_real == 3 and r.pairs_no_change == 15 for r in classical)
    assert all(r.binary_real == 1.0 and r.grid_f1 > 0.4 for r in classical)
    assert all(0 < r.mean_confidence <= 1 and r.mean_confidence_without is not None for r in classical)
    assert all(r.ms_256 is not None and r.ms_1024 is not None for r in classical)
    assert {r.provider for r in report.rows} == {
        "classical (tuned on the others)",
        "classical, GSD hidden",
        "naive CVA + Otsu",
        "naive again",
    }
    keys = {e.key for e in report.calibration.entries}
    assert {"sub-metre/rgb8", "1-5m/rgb8", "unknown-gsd/rgb8", "any/any"} <= keys
    table = format_lodo_table(report)
    assert table.startswith("| held out |") and "LEVIR-CD 0.5 m" in table and "held out dsifn" in table
    assert "| ms 256² | ms 1024² |" in table.splitlines()[0]
    path = write_calibration(report, tmp_path / "calibration.json")
    assert Calibration.model_validate_json(path.read_text()).entries == report.calibration.entries


def test_command_line(data_root, tmp_path, capsys):
    argv = ["--data", str(data_root), "--json", str(tmp_path / "lodo.json"), "--processes", "1"]
    assert main(argv, grid=TINY_GRID) == 0
    out = capsys.readouterr().out
    assert "| held out |" in out and "chosen on all datasets" in out
    assert json.loads((tmp_path / "lodo.json").read_text())["folds"]


def test_roc_auc():
    truth = np.array([0, 0, 1, 1], bool)
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), truth) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), truth) == 0.0
    assert roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), truth) == 0.5


def test_naive_baseline_always_splits():
    image = np.full((32, 32, 3), 120, np.uint8)
    noisy = image.copy()
    noisy[::2] += 3
    assert NaiveCvaOtsu().provide(pair_from_arrays(image, noisy)).class_mask.any()  # Otsu always splits


def test_detector_folds_must_cover_every_held_out_set(data_root, tmp_path):
    (tmp_path / "folds" / "levircd").mkdir(parents=True)
    with pytest.raises(InputError, match="lacks the fold model folder of dsifn"):
        run_leave_one_dataset_out(data_root, grid=TINY_GRID, processes=1, detector_folds=tmp_path / "folds")


def test_timing_pairs_are_256_and_1024_square(data_root):
    items = load_dataset(available_datasets(data_root)[0], data_root)
    pairs = timing_pairs(items)
    assert {size: p.shape for size, p in pairs.items()} == {256: (256, 256), 1024: (1024, 1024)}
    assert all(p.gsd_m == 0.5 for p in pairs.values())
    assert set(time_sizes(NaiveCvaOtsu(), pairs, repeats=1)) == {256, 1024}
