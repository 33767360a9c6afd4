"""``python -m deltavlm.evaluate``: the paper's tables for a checkpoint on ChangeChat test records.

It answers every test record with the model (the released test files, or the builder's), parses the
answers with :mod:`deltavlm.answers` (the parsers the agent uses), and scores them:

* captioning (paper Table 2): BLEU-1..4, METEOR, ROUGE-L, CIDEr-D with coco-caption conventions (PTB
  tokenisation, all five references), on all / changed / unchanged pairs;
* binary classification (Table 3): accuracy, precision, recall, F1 of the yes/no answers, and separately
  the release's caption-derived variant (a generated caption equal to a LEVIR-CC no-change sentence means
  "unchanged");
* quantification (Table 4): MAE and RMSE per category;
* localisation (Table 5): micro precision/recall/F1 and subset accuracy per category;
* open-ended QA and multi-turn dialogue (Table 6): language metrics against the single reference answer;
  dialog turns are answered with the reference history (teacher forcing) and scored per turn.

Ground truth for binary/count/grid comes from parsing the reference answer (it is rendered from the
rules, and the builder's tests check that the parse returns the rule values), so released files, which
carry no structured truth, are scored the same way. References that do not parse are left out and
counted. Outputs: ``OUT/tables.md``, ``OUT/metrics.json``, ``OUT/predictions.jsonl``.

Examples::

    python -m deltavlm.evaluate --checkpoint runs/full/checkpoints/step_00123456 \\
        --data data/changechat --image-root data/LEVIR-MCI/images --out eval/full
    python -m deltavlm.evaluate --predictions eval/full/predictions.jsonl --out eval/rescored
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from deltavlm.answers import parse_cells, parse_counts, parse_yes_no
from deltavlm.data.dataset import resolve_pair
from deltavlm.data.records import (
    AnyRecord,
    CaptionTestRecord,
    ChangeChatRecord,
    infer_task,
    is_release_no_change,
    read_records,
)
from deltavlm.data.source import read_rgb
from deltavlm.data.templates import instruction
from deltavlm.inference import AnswerRequest, DeltaVLMRunner
from deltavlm.metrics.captions import CaptionScores, Meteor15, TokenizerName, java_available, score_captions
from deltavlm.metrics.structured import (
    BinaryMetrics,
    CountMetrics,
    GridMetrics,
    binary_metrics,
    count_metrics,
    grid_metrics,
)

logger = logging.getLogger("deltavlm.evaluate")

EVAL_TASKS: tuple[str, ...] = ("caption", "binary", "count", "localisation", "open_qa", "dialog")


class Prediction(BaseModel):
    """One answered question: what was asked, the model's answer and the reference(s)."""

    task: str
    key: str
    turn: int = 0
    turn_task: str
    question: str
    references: list[str]
    answer: str
    changed: bool | None = None


class EvalReport(BaseModel):
    """Every table's numbers (fractions; the Markdown prints them ×100 where papers do)."""

    captioning: dict[str, CaptionScores] = Field(default_factory=dict)
    caption_binary: BinaryMetrics | None = None
    binary: BinaryMetrics | None = None
    count: CountMetrics | None = None
    localisation: GridMetrics | None = None
    open_qa: CaptionScores | None = None
    dialog: dict[str, Any] = Field(default_factory=dict)
    unparsed_references: dict[str, int] = Field(default_factory=dict)
    samples: dict[str, int] = Field(default_factory=dict)


# --- collecting questions ----------------------------------------------------------------------------


def find_test_files(paths: Sequence[str | Path]) -> list[Path]:
    """Record files: given files as they are; a folder contributes its ``*test*.json`` / ``*test*.jsonl``."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if "test" in p.name and p.suffix in (".json", ".jsonl"))
        else:
            files.append(path)
    if not files:
        raise FileNotFoundError(f"no test record files in {', '.join(map(str, paths))}")
    return files


def _images(record: AnyRecord) -> tuple[str, str]:
    if isinstance(record, CaptionTestRecord):
        return record.image_A, record.image_B
    return record.image[0], record.image[1]


class Question(BaseModel):
    """A question to put to the model, before it is answered."""

    task: str
    key: str
    turn: int
    turn_task: str
    images: tuple[str, str]
    question: str
    history: list[tuple[str, str]]
    references: list[str]
    changed: bool | None


_DIALOG_TURN_TASKS = ("binary", "count", "localisation", "caption")


def questions_from(
    records: Sequence[AnyRecord], tasks: Sequence[str] = EVAL_TASKS, limit: int | None = None
) -> list[Question]:
    """The questions to ask: one per caption pair (with all its references), one per turn of other records.

    Caption-test records carry their five references; caption *instruction* records (one per caption, as in
    train/val files) are grouped by image pair so that each pair is asked once against all its captions.
    ``limit`` keeps the first that many pairs/records per task.
    """
    out: list[Question] = []
    taken: dict[str, int] = defaultdict(int)
    caption_groups: dict[tuple[str, str], Question] = {}
    for record in records:
        task = record.task
        if task not in tasks:
            continue
        images = _images(record)
        if task == "caption" and images in caption_groups and isinstance(record, ChangeChatRecord):
            caption_groups[images].references.append(record.exchanges()[0][1])
            continue
        if limit is not None and taken[task] >= limit:
            continue
        taken[task] += 1
        if isinstance(record, CaptionTestRecord):
            exchanges, changed = [(instruction("caption"), "")], record.changed
            references = [list(record.captions)]
        else:
            exchanges = record.exchanges()
            changed = None if record.changeflag is None else bool(record.changeflag)
            references = [[answer] for _, answer in exchanges]
        for turn, (question, _) in enumerate(exchanges):
            turn_task = task
            if task == "dialog":
                turn_task = infer_task([(question, "")])
                if turn_task not in _DIALOG_TURN_TASKS:  # the dialog's own instructions: binary, count, caption
                    turn_task = ("binary", "count")[turn] if turn < 2 else "caption"
            item = Question(
                task=task,
                key=record.id if isinstance(record, ChangeChatRecord) else record.key,
                turn=turn,
                turn_task=turn_task,
                images=images,
                question=question,
                history=exchanges[:turn],
                references=references[turn],
                changed=changed,
            )
            out.append(item)
            if task == "caption":
                caption_groups[images] = item
    return out


def predict(
    runner: DeltaVLMRunner,
    questions: Sequence[Question],
    image_root: Path,
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
    **generation: Any,
) -> list[Prediction]:
    """Answer every question, ``batch_size`` at a time (pairs are encoded once thanks to the runner's cache)."""
    predictions: list[Prediction] = []
    images: dict[tuple[str, str], tuple[Any, Any]] = {}

    def load(pair: tuple[str, str]) -> tuple[Any, Any]:
        if pair not in images:
            a, b = resolve_pair(image_root, *pair)
            if len(images) > 4 * batch_size:
                images.pop(next(iter(images)))
            images[pair] = (read_rgb(a), read_rgb(b))
        return images[pair]

    for start in range(0, len(questions), batch_size):
        chunk = questions[start : start + batch_size]
        requests = [AnswerRequest(*load(q.images), q.question, q.history) for q in chunk]
        answers = runner.answer_batch(requests, **generation)
        for q, answer in zip(chunk, answers, strict=True):
            predictions.append(
                Prediction(
                    task=q.task,
                    key=q.key,
                    turn=q.turn,
                    turn_task=q.turn_task,
                    question=q.question,
                    references=q.references,
                    answer=answer,
                    changed=q.changed,
                )
            )
        if progress:
            progress(min(start + batch_size, len(questions)), len(questions))
    return predictions


# --- scoring ---------------------------------------------------------------------------------------------


def _truth_and_predictions(
    predictions: Sequence[Prediction], parse: Callable[[str], Any]
) -> tuple[list[Any], list[Any], int]:
    truths, preds, unparsed = [], [], 0
    for p in predictions:
        truth = parse(p.references[0]).value
        if truth is None:
            unparsed += 1
            continue
        truths.append(truth)
        preds.append(parse(p.answer).value)
    return truths, preds, unparsed


def _caption_scores(
    predictions: Sequence[Prediction], tokenizer: TokenizerName, meteor: Meteor15 | bool
) -> CaptionScores:
    keys = [f"{p.key}#{p.turn}" for p in predictions]
    return score_captions(
        {k: p.references for k, p in zip(keys, predictions, strict=True)},
        {k: p.answer for k, p in zip(keys, predictions, strict=True)},
        tokenizer=tokenizer,
        meteor=meteor,
    )


def _structured(report: EvalReport, name: str, predictions: Sequence[Prediction]) -> Any:
    parsers: dict[str, Callable[[str], Any]] = {
        "binary": parse_yes_no,
        "count": parse_counts,
        "localisation": parse_cells,
    }
    metrics: dict[str, Callable[[list[Any], list[Any]], Any]] = {
        "binary": binary_metrics,
        "count": count_metrics,
        "localisation": grid_metrics,
    }
    truths, preds, unparsed = _truth_and_predictions(predictions, parsers[name])
    if unparsed:
        report.unparsed_references[name] = report.unparsed_references.get(name, 0) + unparsed
    return metrics[name](truths, preds) if truths else None


def score_predictions(
    predictions: Sequence[Prediction], tokenizer: TokenizerName = "auto", meteor: bool | None = None
) -> EvalReport:
    """All tables from answered questions; ``meteor=None`` computes METEOR when Java is present."""
    use_meteor = java_available() if meteor is None else meteor
    language_tasks = {"caption", "open_qa"}
    needs_language = any(p.task in language_tasks or p.turn_task == "caption" for p in predictions)
    with Meteor15() if use_meteor and needs_language else contextlib.nullcontext(False) as scorer:
        return _score(predictions, tokenizer, scorer)


def _score(predictions: Sequence[Prediction], tokenizer: TokenizerName, meteor: Meteor15 | bool) -> EvalReport:
    by_task: dict[str, list[Prediction]] = defaultdict(list)
    for p in predictions:
        by_task[p.task].append(p)
    report = EvalReport(samples={task: len(items) for task, items in by_task.items()})
    captions = by_task.get("caption", [])
    if captions:
        report.captioning["all"] = _caption_scores(captions, tokenizer, meteor)
        for name, want in (("changed", True), ("unchanged", False)):
            subset = [p for p in captions if p.changed is want]
            if subset:
                report.captioning[name] = _caption_scores(subset, tokenizer, meteor)
        flagged = [p for p in captions if p.changed is not None]
        if flagged:
            report.caption_binary = binary_metrics(
                [bool(p.changed) for p in flagged], [not is_release_no_change(p.answer) for p in flagged]
            )
    if by_task.get("binary"):
        report.binary = _structured(report, "binary", by_task["binary"])
    if by_task.get("count"):
        report.count = _structured(report, "count", by_task["count"])
    if by_task.get("localisation"):
        report.localisation = _structured(report, "localisation", by_task["localisation"])
    if by_task.get("open_qa"):
        report.open_qa = _caption_scores(by_task["open_qa"], tokenizer, meteor)
    dialog = by_task.get("dialog", [])
    if dialog:
        for turn_task in ("binary", "count", "localisation"):
            items = [p for p in dialog if p.turn_task == turn_task]
            if items:
                report.dialog[turn_task] = _structured(report, turn_task, items)
        items = [p for p in dialog if p.turn_task == "caption"]
        if items:
            report.dialog["caption"] = _caption_scores(items, tokenizer, meteor)
    return report


# --- tables ------------------------------------------------------------------------------------------------


def _fmt(value: float | None, scale: float = 100.0, digits: int = 2) -> str:
    return "–" if value is None else f"{value * scale:.{digits}f}"


def _caption_rows(rows: dict[str, CaptionScores]) -> list[str]:
    header = "| Subset | n | BLEU-1 | BLEU-2 | BLEU-3 | BLEU-4 | METEOR | ROUGE-L | CIDEr |"
    lines = [header, "|---|---:|" + "---:|" * 7]
    for name, s in rows.items():
        values = [s.bleu_1, s.bleu_2, s.bleu_3, s.bleu_4, s.meteor, s.rouge_l, s.cider]
        lines.append(f"| {name} | {s.n} | " + " | ".join(_fmt(v) for v in values) + " |")
    return lines


def _binary_rows(rows: dict[str, BinaryMetrics]) -> list[str]:
    lines = ["| Answers | n | Accuracy | Precision | Recall | F1 | unparsed |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, m in rows.items():
        values = " | ".join(_fmt(v) for v in (m.accuracy, m.precision, m.recall, m.f1))
        lines.append(f"| {name} | {m.n} | {values} | {m.unparsed} |")
    return lines


def _count_rows(m: CountMetrics) -> list[str]:
    lines = ["| Category | MAE | RMSE |", "|---|---:|---:|"]
    for category in m.mae:
        lines.append(f"| {category} | {m.mae[category]:.3f} | {m.rmse[category]:.3f} |")
    lines.append(f"\n{m.n} samples, {m.unparsed} answers unparsed (scored as 0).")
    return lines


def _grid_rows(m: GridMetrics) -> list[str]:
    lines = ["| Category | Precision | Recall | F1 | Jaccard | Accuracy |", "|---|---:|---:|---:|---:|---:|"]
    for category, s in m.per_category.items():
        values = (s.precision, s.recall, s.f1, s.jaccard, s.accuracy)
        lines.append(f"| {category} | " + " | ".join(_fmt(v) for v in values) + " |")
    lines.append(f"\n{m.n} samples, {m.unparsed} answers unparsed (scored as no cells).")
    return lines


def render_tables(report: EvalReport, title: str = "DeltaVLM evaluation") -> str:
    """The report as Markdown, one section per paper table (scores ×100; MAE/RMSE as counts)."""
    out = [f"# {title}", ""]
    if report.captioning:
        out += ["## Table 2 — change captioning", "", *_caption_rows(report.captioning), ""]
    binary_rows = {
        k: v
        for k, v in (("binary instruction", report.binary), ("caption-derived (release)", report.caption_binary))
        if v
    }
    if binary_rows:
        out += ["## Table 3 — binary change classification", "", *_binary_rows(binary_rows), ""]
    if report.count:
        out += ["## Table 4 — change quantification", "", *_count_rows(report.count), ""]
    if report.localisation:
        out += [
            "## Table 5 — change localisation (3×3 grid: micro P/R/F1, sample Jaccard, subset accuracy)",
            "",
            *_grid_rows(report.localisation),
            "",
        ]
    if report.open_qa or report.dialog:
        out += ["## Table 6 — open-ended QA and multi-turn dialogue", ""]
        if report.open_qa:
            out += ["Open-ended QA (single reference):", "", *_caption_rows({"open QA": report.open_qa}), ""]
        for turn_task, value in report.dialog.items():
            out.append(f"Dialogue turns — {turn_task}:")
            out.append("")
            if isinstance(value, CaptionScores):
                out += _caption_rows({"caption turn": value})
            elif isinstance(value, BinaryMetrics):
                out += _binary_rows({"binary turn": value})
            elif isinstance(value, CountMetrics):
                out += _count_rows(value)
            elif isinstance(value, GridMetrics):
                out += _grid_rows(value)
            out.append("")
    if report.unparsed_references:
        out.append(f"References that did not parse (left out): {report.unparsed_references}")
    return "\n".join(out).rstrip() + "\n"


def write_outputs(report: EvalReport, predictions: Sequence[Prediction], out_dir: Path, title: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(report.model_dump_json(indent=2))
    (out_dir / "tables.md").write_text(render_tables(report, title))
    with (out_dir / "predictions.jsonl").open("w") as handle:
        for p in predictions:
            handle.write(p.model_dump_json() + "\n")


def evaluate_checkpoint(
    runner: DeltaVLMRunner,
    records: Sequence[AnyRecord],
    image_root: Path,
    tasks: Sequence[str] = EVAL_TASKS,
    limit: int | None = None,
    batch_size: int = 16,
    tokenizer: TokenizerName = "auto",
    meteor: bool | None = None,
    **generation: Any,
) -> tuple[EvalReport, list[Prediction]]:
    """Answer and score in one call (what the CLI and the learning proof run).

    Questions are asked grouped by image pair, so that the runner's feature cache encodes each pair once for
    all the tasks that ask about it.
    """
    questions = sorted(questions_from(records, tasks, limit), key=lambda q: q.images)

    def progress(done: int, total: int) -> None:
        if done == total or done % (batch_size * 20) == 0:
            logger.info("answered %d / %d", done, total)

    predictions = predict(runner, questions, image_root, batch_size, progress, **generation)
    return score_predictions(predictions, tokenizer, meteor), predictions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deltavlm.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="our checkpoint directory (or a weight file with --config)")
    parser.add_argument("--config", help="model config name/path (default: the checkpoint's own)")
    parser.add_argument("--data", nargs="*", default=[], help="test record files, or folders of *test*.json files")
    parser.add_argument("--image-root", type=Path, help="folder the records' image paths are relative to")
    parser.add_argument(
        "--predictions", type=Path, help="score an existing predictions.jsonl instead of running a model"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tasks", nargs="*", default=list(EVAL_TASKS), choices=EVAL_TASKS)
    parser.add_argument("--limit", type=int, help="at most this many records per task")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-beams", type=int, help="default: the model config's (the release: 5)")
    parser.add_argument("--max-new-tokens", type=int)
    parser.add_argument("--device")
    parser.add_argument("--tokenizer", choices=("auto", "ptb", "simple"), default="auto")
    parser.add_argument("--no-meteor", action="store_true", help="skip METEOR (it starts a JVM)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    started = time.perf_counter()
    if args.predictions:
        predictions = [
            Prediction.model_validate_json(line) for line in args.predictions.read_text().splitlines() if line.strip()
        ]
        report = score_predictions(predictions, args.tokenizer, meteor=False if args.no_meteor else None)
        title = f"Evaluation of {args.predictions}"
    else:
        if args.checkpoint is None or not args.data or args.image_root is None:
            parser.error("give --checkpoint, --data and --image-root (or --predictions)")
        if args.config:
            runner = DeltaVLMRunner.from_config(args.config, checkpoint=args.checkpoint, device=args.device)
        else:
            runner = DeltaVLMRunner.from_checkpoint(args.checkpoint, device=args.device)
        records: list[AnyRecord] = []
        for path in find_test_files(args.data):
            records += read_records(path)
        generation = {k: v for k, v in (("num_beams", args.num_beams), ("max_new_tokens", args.max_new_tokens)) if v}
        report, predictions = evaluate_checkpoint(
            runner,
            records,
            args.image_root,
            args.tasks,
            args.limit,
            args.batch_size,
            args.tokenizer,
            meteor=False if args.no_meteor else None,
            **generation,
        )
        title = f"Evaluation of {args.checkpoint}"
    write_outputs(report, predictions, args.out, title)
    print(render_tables(report, title))
    logger.info("done in %.1f s; wrote %s", time.perf_counter() - started, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
