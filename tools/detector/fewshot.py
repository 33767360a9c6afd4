"""Few-shot adaptation, measured: fine-tune a base detector on k labelled pairs of a dataset it never saw, and
score it before and after on that dataset's other pairs.

The k pairs are drawn with the seed and linked (not copied) into ``OUT/adapt_data``; the adapted model goes to
``OUT/model``; the report (``OUT/fewshot.json``) names the pairs adapted on and the pairs tested.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tools.detector.provider import DetectorMaskProvider
from tools.detector.train import TrainOptions, train
from tools.lodo import run_provider, summary_row
from tools.lodo_data import LabelledPair
from tools.mask_eval import find_pairs
from tools.masks import load_change_mask
from tools.pairs import load_pair
from tools.raster import InputError


def _link(files: Any, folder: Path) -> None:
    for sub, source in (("A", files.t1), ("B", files.t2), ("label", files.label)):
        target = folder / sub / Path(source).name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() or target.is_symlink():
            target.unlink()
        target.symlink_to(Path(source).resolve())


def _score(folder: Path, items: list[LabelledPair]) -> dict[str, Any]:
    provider = DetectorMaskProvider.from_folder(folder)
    provider.calibration = None
    row = summary_row(items[0].dataset, [], provider.name, run_provider(provider, items))
    return row.model_dump(include={"pixel_f1", "grid_f1", "binary_real", "count_mae"})


def measure_few_shot(
    init: Path, pairs_folder: Path, out: Path, k: int = 3, minutes: float = 4.0, seed: int = 0, threads: int = 1
) -> dict[str, Any]:
    """Adapt ``init`` on k pairs of ``pairs_folder``; scores on the remaining pairs before and after."""
    found = sorted(find_pairs(pairs_folder).pairs, key=lambda f: f.name)
    if len(found) <= k:
        raise InputError(f"{pairs_folder} has {len(found)} labelled pairs; k={k} leaves none to test on")
    order = np.random.default_rng(seed).permutation(len(found))
    adapt = [found[i] for i in order[:k]]
    test = [found[i] for i in order[k:]]
    data = out / "adapt_data"
    for files in adapt:
        _link(files, data)
    items = []
    for files in test:
        pair = load_pair(files.t1, files.t2)
        truth = load_change_mask(files.label, shape=pair.shape, kind="binary")
        items.append(LabelledPair(dataset=pairs_folder.name, name=files.name, origin="real", pair=pair, truth=truth))
    before = _score(init, items)
    options = TrainOptions(
        data=[data], out=out / "model", minutes=minutes, seed=seed, init=init, lr=3e-4, threads=threads, restart=True
    )
    metrics = train(options)
    after = _score(out / "model", items)
    result = {
        "base": str(init),
        "adapted_on": [f.name for f in adapt],
        "tested_on": [f.name for f in test],
        "k": k,
        "minutes": metrics["about"]["minutes"],
        "threads": threads,
        "before": before,
        "after": after,
        "gain": {key: round(after[key] - before[key], 4) for key in before},
    }
    (out / "fewshot.json").write_text(json.dumps(result, indent=1))
    return result
