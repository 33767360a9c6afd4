"""The detector's leave-one-dataset-out folds: train on four datasets, score on the fifth, for each of them.

Each fold's folder (``out/detector/lodo/<held-out>/``) gets ``model.onnx``, its sidecar, the model card and a
``metrics.json`` whose ``held_out`` block is the table row (scored by :func:`tools.lodo.run_provider`, the same
rules as every other row) and whose ``pairs`` block holds every held-out pair's score. A fold already scored is
skipped, so an interrupted run resumes. The held-out verdicts, sorted by GSD band and sensor kind, become the
detector's calibration (``tools/detector/calibration.json``), built the way the classical path's is.

For comparison each fold also scores the classical provider with its shipped settings on the same pairs (those
settings were chosen on all datasets, the held-out one included, so that row flatters the classical path).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tools.detector.provider import CALIBRATION_PATH, DetectorMaskProvider
from tools.detector.train import TrainOptions, train
from tools.lodo import PairResult, build_calibration, run_provider, summary_row
from tools.lodo_data import available_datasets, load_dataset
from tools.provider_spec import build_provider
from tools.raster import InputError

PROTOCOL = (
    "learned detector, leave-one-dataset-out: each dataset (real and made no-change pairs) scored by the model "
    "trained on the other datasets"
)


def fold_metrics(folder: Path) -> dict[str, Any] | None:
    """A fold's metrics.json when it holds held-out scores, else None."""
    path = folder / "metrics.json"
    if not path.is_file():
        return None
    metrics = json.loads(path.read_text())
    return metrics if "held_out" in metrics else None


def run_folds(
    data_root: Path,
    out: Path,
    *,
    minutes: float,
    seed: int = 0,
    only: Sequence[str] | None = None,
    write_calibration: bool = False,
    log: Callable[[str], None] = lambda line: None,
) -> list[dict[str, Any]]:
    """Train and score every fold not yet scored; returns the held-out rows (detector, then classical)."""
    specs = available_datasets(data_root)
    if len(specs) < 2:
        raise InputError(f"{data_root} holds {len(specs)} of the protocol's datasets; leave-one-out needs two or more")
    names = [s.name for s in specs]
    unknown = sorted(set(only or []) - set(names))
    if unknown:
        raise InputError(f"--only {unknown}: not among the datasets found in {data_root} ({', '.join(names)})")
    classical = build_provider("classical")
    rows = []
    for spec in specs:
        folder = out / spec.name
        metrics = fold_metrics(folder)
        if metrics is None and (not only or spec.name in only):
            trained_on = [n for n in names if n != spec.name]
            log(f"fold {spec.name}: training on {', '.join(trained_on)} for {minutes:g} min")
            options = TrainOptions(
                data=[data_root], out=folder, minutes=minutes, seed=seed, hold_out=[spec.name], name=f"lodo-{spec.name}"
            )
            metrics = train(options)
            provider = DetectorMaskProvider.from_folder(folder)
            provider.calibration = None  # scores only; a calibration would not change the mask
            items = load_dataset(spec, data_root)
            results = run_provider(provider, items)
            baseline = run_provider(classical, items)
            metrics["held_out"] = summary_row(spec.name, trained_on, provider.name, results).model_dump()
            metrics["classical"] = summary_row(spec.name, trained_on, "classical (shipped)", baseline).model_dump()
            metrics["pairs"] = [r.model_dump() for r in results]
            (folder / "metrics.json").write_text(json.dumps(metrics, indent=1))
            row = metrics["held_out"]
            log(
                f"fold {spec.name}: pixel F1 {row['pixel_f1']:.3f}, grid F1 {row['grid_f1']:.3f}, binary "
                f"{row['binary_all']:.3f} (no-change {row['binary_no_change']:.3f}); classical grid F1 "
                f"{metrics['classical']['grid_f1']:.3f}"
            )
        if metrics is not None:
            rows += [metrics["held_out"], metrics["classical"]]
    if write_calibration:
        path = write_detector_calibration(out, names)
        log(f"wrote {path}")
    return rows


def write_detector_calibration(out: Path, names: Sequence[str], path: Path = CALIBRATION_PATH) -> Path:
    """The calibration from every scored fold's held-out pairs; all folds must be scored."""
    results: list[PairResult] = []
    missing = []
    for name in names:
        metrics = fold_metrics(out / name)
        if metrics is None:
            missing.append(name)
            continue
        results += [PairResult(**r) for r in metrics["pairs"]]
    if missing:
        raise InputError(f"folds not scored yet: {', '.join(missing)}; run `changeagent detector lodo` first")
    calibration = build_calibration(results, PROTOCOL, {"folds": list(names), "source": str(out)})
    calibration = calibration.model_copy(update={"generated_by": "changeagent detector lodo DATA --write-calibration"})
    path.write_text(calibration.model_dump_json(indent=1) + "\n")
    return path
