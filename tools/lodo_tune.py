"""Choosing the classical detector's settings by measurement: a grid search whose scores every fold reuses.

The grid has two stages. Stage A settings change the unsmoothed difference map (matching, structure weight),
which is the expensive part; stage B settings (smoothing scale, threshold, noise factor, refinement, smallest
region) only re-threshold it. Each pair's difference map is computed once per
stage-A point, and every stage-B point is scored on it, so the whole grid costs a few minutes on two cores.
Every pair's scores are kept, so a leave-one-dataset-out fold chooses from the scores of its four tuning
datasets without running anything again.

The objective, per tuning dataset, then averaged over them: 0.25 × binary accuracy on the real pairs + 0.25 ×
binary accuracy on the no-change pairs + 0.3 × grid F1 + 0.2 × pixel F1 (both over the real pairs). Binary
accuracy carries half the weight because a wrong "changed / unchanged" is the worst answer the agent can give.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

from deltavlm.rules import change_mask, changed_cells
from tools.change_detection.detector import difference_map, pair_gsd_m, smooth
from tools.change_detection.regions import changed_regions, noise_relative_threshold
from tools.change_detection.scale import plan_scale
from tools.change_detection.settings import ClassicalSettings
from tools.lodo_data import LabelledPair


class Grid(BaseModel):
    """The values searched: stage A (changes the difference map), stage B (re-thresholds it)."""

    stage_a: dict[str, tuple] = {
        "matching": ("meanstd", "quantile"),
        "edge_weight": (1.0, 2.0),
        "robust_spread": (False, True),
    }
    stage_b: dict[str, tuple] = {
        "smoothing_m": (10.0, 20.0, 40.0),
        "threshold": (0.5, 0.6, 0.8, 1.0, 1.2),
        "noise_factor": (0.0, 2.0, 3.0, 4.0),
        "refine_ratio": (0.0, 0.6),
        "min_area_m2": (50.0, 200.0),
    }

    @property
    def names(self) -> list[str]:
        return list(self.stage_a) + list(self.stage_b)


GRID = Grid()
FIELDS = ("pix_tp", "pix_fp", "pix_fn", "cell_tp", "cell_fp", "cell_fn", "pred_changed")


class GridPoint(BaseModel):
    """One point of the grid: the settings it stands for."""

    index: int
    settings: ClassicalSettings


def grid_points(grid: Grid = GRID, base: ClassicalSettings | None = None) -> list[GridPoint]:
    """Every combination of the two stages, stage A outermost (the order the search runs in)."""
    base = base or ClassicalSettings()
    points = []
    names = grid.names
    for values in itertools.product(*grid.stage_a.values(), *grid.stage_b.values()):
        update = dict(zip(names, values, strict=True))
        points.append(GridPoint(index=len(points), settings=base.model_copy(update=update)))
    return points


def _score_row(changed: np.ndarray, truth: np.ndarray, true_cells: set[str]) -> list[float]:
    """Pixel and cell confusion and the verdict; counts are left to the held-out eval (not in the objective)."""
    tp = int(np.count_nonzero(changed & truth))
    fp = int(np.count_nonzero(changed)) - tp
    fn = int(np.count_nonzero(truth)) - tp
    pred_cells = set(changed_cells(changed))
    return [
        tp,
        fp,
        fn,
        len(pred_cells & true_cells),
        len(pred_cells - true_cells),
        len(true_cells - pred_cells),
        float(tp + fp > 0),
    ]


_ITEMS: list[LabelledPair] = []
_GRID: Grid = GRID


def _stage_a_scores(stage_a: dict) -> np.ndarray:
    """Scores (stage-B points × pairs × FIELDS) of one stage-A point on every pair."""
    stage_b = _GRID.stage_b
    b_points = list(itertools.product(*stage_b.values()))
    out = np.zeros((len(b_points), len(_ITEMS), len(FIELDS)), dtype=np.float64)
    base = ClassicalSettings(**stage_a)
    for j, item in enumerate(_ITEMS):
        difference, _ = difference_map(item.pair.t1, item.pair.t2, base)
        gsd = pair_gsd_m(item.pair)
        truth = change_mask(item.truth.class_mask)
        true_cells = set(changed_cells(truth))
        smoothed_by_scale: dict[float, tuple[np.ndarray, float]] = {}
        for i, values in enumerate(b_points):
            settings = base.model_copy(update=dict(zip(stage_b, values, strict=True)))
            scale = plan_scale(gsd, settings)
            key = scale.smoothing_px
            if key not in smoothed_by_scale:
                smoothed = smooth(difference, scale)
                smoothed_by_scale[key] = (smoothed, float(np.median(smoothed)))
            smoothed, median = smoothed_by_scale[key]
            threshold = noise_relative_threshold(settings.threshold, settings.noise_factor, median)
            changed = changed_regions(smoothed, difference, threshold, settings.refine_ratio, scale.min_area_px)
            out[i, j] = _score_row(changed, truth, true_cells)
    return out


def grid_search(items: list[LabelledPair], grid: Grid = GRID, processes: int | None = None) -> np.ndarray:
    """Scores of every grid point (in :func:`grid_points` order) on every pair: points × pairs × FIELDS."""
    global _ITEMS, _GRID
    _ITEMS, _GRID = items, grid
    a_points = [dict(zip(grid.stage_a, values, strict=True)) for values in itertools.product(*grid.stage_a.values())]
    processes = processes or min(len(a_points), os.cpu_count() or 1)
    if processes > 1 and "fork" in multiprocessing.get_all_start_methods():
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            parts = pool.map(_stage_a_scores, a_points)
    else:
        parts = [_stage_a_scores(p) for p in a_points]
    return np.concatenate(parts, axis=0)


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    den = 2 * tp + fp + fn
    return np.where(den > 0, 2 * tp / np.maximum(den, 1), 1.0)


def dataset_objective(scores: np.ndarray, items: list[LabelledPair], dataset: str) -> np.ndarray:
    """The objective of every grid point on one dataset (see the module docstring)."""
    real = np.array([i.dataset == dataset and i.origin == "real" for i in items])
    made = np.array([i.dataset == dataset and i.origin != "real" for i in items])
    truth_changed = np.array([bool(change_mask(i.truth.class_mask).any()) for i in items])
    pred = scores[:, :, FIELDS.index("pred_changed")] > 0
    binary_real = (pred[:, real] == truth_changed[real]).mean(axis=1)
    binary_made = (~pred[:, made]).mean(axis=1) if made.any() else np.ones(scores.shape[0])
    s = scores[:, real].sum(axis=1)
    pixel_f1 = _f1(s[:, 0], s[:, 1], s[:, 2])
    grid_f1 = _f1(s[:, 3], s[:, 4], s[:, 5])
    return 0.25 * binary_real + 0.25 * binary_made + 0.3 * grid_f1 + 0.2 * pixel_f1


def choose(scores: np.ndarray, items: list[LabelledPair], tuning: Sequence[str]) -> int:
    """The grid point with the best mean objective over the ``tuning`` datasets (first of equals)."""
    objective = np.mean([dataset_objective(scores, items, d) for d in tuning], axis=0)
    return int(np.argmax(objective))
