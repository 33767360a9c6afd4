"""Scoring providers on a LEVIR-style folder: the metrics, the reports, the CLI, and bad folders."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.cli.masks import add_eval_masks_parser
from deltavlm.rules import ChangeClass
from tools.mask_eval import (
    Confusion,
    confusion,
    evaluate,
    find_pairs,
    format_table,
    write_report,
)
from tools.masks import ChangeMask, MaskSource, load_change_mask
from tools.pairs import ImagePair
from tools.provider_spec import build_provider
from tools.raster import InputError

SHAPE = (60, 90)


def _folder(root: Path) -> Path:
    """Three labelled pairs (one unchanged) and one pair without a label."""
    rng = np.random.default_rng(0)
    for sub in ("A", "B", "label"):
        (root / sub).mkdir(parents=True)
    boxes = {"p1": [(5, 5, 20, 25), (30, 50, 25, 30)], "p2": [(10, 60, 40, 20)], "p3": []}
    for name, rects in boxes.items():
        t1 = rng.integers(0, 255, (*SHAPE, 3), dtype=np.uint8)
        t2 = t1.copy()
        label = np.zeros(SHAPE, np.uint8)
        for y, x, h, w in rects:
            t2[y : y + h, x : x + w] = 200
            label[y : y + h, x : x + w] = 255
        cv2.imwrite(str(root / "A" / f"{name}.png"), t1)
        cv2.imwrite(str(root / "B" / f"{name}.png"), t2)
        cv2.imwrite(str(root / "label" / f"{name}.png"), label)
    cv2.imwrite(str(root / "A" / "orphan.png"), np.zeros((*SHAPE, 3), np.uint8))
    return root


class LabelProvider:
    """Returns the pair's own label: the perfect provider."""

    name = "oracle"

    def __init__(self, root: Path) -> None:
        self.root = root

    def provide(self, pair: ImagePair) -> ChangeMask:
        return load_change_mask(self.root / "label" / f"{pair.t1_path.stem}.png", shape=pair.shape)


class ConstantProvider:
    """Marks everything (or nothing) changed."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.name = f"constant-{value}"

    def provide(self, pair: ImagePair) -> ChangeMask:
        return ChangeMask(
            class_mask=np.full(pair.shape, self.value, np.uint8),
            source=MaskSource(provider=self.name, kind="classical", categorical=False, confidence=0.1),
        )


def test_confusion_and_empty_conventions():
    pred = np.array([[1, 1, 0, 0]], bool)
    truth = np.array([[1, 0, 1, 0]], bool)
    c = confusion(pred, truth)
    assert (c.tp, c.fp, c.fn, c.tn) == (1, 1, 1, 1)
    assert c.precision == c.recall == c.f1 == 0.5 and c.iou == pytest.approx(1 / 3)
    assert Confusion().f1 == 1.0  # nothing expected, nothing predicted: a correct "no change"


def test_find_pairs_lists_what_it_skips(tmp_path):
    dataset = find_pairs(_folder(tmp_path))
    assert [p.name for p in dataset.pairs] == ["p1", "p2", "p3"]
    assert dataset.skipped == {"orphan": "no B/ or label/ file"}
    with pytest.raises(InputError, match=r"lacks A/, B/, label/"):
        find_pairs(tmp_path / "A")


def test_oracle_and_constant_providers_bracket_the_scores(tmp_path):
    root = _folder(tmp_path)
    report = evaluate(root, [LabelProvider(root), ConstantProvider(0), ConstantProvider(int(ChangeClass.CHANGE))])
    oracle, nothing, everything = report.providers
    assert oracle.pixel_f1 == oracle.grid_f1 == oracle.binary_accuracy == 1.0 and oracle.count_mae == 0
    assert oracle.pairs[0].true_count == 2 and oracle.pairs[0].true_cells == oracle.pairs[0].pred_cells
    assert nothing.pixel_f1 == 0.0 and nothing.grid_recall == 0.0
    assert nothing.binary_accuracy == pytest.approx(1 / 3)  # right only on the unchanged pair
    assert everything.pixel_recall == 1.0 and everything.binary_accuracy == pytest.approx(2 / 3)
    assert everything.pairs[2].pred_cells and not everything.pairs[2].true_cells
    assert all(p.ms >= 0 for p in oracle.pairs)
    table = format_table(report)
    assert "oracle" in table and "constant-3" in table and "grid F1" in table
    assert format_table(report, markdown=True).startswith("| provider | kind |")


def test_reports_are_written_as_json_and_csv(tmp_path):
    root = _folder(tmp_path / "data")
    report = evaluate(root, [LabelProvider(root)], labels=["label copy"])
    saved = json.loads(write_report(report, tmp_path / "r.json").read_text())
    assert saved["providers"][0]["label"] == "label copy" and len(saved["providers"][0]["pairs"]) == 3
    rows = list(csv.DictReader(write_report(report, tmp_path / "r.csv").open()))
    assert [r["pair"] for r in rows] == ["p1", "p2", "p3", "ALL"] and rows[-1]["grid_f1"] == "1.0000"
    with pytest.raises(InputError, match=r"r\.txt must end in \.json or \.csv"):
        write_report(report, tmp_path / "r.txt")


def test_provider_specs():
    classical = build_provider("classical:threshold=0.9,matching=quantile")
    assert classical.settings.threshold == 0.9 and classical.settings.matching == "quantile"
    with pytest.raises(InputError, match=r"threshold"):
        build_provider("classical:threshold=lots")
    with pytest.raises(InputError, match=r"not key=value"):
        build_provider("classical:fast")
    with pytest.raises(InputError, match=r"unknown mask provider 'magic'"):
        build_provider("magic:x")
    with pytest.raises(InputError, match=r"needs a path"):
        build_provider("onnx:")
    with pytest.raises(InputError, match=r"not found: .*nowhere\.onnx"):
        build_provider("onnx:nowhere.onnx")


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="changeagent")
    add_eval_masks_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_eval_masks_command(tmp_path, capsys):
    root = _folder(tmp_path / "data")
    out = tmp_path / "out"
    rc = _cli(["eval-masks", str(root), "--pairs", "--json", str(out / "r.json"), "--csv", str(out / "r.csv")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "3 labelled pairs" in text and "skipped orphan" in text and "classical" in text
    assert (out / "r.json").exists() and (out / "r.csv").exists()


def test_eval_masks_on_real_pairs(shared_data, tmp_path, capsys):
    rc = _cli(["eval-masks", str(shared_data / "levircd"), "--markdown", "--json", str(tmp_path / "levir.json")])
    assert rc == 0
    assert "skipped test_113_0256: no label/ file" in capsys.readouterr().out
    report = json.loads((tmp_path / "levir.json").read_text())
    negative = next(p for p in report["providers"][0]["pairs"] if p["name"] == "train_386_0512_0768")
    assert negative["true_changed"] is False
    assert report["providers"][0]["kind"] == "classical" and 0 < negative["confidence"] < 1


def test_eval_masks_runs_the_leave_one_dataset_out_protocol(tmp_path, monkeypatch, capsys):
    """``changeagent eval-masks ROOT --lodo`` runs tools.lodo's protocol and prints its table (tiny grid here)."""
    import functools
    import json

    import tools.lodo
    from agent.cli.main import main
    from tests.tools.test_lodo import TINY_GRID, _dataset

    _dataset(tmp_path, "levircd", 1)
    _dataset(tmp_path, "dsifn", 2)
    real = tools.lodo.run_leave_one_dataset_out
    monkeypatch.setattr(tools.lodo, "run_leave_one_dataset_out", functools.partial(real, grid=TINY_GRID, processes=1))
    out = tmp_path / "lodo.json"
    assert main(["eval-masks", str(tmp_path), "--lodo", "--markdown", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| held out |" in printed and "LEVIR-CD 0.5 m" in printed
    assert [f["held_out"] for f in json.loads(out.read_text())["folds"]] == ["levircd", "dsifn"]
