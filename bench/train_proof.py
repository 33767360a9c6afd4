"""Proof that training learns: the tiny DeltaVLM on synthetic ChangeChat data, on a CPU, in minutes.

Run: ``.venv/bin/python bench/train_proof.py [--minutes 4] [--train-pairs 400] [--test-pairs 100]``.

1. writes a synthetic LEVIR-MCI (``deltavlm.synthetic.write_levir_mci``) and builds ChangeChat records from
   it with the real builder (no chat model, so no open QA);
2. scores the untrained model (same config, same seed) on the held-out test pairs: binary, count, grid
   with the evaluator's parsers and metrics;
3. trains with ``deltavlm.train`` (``deltavlm/configs/train_tiny.yaml``) for the time budget;
4. scores the trained checkpoint the same way, and prints both next to a trivial baseline that always
   answers "no" / zero objects / no cells;
5. when the config trains the mask head, also scores the trained head's change maps passed through the
   verifiers' rules (``deltavlm.rules.summarize``): what the agent gets from ``--mask-provider deltavlm:…``.

The test pairs are generated from seeds the training pairs never use. ``--min-binary-f1`` makes the
command fail when the trained model falls below it (the slow test uses a lower bar than the 0.9 target).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

from deltavlm.data.builder import BuilderConfig, build_changechat
from deltavlm.data.records import AnyRecord, read_records
from deltavlm.evaluate import EvalReport, Prediction, evaluate_checkpoint, score_predictions
from deltavlm.inference import DeltaVLMRunner
from deltavlm.metrics.structured import binary_metrics, count_metrics, grid_metrics
from deltavlm.modeling.model import DeltaVLM
from deltavlm.rules import summarize
from deltavlm.synthetic import write_levir_mci
from deltavlm.tokenizers import load_tokenizers
from deltavlm.train import load_train_config, model_config_for, train
from tools.masks import load_change_mask
from tools.pairs import load_pair

CONFIG = Path(__file__).resolve().parents[1] / "deltavlm" / "configs" / "train_tiny.yaml"
EVAL_TASKS = ("binary", "count", "localisation")


def _row(report: EvalReport) -> dict[str, float]:
    row: dict[str, float] = {}
    if report.binary:
        row |= {"binary acc": report.binary.accuracy, "binary F1": report.binary.f1}
    if report.count:
        row |= {f"count MAE {c}": v for c, v in report.count.mae.items() if c != "all"}
        row |= {f"count RMSE {c}": v for c, v in report.count.rmse.items() if c != "all"}
    if report.localisation:
        for c, s in report.localisation.per_category.items():
            row |= {f"grid F1 {c}": s.f1, f"grid acc {c}": s.accuracy}
    if "all" in report.captioning:
        caps = report.captioning["all"]
        row |= {"caption BLEU-4": caps.bleu_4, "caption CIDEr": caps.cider}
    return row


def _mask_head_report(runner: DeltaVLMRunner, split: Path) -> EvalReport:
    """Binary, counts and grid from the trained mask head's maps through the rules, against the label maps."""
    truths, predicted = [], []
    for before in sorted((split / "A").glob("*.png")):
        pair = load_pair(before, split / "B" / before.name)
        truths.append(summarize(load_change_mask(split / "label" / before.name, kind="levir-mci").class_mask))
        predicted.append(summarize(runner.predict_change_mask(pair.t1, pair.t2)))
    return EvalReport(
        binary=binary_metrics([t.changed for t in truths], [p.changed for p in predicted]),
        count=count_metrics([t.counts for t in truths], [p.counts for p in predicted]),
        localisation=grid_metrics([t.category_cells for t in truths], [p.category_cells for p in predicted]),
    )


def _trivial(predictions: list[Prediction]) -> EvalReport:
    """The same questions answered "no" / "no new roads or buildings" / "roads [] buildings []"."""
    fixed = {"binary": "no", "count": "no new roads or buildings", "localisation": "roads [] buildings []"}
    trivial = [p.model_copy(update={"answer": fixed[p.task]}) for p in predictions if p.task in fixed]
    return score_predictions(trivial)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, help="training time cap (default: the config's max_minutes)")
    parser.add_argument("--train-pairs", type=int, default=1500)
    parser.add_argument("--test-pairs", type=int, default=100)
    parser.add_argument("--size", type=int, default=96, help="synthetic tile side (px)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--answer-style", choices=("canonical", "varied"), default="canonical")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest at tiny sizes)")
    parser.add_argument("--work", type=Path, help="keep data and checkpoints here (default: a temp folder)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="train config override")
    parser.add_argument("--min-binary-f1", type=float, default=None)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        started = time.perf_counter()
        source, built = work / "source", work / "changechat"
        write_levir_mci(source, {"train": args.train_pairs, "test": args.test_pairs}, seed=args.seed, size=args.size)
        report = build_changechat(
            BuilderConfig(source=source, out_dir=built, seed=args.seed, answer_style=args.answer_style)
        )
        print(report.table1())
        data_s = time.perf_counter() - started
        images = source / "images"
        test_records: list[AnyRecord] = []
        for name in (
            "changechat_test.json",
            "changechat_test_binary.json",
            "changechat_test_count.json",
            "changechat_test_loc.json",
        ):
            test_records += read_records(built / name)
        config = load_train_config(
            CONFIG,
            [
                f"data.train=[{built / 'changechat_train.json'}]",
                f"data.image_root={images}",
                f"output_dir={work / 'run'}",
                f"seed={args.seed}",
                "resume=false",
                *([f"max_minutes={args.minutes}"] if args.minutes else []),
                *args.overrides,
            ],
        )
        model_cfg = model_config_for(config)
        generation = {"num_beams": 1, "max_new_tokens": 40}
        untrained = DeltaVLMRunner(DeltaVLM.from_config(model_cfg), load_tokenizers(model_cfg))
        t0 = time.perf_counter()
        before, before_preds = evaluate_checkpoint(untrained, test_records, images, EVAL_TASKS, **generation)
        eval_s = time.perf_counter() - t0
        result = train(config)
        assert result.checkpoint is not None
        trained = DeltaVLMRunner.from_checkpoint(result.checkpoint)
        after, _ = evaluate_checkpoint(trained, test_records, images, EVAL_TASKS, **generation)
        baseline = _trivial(before_preds)
        rows = {"untrained": _row(before), "trivial": _row(baseline), "trained": _row(after)}
        if trained.mask_enabled:
            rows["mask head+rules"] = _row(_mask_head_report(trained, images / "test"))
    names = list(rows["trained"])
    print(f"\nheld-out synthetic test pairs: {args.test_pairs}; train pairs: {args.train_pairs} ({args.size}px tiles)")
    print(
        f"training: {result.steps} steps, {result.seconds:.0f} s; "
        f"data build {data_s:.0f} s; one evaluation {eval_s:.0f} s"
    )
    print("untrained/trained: the model's text answers; mask head+rules: the trained head's maps, counted by the rules")
    print(f"{'metric':<22}" + "".join(f"{column:>17}" for column in rows))
    for name in names:
        cells = [rows[k].get(name) for k in rows]
        print(f"{name:<22}" + "".join(f"{v:>17.3f}" if v is not None else f"{'–':>17}" for v in cells))
    if args.json:
        args.json.write_text(
            json.dumps({"rows": rows, "steps": result.steps, "train_seconds": result.seconds}, indent=2)
        )
    if args.min_binary_f1 is not None and rows["trained"].get("binary F1", 0.0) < args.min_binary_f1:
        print(f"FAIL: binary F1 {rows['trained'].get('binary F1', 0.0):.3f} < {args.min_binary_f1}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
