"""``changeagent detector``: train the learned change detector on a CPU, adapt it to a few of a user's pairs, and
run its leave-one-dataset-out folds (registered through the ``changeagent.commands`` entry point).

torch is imported only when a sub-command runs, so ``changeagent --help`` stays fast without the training extra.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _require_training_extra() -> None:
    """A one-line error instead of an ImportError traceback when torch or onnx are not installed."""
    from importlib.util import find_spec

    from tools.raster import InputError

    missing = [name for name in ("torch", "onnx", "onnxruntime") if find_spec(name) is None]
    if missing:
        raise InputError(
            f"changeagent detector needs {', '.join(missing)}: install the training extra "
            "(pip install 'changeagent[train]', torch CPU first: see the Makefile's TORCH_PIN)"
        )


def _progress(total_s: float) -> Any:
    """A tqdm bar over the time budget showing the loss and validation F1 (plain lines without tqdm)."""
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    bar = tqdm(total=round(total_s), unit="s", desc="training", file=sys.stderr) if tqdm else None
    state = {"shown": 0, "last_line": 0.0}

    def report(info: dict[str, Any]) -> None:
        loss = "–" if info["loss"] is None else f"{info['loss']:.3f}"
        f1 = "–" if info["val_f1"] is None else f"{info['val_f1']:.3f}"
        if bar is not None:
            now = min(round(info["elapsed"]), bar.total)
            bar.update(now - state["shown"])
            state["shown"] = now
            bar.set_postfix_str(f"step {info['step']} loss {loss} val F1 {f1}", refresh=False)
        elif info["elapsed"] - state["last_line"] >= 10:
            state["last_line"] = info["elapsed"]
            print(f"{info['elapsed']:.0f}/{total_s:.0f} s step {info['step']} loss {loss} val F1 {f1}", file=sys.stderr)

    report.close = bar.close if bar is not None else (lambda: None)  # type: ignore[attr-defined]
    return report


def _options(args: argparse.Namespace) -> Any:
    from tools.detector.train import TrainOptions

    return TrainOptions(
        data=args.data,
        out=args.out,
        minutes=args.minutes,
        seed=args.seed,
        init=args.init,
        hold_out=args.hold_out or [],
        crop=args.crop,
        batch=args.batch,
        lr=args.lr if args.lr is not None else (3e-4 if args.init else 1e-3),
        threads=args.threads,
        restart=args.restart,
    )


def cmd_train(args: argparse.Namespace) -> int:
    _require_training_extra()
    from tools.detector.train import train

    options = _options(args)
    report = _progress(options.minutes * 60)
    try:
        metrics = train(options, report=report)
    finally:
        report.close()
    v = metrics["validation"]
    print(
        f"wrote {args.out / 'model.onnx'} (+ sidecar, MODEL_CARD.md, metrics.json): validation pixel F1 "
        f"{v['pixel_f1']:.3f}, binary accuracy {v['binary_accuracy']:.3f}, threshold {v['threshold']:.2f} "
        f"(validation drawn from the training sets)"
    )
    return 0


def cmd_lodo(args: argparse.Namespace) -> int:
    _require_training_extra()
    from tools.detector.lodo import default_decision, format_fold_table, run_folds

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    rows = run_folds(
        args.data,
        args.out,
        minutes=args.minutes,
        seed=args.seed,
        only=args.only,
        write_calibration=args.write_calibration,
        log=log,
    )
    print(format_fold_table(rows))
    decision = default_decision(rows)
    print(json.dumps(decision.model_dump(), indent=1, ensure_ascii=False))
    return 0


def cmd_fewshot(args: argparse.Namespace) -> int:
    _require_training_extra()
    from tools.detector.fewshot import measure_few_shot

    result = measure_few_shot(
        args.init, args.pairs, args.out, k=args.k, minutes=args.minutes, seed=args.seed, threads=args.threads
    )
    print(json.dumps(result, indent=1))
    return 0


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-clock training budget (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the crops, pastes and nuisances")
    parser.add_argument("--crop", type=int, default=128, help="training crop side, a multiple of 16")
    parser.add_argument("--batch", type=int, default=8, help="crops per step")
    parser.add_argument("--lr", type=float, help="peak learning rate (default 1e-3; 3e-4 with --init)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``detector train``, ``detector lodo`` and ``detector fewshot`` to ``changeagent``."""
    parser = sub.add_parser("detector", help="train and test the learned change detector (CPU)")
    commands = parser.add_subparsers(dest="detector_command", required=True)

    train_p = commands.add_parser(
        "train",
        help="train (or resume, or with --init adapt) the detector; writes model.onnx, sidecar and model card",
        description="DATA is a data root with levircd/, dsifn/, sztaki/, oscd/, egybcd/ or a folder with A/, B/ "
        "and label/. Running again with the same --out resumes from its checkpoint.",
    )
    train_p.add_argument("data", type=Path, nargs="+", metavar="DATA")
    train_p.add_argument("--out", type=Path, required=True, help="folder for model.onnx, sidecar, card, checkpoint")
    train_p.add_argument("--init", type=Path, help="start from an earlier run's folder (few-shot adaptation)")
    train_p.add_argument("--hold-out", action="append", metavar="NAME", help="leave a dataset out (repeatable)")
    train_p.add_argument("--restart", action="store_true", help="ignore a checkpoint in --out")
    _train_arguments(train_p)
    train_p.set_defaults(func=cmd_train)

    lodo_p = commands.add_parser(
        "lodo",
        help="train on four datasets and test on the fifth, for each, then write the calibration",
        description="Each fold goes to OUT/<held-out>/ with model.onnx, sidecar, metrics.json (held-out scores).",
    )
    lodo_p.add_argument("data", type=Path, metavar="DATA_ROOT")
    lodo_p.add_argument("--out", type=Path, default=Path("out/detector/lodo"))
    lodo_p.add_argument("--minutes", type=float, default=6.0, help="training minutes per fold (default 6)")
    lodo_p.add_argument("--seed", type=int, default=0)
    lodo_p.add_argument("--only", action="append", metavar="NAME", help="run only these folds (repeatable)")
    lodo_p.add_argument(
        "--write-calibration", action="store_true", help="store the held-out confidence per GSD band and sensor"
    )
    lodo_p.set_defaults(func=cmd_lodo)

    few_p = commands.add_parser(
        "fewshot",
        help="measure few-shot adaptation: fine-tune --init on k pairs of a folder, score before/after on the rest",
    )
    few_p.add_argument("pairs", type=Path, help="folder with A/, B/, label/ (a dataset the base model never saw)")
    few_p.add_argument("--init", type=Path, required=True, help="the base detector's folder")
    few_p.add_argument("--out", type=Path, required=True)
    few_p.add_argument("--k", type=int, default=3, help="labelled pairs to adapt on (default 3)")
    few_p.add_argument("--minutes", type=float, default=4.0, help="fine-tuning budget (default 4)")
    few_p.add_argument("--seed", type=int, default=0)
    few_p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1)")
    few_p.set_defaults(func=cmd_fewshot)
