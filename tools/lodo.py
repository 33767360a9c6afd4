"""Leave-one-dataset-out: the classical detector's settings chosen on four datasets, scored on the fifth.

Run ``python -m tools.lodo [--data ../shared/data] [--provider SPEC ...] [--detector-folds DIR]
[--write-calibration] [--json FILE]``: it prints the README's table.

1. Every dataset of :mod:`tools.lodo_data` is loaded with the no-change pairs made from it.
2. The grid of :mod:`tools.lodo_tune` is scored once on every pair.
3. For each dataset in turn, the grid point with the best objective on the others is frozen and run on the
   held-out dataset through the ordinary provider (timed), with its GSD as the dataset states it, and again with
   it hidden (the real pairs).
4. Baselines run on every dataset with nothing to tune: naive CVA + Otsu, any ``--provider`` spec (a learned
   detector: ``onnx:model.onnx``, ``export:model.pt2``, ``deltavlm:...``), and with ``--detector-folds DIR`` the
   learned detector's fold model that never saw the held-out set (``detector:DIR/<set>``).
5. Every row is also timed on one 256² and one 1024² pair cut (and mirrored) from the held-out set.
6. The classical held-out verdicts, sorted by GSD band and sensor kind, become the calibration
   (:mod:`tools.change_detection.calibration`); ``--write-calibration`` stores it. The table's "conf" column is
   the confidence the shipped calibration states for each pair, "conf*" the one a calibration built without the
   held-out dataset would state (the honest test that confidence transfers).
7. The settings chosen on all datasets are printed, with a note where :class:`ClassicalSettings`' defaults
   differ.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
from pydantic import BaseModel, Field

from deltavlm.rules import ChangeClass
from tools.atomic import write_atomic
from tools.change_detection.calibration import (
    CALIBRATION_PATH,
    SENSOR_WORDS,
    Calibration,
    CalibrationEntry,
    band_words,
    entry_key,
    gsd_band,
    sensor_kind,
    smoothed_accuracy,
)
from tools.change_detection.detector import pair_gsd_m
from tools.change_detection.provider import ClassicalMaskProvider
from tools.change_detection.settings import ClassicalSettings
from tools.lodo_data import DATASETS, LabelledPair, available_datasets, load_dataset
from tools.lodo_tune import GRID, Grid, choose, grid_points, grid_search
from tools.mask_eval import Confusion, PairScore, score_mask
from tools.masks import ChangeMask, ConfidenceBasis, MaskProvider, MaskSource
from tools.pairs import ImagePair, pair_from_arrays
from tools.raster import InputError

RELIABLE_BINARY = 0.85
RELIABLE_GRID_F1 = 0.6
PROVISIONAL = Calibration(
    protocol="provisional: replaced by the run's own calibration once every fold is scored",
    settings={},
    reliable_when="",
    entries=[
        CalibrationEntry(
            key=entry_key("any", "any"),
            gsd_band="any",
            sensor="any",
            datasets=[],
            pairs=0,
            binary_correct=0,
            binary_accuracy=0.0,
            grid_f1=0.0,
            pixel_f1=0.0,
            confidence=0.5,
            reliable=False,
            description="provisional",
        )
    ],
)


class NaiveCvaOtsu:
    """The reference baseline: change-vector magnitude |t2 − t1| in RGB, Otsu's threshold, nothing else."""

    name = "naive"

    def provide(self, pair: ImagePair) -> ChangeMask:
        diff = np.sqrt(((pair.t2.astype(np.float32) - pair.t1.astype(np.float32)) ** 2).sum(axis=2))
        scaled = np.clip(diff / max(float(diff.max()), 1e-6) * 255, 0, 255).astype(np.uint8)
        _, mask = cv2.threshold(scaled, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        return ChangeMask(
            class_mask=np.where(mask > 0, int(ChangeClass.CHANGE), 0).astype(np.uint8),
            source=MaskSource(
                provider=self.name,
                kind="classical",
                categorical=False,
                confidence=0.0,
                basis=ConfidenceBasis(kind="uncalibrated"),
            ),
        )


class PairResult(BaseModel):
    """One provider's score on one held-out pair, with what the pair was."""

    dataset: str
    origin: str
    gsd_known: bool
    gsd_band: str
    sensor: str
    score: PairScore


class LodoRow(BaseModel):
    """One provider on one held-out dataset: what the table shows."""

    held_out: str
    tuned_on: list[str]
    provider: str
    pairs_real: int
    pairs_no_change: int
    pixel_f1: float
    grid_f1: float
    binary_real: float
    binary_no_change: float
    binary_all: float
    count_mae: float
    mean_confidence: float
    mean_confidence_without: float | None = None
    ms_per_pair: float
    ms_256: float | None = Field(None, description="Median ms of one 256² pair cut from the held-out set.")
    ms_1024: float | None = Field(None, description="Ms of one 1024² pair grown from the held-out set (mirrored).")


class Fold(BaseModel):
    held_out: str
    tuned_on: list[str]
    settings: dict = Field(description="The grid parameters chosen on the tuning datasets.")


class LodoReport(BaseModel):
    """Every fold's choice, every row of the table, the calibration they give, and the all-data choice."""

    data_root: Path
    grid_points: int
    folds: list[Fold]
    rows: list[LodoRow]
    calibration: Calibration
    chosen_on_all: dict
    results: list[PairResult] = Field(default_factory=list, description="Per pair, classical GSD-known only.")


def tuned_parameters(settings: ClassicalSettings, grid: Grid = GRID) -> dict:
    return settings.model_dump(include=set(grid.names))


def run_provider(provider: MaskProvider, items: Sequence[LabelledPair], hide_gsd: bool = False) -> list[PairResult]:
    """Timed provide() on every item (after one untimed warm-up), scored by the eval-masks rules."""
    if not items:
        return []
    pairs = [_without_gsd(i.pair) if hide_gsd else i.pair for i in items]
    provider.provide(pairs[0])
    results = []
    for item, pair in zip(items, pairs, strict=True):
        started = time.perf_counter()
        mask = provider.provide(pair)
        ms = (time.perf_counter() - started) * 1e3
        gsd = pair_gsd_m(pair)
        results.append(
            PairResult(
                dataset=item.dataset,
                origin=item.origin,
                gsd_known=gsd is not None,
                gsd_band=gsd_band(gsd),
                sensor=sensor_kind(pair.scaling),
                score=score_mask(item.name, mask, item.truth, ms),
            )
        )
    return results


TIMING_SIZES = (256, 1024)


def _mirrored(image: np.ndarray, size: int) -> np.ndarray:
    """A ``size``² window of ``image``: its centre crop, mirrored outwards where the image is smaller."""
    height, width = image.shape[:2]
    y0, x0 = max((height - size) // 2, 0), max((width - size) // 2, 0)
    crop = image[y0 : y0 + size, x0 : x0 + size]
    pad = [(0, size - crop.shape[0]), (0, size - crop.shape[1])] + [(0, 0)] * (image.ndim - 2)
    return np.pad(crop, pad, mode="symmetric")


def timing_pairs(items: Sequence[LabelledPair]) -> dict[int, ImagePair]:
    """The set's first real pair at 256² and 1024² (same GSD and sensor kind), for the per-size timings."""
    first = next(i.pair for i in items if i.origin == "real")
    out = {}
    for size in TIMING_SIZES:
        pair = pair_from_arrays(_mirrored(first.t1, size), _mirrored(first.t2, size), gsd_m=pair_gsd_m(first))
        out[size] = pair.model_copy(update={"scaling": first.scaling})
    return out


def time_sizes(provider: MaskProvider, pairs: dict[int, ImagePair], repeats: int = 3) -> dict[int, float]:
    """Median wall-clock ms of ``provide`` per size, after one untimed warm-up at the smallest size."""
    provider.provide(pairs[min(pairs)])
    out = {}
    for size, pair in pairs.items():
        runs = []
        for _ in range(repeats if size <= 256 else 1):
            started = time.perf_counter()
            provider.provide(pair)
            runs.append((time.perf_counter() - started) * 1e3)
        out[size] = statistics.median(runs)
    return out


def _fold_providers(folds: Path | None, held_out: str) -> list[tuple[str, MaskProvider]]:
    """The learned detector trained without ``held_out``: ``detector:FOLDS/<held_out>``, when that folder exists."""
    if folds is None:
        return []
    from tools.provider_spec import build_provider

    folder = folds / held_out
    return [("learned detector, fold model (never saw this set)", build_provider(f"detector:{folder}"))]


def _without_gsd(pair: ImagePair) -> ImagePair:
    return pair.model_copy(update={"gsd_m": None, "georef": None})


def _summary(results: Sequence[PairResult]) -> tuple[float, float, float, float]:
    pixels, cells = Confusion(), Confusion()
    for r in results:
        pixels, cells = pixels.add(r.score.pixels), cells.add(r.score.cells)
    count = statistics.fmean(r.score.count_error for r in results) if results else 0.0
    accuracy = statistics.fmean(float(r.score.binary_correct) for r in results) if results else float("nan")
    return pixels.f1, cells.f1, accuracy, count


def build_calibration(results: Sequence[PairResult], protocol: str, settings: dict) -> Calibration:
    """Entries per (GSD band, sensor), per band over sensors, and over everything, from held-out verdicts."""
    groups: dict[tuple[str, str], list[PairResult]] = {}
    for r in results:
        for key in ((r.gsd_band, r.sensor), (r.gsd_band, "any"), ("any", "any")):
            groups.setdefault(key, []).append(r)
    entries = []
    for (band, sensor), group in sorted(groups.items()):
        real = [r for r in group if r.origin == "real"]
        pixel_f1, grid_f1, _, _ = _summary(real)
        correct = sum(r.score.binary_correct for r in group)
        accuracy = correct / len(group)
        datasets = sorted({r.dataset for r in group})
        words = "all held-out" if band == "any" else f"{band_words(band)} {SENSOR_WORDS.get(sensor, sensor)}"
        entries.append(
            CalibrationEntry(
                key=entry_key(band, sensor),
                gsd_band=band,
                sensor=sensor,
                datasets=datasets,
                pairs=len(group),
                binary_correct=correct,
                binary_accuracy=round(accuracy, 4),
                grid_f1=round(grid_f1, 4),
                pixel_f1=round(pixel_f1, 4),
                confidence=round(smoothed_accuracy(correct, len(group)), 4),
                reliable=accuracy >= RELIABLE_BINARY and grid_f1 >= RELIABLE_GRID_F1,
                description=f"{words} pairs ({', '.join(datasets)}), real and made no-change",
            )
        )
    return Calibration(
        protocol=protocol,
        settings=settings,
        reliable_when=f"binary accuracy ≥ {RELIABLE_BINARY} and grid F1 ≥ {RELIABLE_GRID_F1} on held-out pairs",
        entries=entries,
    )


def _stated(results: Sequence[PairResult], calibration: Calibration) -> list[float]:
    return [calibration.lookup(r.gsd_band, r.sensor)[0].confidence for r in results]


def summary_row(
    held_out: str,
    tuned_on: list[str],
    provider: str,
    results: list[PairResult],
    calibration: Calibration | None = None,
    without: Calibration | None = None,
    timings: dict[int, float] | None = None,
) -> LodoRow:
    real = [r for r in results if r.origin == "real"]
    made = [r for r in results if r.origin != "real"]
    pixel_f1, grid_f1, binary_real, count = _summary(real)
    confidences = _stated(results, calibration) if calibration else [r.score.confidence for r in results]
    return LodoRow(
        held_out=held_out,
        tuned_on=tuned_on,
        provider=provider,
        pairs_real=len(real),
        pairs_no_change=len(made),
        pixel_f1=pixel_f1,
        grid_f1=grid_f1,
        binary_real=binary_real,
        binary_no_change=_summary(made)[2],
        binary_all=_summary(results)[2],
        count_mae=count,
        mean_confidence=statistics.fmean(confidences),
        mean_confidence_without=statistics.fmean(_stated(results, without)) if without else None,
        ms_per_pair=statistics.fmean(r.score.ms for r in results),
        ms_256=(timings or {}).get(256),
        ms_1024=(timings or {}).get(1024),
    )


def run_leave_one_dataset_out(
    data_root: str | Path,
    providers: Sequence[tuple[str, MaskProvider]] = (),
    *,
    grid: Grid = GRID,
    processes: int | None = None,
    progress: Callable[[str], None] | None = None,
    detector_folds: Path | None = None,
) -> LodoReport:
    """The whole protocol (module docstring); ``providers`` are (label, provider) rows beside the classical one.

    ``detector_folds`` is a folder of learned-detector fold models, one per held-out set name
    (``FOLDS/levircd``, ``FOLDS/dsifn``, …), each trained without that set: its row on a set is the model that
    never saw it.
    """
    say = progress or (lambda _line: None)
    specs = available_datasets(data_root)
    if len(specs) < 2:
        raise InputError(f"{data_root} holds {len(specs)} of the datasets {[s.folder for s in DATASETS]}; need 2+")
    items: list[LabelledPair] = []
    for spec in specs:
        items += load_dataset(spec, data_root)
        say(f"loaded {spec.name}")
    names = [s.name for s in specs]
    missing = [n for n in names if detector_folds is not None and not (detector_folds / n).is_dir()]
    if missing:
        raise InputError(f"--detector-folds {detector_folds} lacks the fold model folder of {', '.join(missing)}")
    points = grid_points(grid)
    started = time.perf_counter()
    scores = grid_search(items, grid, processes)
    say(f"grid of {len(points)} points scored in {time.perf_counter() - started:.0f} s")
    folds: list[Fold] = []
    classical: dict[str, list[PairResult]] = {}
    hidden: dict[str, list[PairResult]] = {}
    fold_settings: dict[str, ClassicalSettings] = {}
    for held_out in names:
        tuned_on = [n for n in names if n != held_out]
        settings = points[choose(scores, items, tuned_on)].settings
        fold_settings[held_out] = settings
        folds.append(Fold(held_out=held_out, tuned_on=tuned_on, settings=tuned_parameters(settings, grid)))
        provider = ClassicalMaskProvider(settings, calibration=PROVISIONAL)
        held = [i for i in items if i.dataset == held_out]
        classical[held_out] = run_provider(provider, held)
        hidden[held_out] = run_provider(provider, [i for i in held if i.origin == "real"], hide_gsd=True)
        say(f"held out {held_out}: {tuned_parameters(settings, grid)}")
    everything = [r for rs in (*classical.values(), *hidden.values()) for r in rs]
    protocol = (
        f"leave-one-dataset-out over {', '.join(names)} (real pairs and no-change pairs made from them); each "
        "dataset scored with the settings chosen on the others; unknown-GSD entries from the same held-out real "
        "pairs with their GSD hidden"
    )
    chosen_all = points[choose(scores, items, names)].settings
    calibration = build_calibration(everything, protocol, tuned_parameters(chosen_all, grid))
    rows = []
    for held_out in names:
        tuned_on = [n for n in names if n != held_out]
        others = [r for n, rs in (*classical.items(), *hidden.items()) if n != held_out for r in rs]
        without = build_calibration(others, protocol, {})
        held = [i for i in items if i.dataset == held_out]
        timing = timing_pairs(held)
        frozen = ClassicalMaskProvider(fold_settings[held_out], calibration=PROVISIONAL)
        rows.append(
            summary_row(
                held_out,
                tuned_on,
                "classical (tuned on the others)",
                classical[held_out],
                calibration,
                without,
                time_sizes(frozen, timing),
            )
        )
        rows.append(summary_row(held_out, tuned_on, "classical, GSD hidden", hidden[held_out], calibration, without))
        baselines = [("naive CVA + Otsu", NaiveCvaOtsu()), *providers]
        baselines += _fold_providers(detector_folds, held_out)
        for label, other in baselines:
            rows.append(summary_row(held_out, [], label, run_provider(other, held), timings=time_sizes(other, timing)))
        say(f"scored paths and baselines on {held_out}")
    return LodoReport(
        data_root=Path(data_root),
        grid_points=len(points),
        folds=folds,
        rows=rows,
        calibration=calibration,
        chosen_on_all=tuned_parameters(chosen_all, grid),
        results=[r for rs in classical.values() for r in rs],
    )


LODO_COLUMNS = (
    "held out",
    "provider",
    "pairs",
    "pixel F1",
    "grid F1",
    "binary (real)",
    "binary (no-change)",
    "binary (all)",
    "count err",
    "conf",
    "conf*",
    "ms/pair",
    "ms 256²",
    "ms 1024²",
)


def format_lodo_table(report: LodoReport, markdown: bool = True) -> str:
    """The held-out table (one row per provider per held-out dataset), then each fold's choice."""
    titles = {s.name: s.title for s in DATASETS}
    rows = [
        [
            titles.get(r.held_out, r.held_out),
            r.provider,
            f"{r.pairs_real}+{r.pairs_no_change}",
            f"{r.pixel_f1:.3f}",
            f"{r.grid_f1:.3f}",
            f"{r.binary_real:.2f}",
            "-" if r.pairs_no_change == 0 else f"{r.binary_no_change:.2f}",
            f"{r.binary_all:.2f}",
            f"{r.count_mae:.1f}",
            f"{r.mean_confidence:.2f}",
            "-" if r.mean_confidence_without is None else f"{r.mean_confidence_without:.2f}",
            f"{r.ms_per_pair:.0f}",
            "-" if r.ms_256 is None else f"{r.ms_256:.0f}",
            "-" if r.ms_1024 is None else f"{r.ms_1024:.0f}",
        ]
        for r in report.rows
    ]
    if markdown:
        lines = ["| " + " | ".join(LODO_COLUMNS) + " |", "|" + "---|" * len(LODO_COLUMNS)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    else:
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(LODO_COLUMNS)]
        fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
        lines = [fmt.format(*LODO_COLUMNS)] + [fmt.format(*row) for row in rows]
    lines.append("")
    lines.append("pairs: real + no-change made from them. conf: stated by the calibration; conf*: by one built without")
    lines.append(
        "the held-out dataset. ms 256² / 1024²: one pair of that size cut (and mirrored) from the held-out set."
    )
    lines.append("Tested on the held-out set; settings chosen per fold on the other datasets (tuned on):")
    for fold in report.folds:
        lines.append(f"- held out {fold.held_out}: {fold.settings}")
    lines.append(f"- chosen on all datasets: {report.chosen_on_all}")
    return "\n".join(lines)


DETECTOR_FOLDS_HELP = (
    "learned-detector fold models, DIR/<held-out set> (levircd, dsifn, sztaki, oscd, egybcd), each trained "
    "without that set: adds a row scoring set X with detector:DIR/X"
)


def write_calibration(report: LodoReport, path: Path = CALIBRATION_PATH) -> Path:
    write_atomic(path, report.calibration.model_dump_json(indent=1) + "\n")
    return path


def main(argv: Sequence[str] | None = None, grid: Grid = GRID) -> int:
    from tools.provider_spec import build_provider

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--provider", action="append", default=[], metavar="SPEC", help="extra provider row")
    parser.add_argument("--write-calibration", action="store_true", help=f"store the calibration in {CALIBRATION_PATH}")
    parser.add_argument("--json", type=Path, help="write the whole report (per-pair results included) as JSON")
    parser.add_argument("--plain", action="store_true", help="aligned text instead of Markdown")
    parser.add_argument("--processes", type=int, help="worker processes for the grid (default: up to 4)")
    parser.add_argument("--detector-folds", type=Path, metavar="DIR", help=DETECTOR_FOLDS_HELP)
    args = parser.parse_args(argv)
    providers = [(spec, build_provider(spec)) for spec in args.provider]
    report = run_leave_one_dataset_out(
        args.data, providers, grid=grid, processes=args.processes, progress=print, detector_folds=args.detector_folds
    )
    print()
    print(format_lodo_table(report, markdown=not args.plain))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(args.json, report.model_dump_json(indent=1))
        print(f"wrote {args.json}")
    if args.write_calibration:
        print(f"wrote {write_calibration(report)}")
    defaults = tuned_parameters(ClassicalSettings(), grid)
    if defaults != report.chosen_on_all:
        print(f"note: ClassicalSettings defaults {defaults} differ from the all-data choice {report.chosen_on_all}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
