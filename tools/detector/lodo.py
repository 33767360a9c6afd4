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

from pydantic import BaseModel, Field

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


MIN_WINS = 4
MIN_BINARY = 0.9


class DefaultDecision(BaseModel):
    """Issue 24's rule for making the detector the default mask, applied to the fold rows."""

    folds: int
    grid_wins: int = Field(description="Folds where the detector's grid F1 beats the classical row's.")
    grid_margins: dict[str, float] = Field(description="Detector minus classical grid F1, per held-out set.")
    binary_all: dict[str, float] = Field(description="Binary accuracy over real and made no-change pairs, per set.")
    no_change: dict[str, float] = Field(description="Share of made no-change pairs called unchanged, per set.")
    becomes_default: bool
    shortfalls: list[str]


def default_decision(rows: list[dict[str, Any]]) -> DefaultDecision:
    """Default only if grid F1 beats classical in ≥ 4 of 5 folds, binary accuracy ≥ 0.9 on every set, and every
    made no-change pair is called unchanged; otherwise say by how much each condition was missed."""
    detector = {r["held_out"]: r for r in rows if r["provider"].startswith("detector:")}
    classical = {r["held_out"]: r for r in rows if not r["provider"].startswith("detector:")}
    margins = {n: round(detector[n]["grid_f1"] - classical[n]["grid_f1"], 3) for n in detector if n in classical}
    wins = sum(m > 0 for m in margins.values())
    binary = {n: round(r["binary_all"], 3) for n, r in detector.items()}
    no_change = {n: round(r["binary_no_change"], 3) for n, r in detector.items()}
    needed = min(MIN_WINS, len(detector))
    shortfalls = []
    if wins < needed:
        shortfalls.append(f"grid F1 beats the classical path in {wins} of {len(margins)} folds (needs {needed})")
    shortfalls += [
        f"binary accuracy {v:.3f} on {n} (needs ≥ {MIN_BINARY})" for n, v in binary.items() if v < MIN_BINARY
    ]
    shortfalls += [f"{1 - v:.0%} of {n}'s made no-change pairs called changed" for n, v in no_change.items() if v < 1]
    return DefaultDecision(
        folds=len(detector),
        grid_wins=wins,
        grid_margins=margins,
        binary_all=binary,
        no_change=no_change,
        becomes_default=not shortfalls and len(detector) >= 5,
        shortfalls=shortfalls,
    )


def format_fold_table(rows: list[dict[str, Any]]) -> str:
    """The fold rows as a Markdown table (detector and the classical row beside it, per held-out set)."""
    head = (
        "| held out | trained on | provider | pixel F1 | grid F1 | count err | binary (real) | no-change ok "
        "| binary (all) | ms/pair |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['held_out']} | {', '.join(r['tuned_on'])} | {r['provider']} | {r['pixel_f1']:.3f} | "
            f"{r['grid_f1']:.3f} | {r['count_mae']:.2f} | {r['binary_real']:.2f} | {r['binary_no_change']:.2f} | "
            f"{r['binary_all']:.2f} | {r['ms_per_pair']:.0f} |"
        )
    return "\n".join(lines)
