"""Training data for the detector: labelled pairs read in place, a validation split, and seeded batches that mix
real crops, copy-paste synthetic change and made no-change pairs, each under random nuisances.

A DATA argument is either a data root holding the protocol's datasets (``levircd/``, ``dsifn/``… as
:mod:`tools.lodo_data` names them) or one LEVIR-style folder (``A/``, ``B/``, ``label/``) of a user's own pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.detector.nuisances import random_nuisances, same_geometry
from tools.detector.synthetic import Cutout, copy_paste_pair, cutouts_from_labels, fit, random_crop
from tools.lodo_data import available_datasets, load_dataset
from tools.mask_eval import find_pairs
from tools.masks import load_change_mask
from tools.pairs import load_pair
from tools.raster import InputError

VALIDATION_MIN_PAIRS = 4
"""A dataset gives its last pair (by name) to validation only when it has at least this many."""
VALIDATION_MAX_SIDE = 512


@dataclass(frozen=True)
class Example:
    """One labelled pair in memory: 8-bit RGB dates and a bool change label."""

    dataset: str
    name: str
    t1: np.ndarray
    t2: np.ndarray
    label: np.ndarray


def _is_pair_folder(root: Path) -> bool:
    return all((root / sub).is_dir() for sub in ("A", "B", "label"))


def read_examples(roots: Sequence[str | Path], hold_out: Sequence[str] = ()) -> list[Example]:
    """Every labelled pair under ``roots`` except the datasets named in ``hold_out``."""
    examples: list[Example] = []
    for root in map(Path, roots):
        if not root.is_dir():
            raise InputError(f"training data folder not found: {root}")
        if _is_pair_folder(root):
            for files in find_pairs(root).pairs:
                pair = load_pair(files.t1, files.t2)
                truth = load_change_mask(files.label, shape=pair.shape, kind="binary")
                examples.append(Example(root.name, files.name, pair.t1, pair.t2, truth.class_mask > 0))
            continue
        specs = [s for s in available_datasets(root) if s.name not in hold_out]
        for spec in specs:
            for item in load_dataset(spec, root, with_no_change=False):
                label = item.truth.class_mask > 0
                examples.append(Example(spec.name, item.name, item.pair.t1, item.pair.t2, label))
    if not examples:
        raise InputError(
            f"no labelled pairs in {', '.join(map(str, roots))}: give a data root with dataset folders "
            "(levircd/, dsifn/, sztaki/, oscd/, egybcd/) or a folder with A/, B/ and label/"
        )
    return examples


def split_validation(examples: Sequence[Example]) -> tuple[list[Example], list[Example]]:
    """(train, validation): each dataset with at least four pairs lends its last pair (by name) to validation.

    With fewer pairs everywhere (a user's 3 pairs), validation falls back to the training pairs themselves; the
    sidecar then says the threshold was chosen in-sample.
    """
    by_set: dict[str, list[Example]] = {}
    for e in examples:
        by_set.setdefault(e.dataset, []).append(e)
    train, val = [], []
    for items in by_set.values():
        items = sorted(items, key=lambda e: e.name)
        if len(items) >= VALIDATION_MIN_PAIRS:
            train += items[:-1]
            val.append(items[-1])
        else:
            train += items
    return train, val


@dataclass(frozen=True)
class Mix:
    """Shares of each kind of training crop (the rest are copy-paste synthetic)."""

    real: float = 0.45
    no_change: float = 0.15


class BatchMaker:
    """Seeded batches of (before, after, label) crops from real pairs, pasted objects and made no-change pairs."""

    def __init__(self, examples: Sequence[Example], size: int, seed: int, mix: Mix | None = None) -> None:
        if not examples:
            raise InputError("no training pairs left after the validation split")
        self.examples = list(examples)
        self.size = size
        self.mix = mix or Mix()
        self.rng = np.random.default_rng(seed)
        self.donors = [e.t1 for e in self.examples] + [e.t2 for e in self.examples]
        self.cutouts: list[Cutout] = cutouts_from_labels([e.t2 for e in self.examples], [e.label for e in examples])
        self.cutouts += cutouts_from_labels([e.t1 for e in self.examples], [e.label for e in examples])
        changed = [e.label.mean() for e in self.examples]
        # pairs weighted by changed share (floor 0.05) so pairs with change are drawn more than empty ones
        weights = np.maximum(np.asarray(changed), 0.05)
        self.weights = weights / weights.sum()

    def _real(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        e = self.examples[int(self.rng.choice(len(self.examples), p=self.weights))]
        t1, t2, label = fit(e.t1, self.size), fit(e.t2, self.size), fit(e.label, self.size)
        y, x = random_crop(t1, self.size, self.rng)
        window = (slice(y, y + self.size), slice(x, x + self.size))
        return t1[window], t2[window], label[window]

    def _no_change(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        image = self.donors[int(self.rng.integers(len(self.donors)))]
        image = fit(image, self.size)
        y, x = random_crop(image, self.size, self.rng)
        crop = np.ascontiguousarray(image[y : y + self.size, x : x + self.size])
        return crop, crop.copy(), np.zeros((self.size, self.size), bool)

    def example(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One crop pair with nuisances on either date and one flip/rotation on both."""
        draw = self.rng.random()
        if draw < self.mix.real:
            t1, t2, label = self._real()
        elif draw < self.mix.real + self.mix.no_change:
            t1, t2, label = self._no_change()
        else:
            background = self.donors[int(self.rng.integers(len(self.donors)))]
            t1, t2, label = copy_paste_pair(background, self.donors, self.cutouts, self.rng, self.size)
        shifted = int(self.rng.integers(2))  # at most one date is shifted, so the label stays on the other
        t1 = random_nuisances(np.ascontiguousarray(t1), self.rng, allow_shift=shifted == 0 and not label.any())
        t2 = random_nuisances(np.ascontiguousarray(t2), self.rng, allow_shift=shifted == 1)
        t1, t2, label = same_geometry([t1, t2, label], self.rng)
        return t1, t2, label

    def batch(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """N×H×W×3 uint8 before and after, N×H×W bool labels."""
        items = [self.example() for _ in range(count)]
        return tuple(np.stack([item[i] for item in items]) for i in range(3))  # type: ignore[return-value]


def validation_items(
    val: Sequence[Example], train: Sequence[Example], seed: int, synthetic: int = 12, size: int = 128
) -> list[Example]:
    """The fixed validation set: held-aside real pairs (centre crop ≤ 512), copy-paste pairs made from them (or
    from the training pairs when none were held aside), and one made no-change pair per real one."""
    rng = np.random.default_rng(seed + 7919)
    real = list(val) if val else list(train)
    items = []
    for e in real:
        height, width = e.label.shape
        side_h, side_w = min(height, VALIDATION_MAX_SIDE) // 16 * 16, min(width, VALIDATION_MAX_SIDE) // 16 * 16
        y, x = (height - side_h) // 2, (width - side_w) // 2
        window = (slice(y, y + side_h), slice(x, x + side_w))
        t1, t2, label = e.t1[window], e.t2[window], e.label[window]
        items.append(Example(e.dataset, e.name, t1, t2, label))
        nuisance = random_nuisances(t1.copy(), rng, probability=0.5)
        items.append(Example(e.dataset, f"{e.name}~no-change", t1, nuisance, np.zeros_like(label)))
    donors = [e.t1 for e in real] + [e.t2 for e in real]
    cutouts = cutouts_from_labels([e.t2 for e in real], [e.label for e in real])
    for i in range(synthetic):
        background = donors[i % len(donors)]
        t1, t2, label = copy_paste_pair(background, donors, cutouts, rng, size)
        items.append(Example("synthetic", f"paste-{i}", t1, random_nuisances(t2, rng, allow_shift=False), label))
    return items
