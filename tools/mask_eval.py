"""Scoring change-mask providers on a LEVIR-style folder (``A/``, ``B/``, ``label/``).

Counts, cells and GeoJSON are only as good as the mask behind them, so every provider is measured the
way the agent uses it: pixel precision/recall/F1/IoU (one confusion matrix over all pairs, the change-detection
convention), the per-pair error of the object count, micro F1 over the 3×3 grid cells, binary accuracy,
and wall time per pair. Counts, cells and the binary verdict come from :mod:`deltavlm.rules` applied to
both masks, so a score here means exactly what the verifiers will say.

Conventions:

* A label is read with :func:`tools.masks.load_change_mask` (``label_kind``, ``auto`` by default). A binary
  0/255 label says "changed" with no category, so predictions are compared with it as change of any
  category; a LEVIR-MCI label (0/128/255) additionally gets per-category pixel scores when the provider is
  categorical.
* Counts merge all categories (``count_objects(change_mask(m))``), on both masks.
* Binary: a pair has changed when its mask has any changed pixel (the rules' binary rule).
* Timing covers ``provider.provide(pair)`` only (not reading the files); one untimed warm-up call on the
  first pair keeps lazy start-up (sessions, JIT, caches) out of the per-pair numbers.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from deltavlm.rules import CATEGORIES, CELL_IDS, RuleSettings, change_mask, changed_cells, count_objects
from tools.atomic import open_atomic, write_atomic
from tools.masks import ChangeMask, MaskKind, MaskProvider, load_change_mask
from tools.pairs import ImagePair, load_pair
from tools.raster import InputError
from tools.verify import rules_for_source

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


class PairFiles(BaseModel):
    """One labelled pair of a LEVIR-style folder."""

    name: str
    t1: Path
    t2: Path
    label: Path


class Dataset(BaseModel):
    """The labelled pairs of a folder, and the pairs left out with the reason."""

    root: Path
    pairs: list[PairFiles]
    skipped: dict[str, str] = Field(default_factory=dict, description="Pair name → why it was not scored.")


class Confusion(BaseModel):
    """True/false positives/negatives; pixels or grid cells."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, other: Confusion) -> Confusion:
        return Confusion(tp=self.tp + other.tp, fp=self.fp + other.fp, fn=self.fn + other.fn, tn=self.tn + other.tn)

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def iou(self) -> float:
        return _ratio(self.tp, self.tp + self.fp + self.fn)


def _ratio(num: int, den: int) -> float:
    """Scores with an empty denominator are 1 when nothing was expected and nothing predicted.

    ``num`` is then 0 too: no change predicted on a no-change pair is a perfect answer, not a missing one.
    """
    return 1.0 if den == 0 else num / den


def confusion(pred: np.ndarray, truth: np.ndarray) -> Confusion:
    """Confusion counts of two boolean arrays of one shape."""
    pred = np.asarray(pred, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    return Confusion(tp=tp, fp=fp, fn=fn, tn=int(pred.size) - tp - fp - fn)


class PairScore(BaseModel):
    """How one provider's mask compares with one label."""

    name: str
    pixels: Confusion
    cells: Confusion
    category_pixels: dict[str, Confusion] = Field(
        default_factory=dict, description="Per named category, when label and mask both carry categories."
    )
    true_count: int
    pred_count: int
    count_error: int = Field(description="|predicted − true| objects, all change merged.")
    true_cells: list[str]
    pred_cells: list[str]
    true_changed: bool
    pred_changed: bool
    ms: float = Field(description="Wall time of provider.provide(pair) in milliseconds.")
    confidence: float
    categorical: bool

    @property
    def binary_correct(self) -> bool:
        return self.true_changed == self.pred_changed


class ProviderReport(BaseModel):
    """One provider over one dataset: the summary the table shows, the per-pair rows behind it."""

    label: str = Field(description="How the provider was asked for (its spec), shown in the table.")
    provider: str
    kind: str
    settings: dict = Field(default_factory=dict, description="The provider's settings from its first mask.")
    dataset: str
    pairs: list[PairScore]
    pixel_precision: float
    pixel_recall: float
    pixel_f1: float
    pixel_iou: float
    count_mae: float
    grid_precision: float
    grid_recall: float
    grid_f1: float
    binary_accuracy: float
    ms_mean: float
    ms_median: float
    mean_confidence: float
    category_f1: dict[str, float] = Field(default_factory=dict)


class EvalReport(BaseModel):
    """Every provider on one dataset."""

    root: Path
    label_kind: str
    rules: RuleSettings
    skipped: dict[str, str]
    providers: list[ProviderReport]


def find_pairs(root: str | Path) -> Dataset:
    """The pairs of ``root`` with ``A/``, ``B/`` and ``label/`` files of one stem; others are listed as skipped."""
    root = Path(root)
    folders = {sub: root / sub for sub in ("A", "B", "label")}
    missing = [name for name, path in folders.items() if not path.is_dir()]
    if missing:
        raise InputError(
            f"{root} is not a LEVIR-style folder: it lacks {', '.join(f'{m}/' for m in missing)} "
            "(expected A/ before, B/ after and label/ change masks, one file per pair with the same name)"
        )
    files = {sub: _images_by_stem(path) for sub, path in folders.items()}
    unusable = {sub: _unusable_by_stem(path) for sub, path in folders.items()}
    pairs: list[PairFiles] = []
    skipped: dict[str, str] = {}
    for stem in sorted(set(files["A"]) | set(files["B"]) | set(files["label"])):
        bad = [f"{sub}/{why}" for sub in ("A", "B", "label") if stem in unusable[sub] for why in [unusable[sub][stem]]]
        if bad:
            skipped[stem] = "; ".join(bad)
            continue
        absent = [sub for sub in ("A", "B", "label") if stem not in files[sub]]
        if absent:
            skipped[stem] = f"no {' or '.join(f'{a}/' for a in absent)} file"
            continue
        pairs.append(PairFiles(name=stem, t1=files["A"][stem], t2=files["B"][stem], label=files["label"][stem]))
    if not pairs:
        raise InputError(f"{root} has no labelled pair (a file of the same name in A/, B/ and label/)")
    return Dataset(root=root, pairs=pairs, skipped=skipped)


def _unusable_by_stem(folder: Path) -> dict[str, str]:
    """Image-named entries that are not regular files (a FIFO, a device, a symlink loop or a dangling link), with
    what they are: such a label is named as unreadable, not taken as "no label"."""
    found = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in IMAGE_SUFFIXES or p.is_file():
            continue
        try:
            p.stat()
        except OSError as exc:  # ELOOP, a dangling link
            found[p.stem] = f"{p.name} cannot be opened ({exc.strerror or exc})"
            continue
        if not p.is_dir():
            found[p.stem] = f"{p.name} is not a regular file (a FIFO or device)"
    return found


def _images_by_stem(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}


def score_mask(
    name: str, pred: ChangeMask, truth: ChangeMask, ms: float, rules: RuleSettings | None = None
) -> PairScore:
    """Compare one predicted mask with its label by the ChangeChat rules.

    Both masks are counted with the prediction's smallest object (GSD-aware for the classical mask), the rule
    the verifiers apply to it, so a count error measures the mask, not a size mismatch between the two counts.
    """
    rules = rules_for_source(pred.source, rules)
    if pred.class_mask.shape != truth.class_mask.shape:
        raise InputError(
            f"{name}: the {pred.source.provider} mask is {pred.class_mask.shape} but the label is "
            f"{truth.class_mask.shape} (rows, cols)"
        )
    pred_any = change_mask(pred.class_mask)
    true_any = change_mask(truth.class_mask)
    pred_cells = changed_cells(pred_any, rules)
    true_cells = changed_cells(true_any, rules)
    cells = confusion(
        np.array([c in pred_cells for c in CELL_IDS]),
        np.array([c in true_cells for c in CELL_IDS]),
    )
    per_category = {}
    if pred.source.categorical and truth.source.categorical:
        per_category = {
            c: confusion(change_mask(pred.class_mask, c), change_mask(truth.class_mask, c)) for c in CATEGORIES
        }
    true_count = count_objects(true_any, rules)
    pred_count = count_objects(pred_any, rules)
    return PairScore(
        name=name,
        pixels=confusion(pred_any, true_any),
        cells=cells,
        category_pixels=per_category,
        true_count=true_count,
        pred_count=pred_count,
        count_error=abs(pred_count - true_count),
        true_cells=true_cells,
        pred_cells=pred_cells,
        true_changed=bool(true_any.any()),
        pred_changed=bool(pred_any.any()),
        ms=ms,
        confidence=pred.source.confidence,
        categorical=pred.source.categorical,
    )


def summarise(
    provider: str, kind: str, dataset: str, pairs: Sequence[PairScore], settings: dict, label: str | None = None
) -> ProviderReport:
    """Pool per-pair scores: pixel and cell confusions are summed (micro), count error and time averaged."""
    if not pairs:
        raise ValueError("no pair scores to summarise")
    pixels = Confusion()
    cells = Confusion()
    categories: dict[str, Confusion] = {}
    for p in pairs:
        pixels = pixels.add(p.pixels)
        cells = cells.add(p.cells)
        for c, conf in p.category_pixels.items():
            categories[c] = categories.get(c, Confusion()).add(conf)
    times = [p.ms for p in pairs]
    return ProviderReport(
        label=label or provider,
        provider=provider,
        kind=kind,
        settings=settings,
        dataset=dataset,
        pairs=list(pairs),
        pixel_precision=pixels.precision,
        pixel_recall=pixels.recall,
        pixel_f1=pixels.f1,
        pixel_iou=pixels.iou,
        count_mae=statistics.fmean(p.count_error for p in pairs),
        grid_precision=cells.precision,
        grid_recall=cells.recall,
        grid_f1=cells.f1,
        binary_accuracy=statistics.fmean(float(p.binary_correct) for p in pairs),
        ms_mean=statistics.fmean(times),
        ms_median=statistics.median(times),
        mean_confidence=statistics.fmean(p.confidence for p in pairs),
        category_f1={c: conf.f1 for c, conf in categories.items()},
    )


def evaluate(
    root: str | Path,
    providers: Sequence[MaskProvider],
    *,
    label_kind: MaskKind = "auto",
    rules: RuleSettings | None = None,
    warmup: bool = True,
    progress: Callable[[str], None] | None = None,
    labels: Sequence[str] | None = None,
    gsd_m: float | None = None,
) -> EvalReport:
    """Run every provider on every labelled pair of ``root`` and score it against the labels.

    ``labels`` name the providers in the table (default: each provider's own name). ``gsd_m`` is the pixel size
    of pairs without a georeference (None: unknown, which the classical detector's confidence accounts for).
    """
    rules = rules or RuleSettings()
    if labels is not None and len(labels) != len(providers):
        raise ValueError(f"{len(labels)} labels for {len(providers)} providers")
    dataset = find_pairs(root)
    loaded: list[tuple[str, ImagePair, ChangeMask]] = []
    for files in dataset.pairs:
        pair = load_pair(files.t1, files.t2, gsd_m=gsd_m)
        truth = load_change_mask(files.label, shape=pair.shape, kind=label_kind)
        loaded.append((files.name, pair, truth))
    reports = []
    for index, provider in enumerate(providers):
        if warmup:
            provider.provide(loaded[0][1])
        scores = []
        first_source = None
        for name, pair, truth in loaded:
            started = time.perf_counter()
            mask = provider.provide(pair)
            ms = (time.perf_counter() - started) * 1e3
            first_source = first_source or mask.source
            scores.append(score_mask(name, mask, truth, ms, rules))
            if progress:
                progress(f"{provider.name}: {name} {ms:.0f} ms")
        assert first_source is not None
        reports.append(
            summarise(
                first_source.provider,
                first_source.kind,
                str(dataset.root),
                scores,
                _stable_settings(first_source.settings),
                labels[index] if labels is not None else getattr(provider, "name", None),
            )
        )
    return EvalReport(root=dataset.root, label_kind=label_kind, rules=rules, skipped=dataset.skipped, providers=reports)


def _stable_settings(settings: dict) -> dict:
    """The provider's settings without its per-pair measurements (thresholds found, separability, …)."""
    per_pair = {"threshold", "measured", "pair"}
    return {k: v for k, v in settings.items() if k not in per_pair}


TABLE_COLUMNS = (
    "provider",
    "kind",
    "pairs",
    "P",
    "R",
    "F1",
    "IoU",
    "count err",
    "grid F1",
    "binary acc",
    "ms/pair",
    "conf",
)


def table_rows(report: EvalReport) -> list[list[str]]:
    """One row per provider, formatted as the screen table and the README show them."""
    rows = []
    for p in report.providers:
        rows.append(
            [
                p.label,
                p.kind,
                str(len(p.pairs)),
                f"{p.pixel_precision:.3f}",
                f"{p.pixel_recall:.3f}",
                f"{p.pixel_f1:.3f}",
                f"{p.pixel_iou:.3f}",
                f"{p.count_mae:.2f}",
                f"{p.grid_f1:.3f}",
                f"{p.binary_accuracy:.2f}",
                f"{p.ms_mean:.1f}",
                f"{p.mean_confidence:.2f}",
            ]
        )
    return rows


def format_table(report: EvalReport, markdown: bool = False) -> str:
    """The summary table: aligned plain text for a terminal, or a Markdown table for notes and the README."""
    rows = table_rows(report)
    if markdown:
        lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(c)), *(len(r[i]) for r in rows)) for i, c in enumerate(TABLE_COLUMNS)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*TABLE_COLUMNS), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*row) for row in rows]
    return "\n".join(lines)


def format_pairs(report: EvalReport) -> str:
    """Per-pair detail: pixel F1, counts, cells and time, to see where a provider goes wrong."""
    lines = []
    for p in report.providers:
        lines.append(f"{p.label} ({p.provider}):")
        for s in p.pairs:
            lines.append(
                f"  {s.name:<24} F1 {s.pixels.f1:.3f}  count {s.pred_count:>3}/{s.true_count:<3} "
                f"cells {' '.join(s.pred_cells) or '-':<26} / {' '.join(s.true_cells) or '-':<26} "
                f"changed {'yes' if s.pred_changed else 'no '}/{'yes' if s.true_changed else 'no '} "
                f"{s.ms:6.1f} ms  conf {s.confidence:.2f}"
            )
    return "\n".join(lines)


def write_json(report: EvalReport, path: str | Path) -> Path:
    """The whole report, per-pair rows included."""
    return write_atomic(path, report.model_dump_json(indent=1))


CSV_FIELDS = (
    "label",
    "provider",
    "kind",
    "pair",
    "pixel_precision",
    "pixel_recall",
    "pixel_f1",
    "pixel_iou",
    "true_count",
    "pred_count",
    "count_error",
    "grid_precision",
    "grid_recall",
    "grid_f1",
    "true_changed",
    "pred_changed",
    "binary_correct",
    "ms",
    "confidence",
)


def write_csv(report: EvalReport, path: str | Path) -> Path:
    """One row per (provider, pair) and one ``ALL`` row per provider holding the pooled scores."""
    path = Path(path)
    with open_atomic(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for p in report.providers:
            for s in p.pairs:
                writer.writerow(
                    {
                        "label": p.label,
                        "provider": p.provider,
                        "kind": p.kind,
                        "pair": s.name,
                        "pixel_precision": _fmt(s.pixels.precision),
                        "pixel_recall": _fmt(s.pixels.recall),
                        "pixel_f1": _fmt(s.pixels.f1),
                        "pixel_iou": _fmt(s.pixels.iou),
                        "true_count": s.true_count,
                        "pred_count": s.pred_count,
                        "count_error": s.count_error,
                        "grid_precision": _fmt(s.cells.precision),
                        "grid_recall": _fmt(s.cells.recall),
                        "grid_f1": _fmt(s.cells.f1),
                        "true_changed": s.true_changed,
                        "pred_changed": s.pred_changed,
                        "binary_correct": s.binary_correct,
                        "ms": _fmt(s.ms, 2),
                        "confidence": _fmt(s.confidence, 3),
                    }
                )
            writer.writerow(
                {
                    "label": p.label,
                    "provider": p.provider,
                    "kind": p.kind,
                    "pair": "ALL",
                    "pixel_precision": _fmt(p.pixel_precision),
                    "pixel_recall": _fmt(p.pixel_recall),
                    "pixel_f1": _fmt(p.pixel_f1),
                    "pixel_iou": _fmt(p.pixel_iou),
                    "count_error": _fmt(p.count_mae, 3),
                    "grid_precision": _fmt(p.grid_precision),
                    "grid_recall": _fmt(p.grid_recall),
                    "grid_f1": _fmt(p.grid_f1),
                    "binary_correct": _fmt(p.binary_accuracy, 3),
                    "ms": _fmt(p.ms_mean, 2),
                    "confidence": _fmt(p.mean_confidence, 3),
                }
            )
    return path


def _fmt(value: float, digits: int = 4) -> str:
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"


def write_report(report: EvalReport, path: str | Path) -> Path:
    """Write JSON or CSV by the file's suffix (``.json`` / ``.csv``)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        return write_json(report, path)
    if path.suffix.lower() == ".csv":
        return write_csv(report, path)
    raise InputError(f"report file {path} must end in .json or .csv")


def report_to_dict(report: EvalReport) -> dict:
    """A JSON-ready dict (what ``write_json`` writes)."""
    return json.loads(report.model_dump_json())
