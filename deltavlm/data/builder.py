"""The ChangeChat builder: LEVIR-CC captions + LEVIR-MCI change maps → ChangeChat-105k-style records.

Per source pair (paper §3, Table 1):

* captioning: the fixed caption instruction; in train/val one record per caption (5 per pair, 34,075 for
  LEVIR-CC's 6,815 train pairs), in test one caption-test record with the five references (1,929);
* binary classification, quantification, localisation: one record each per pair, answers rendered from
  :func:`deltavlm.rules.summarize` on the pair's change map (the verifiers' rule code; no second
  implementation here);
* multi-turn dialogue: one per pair, easy → hard: binary, then objects and counts, then the caption;
* open-ended QA (and, optionally, generated conversations): from a LangChain chat model through
  :mod:`deltavlm.data.openqa`; skipped, and reported as skipped, when no model is configured.

Splits follow the source's. Output files follow the release's names: ``changechat_train.json`` (every
type), ``changechat_val.json``, and for test ``changechat_test.json`` (caption-test records) plus
``changechat_test_{binary,count,loc,dialog,open}.json``. ``build_report.json`` and ``table1.md`` give the
per-type counts as Table 1 does.

Run: ``python -m deltavlm.data.build --source DIR --out DIR`` (see ``--help``; ``--synthetic`` writes a
synthetic LEVIR-MCI first, so the whole pipeline runs on a CPU without the real data).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field

from deltavlm import rules
from deltavlm.data import templates
from deltavlm.data.openqa import (
    GenerationStats,
    GroundingFacts,
    OpenQAConfig,
    OpenQAGenerator,
    grounding_facts,
    load_chat_model,
)
from deltavlm.data.records import (
    AnyRecord,
    CaptionTestRecord,
    ChangeChatRecord,
    Turn,
    is_release_no_change,
    write_records,
)
from deltavlm.data.source import SourceDataset, SourcePair, read_class_mask, read_source
from deltavlm.data.templates import TASK_TITLES, AnswerStyle, InstructionSet
from deltavlm.rules import LEVIR_MCI_LABEL_VALUES, ChangeClass, RuleSettings

logger = logging.getLogger(__name__)

TEST_FILE_SUFFIX: dict[str, str] = {
    "caption": "",
    "binary": "_binary",
    "count": "_count",
    "localisation": "_loc",
    "dialog": "_dialog",
    "open_qa": "_open",
    "open_dialog": "_open_dialog",
}
"""Test files per type, as the release names them (``changechat_105k_test_binary.json`` …)."""

REPORT_TASKS: tuple[str, ...] = (*templates.TASKS, "open_dialog")


class BuilderConfig(BaseModel):
    """What to build, how to phrase it, and where to write it."""

    source: Path
    out_dir: Path
    captions_file: Path | None = None
    splits: list[str] | None = Field(None, description="Source splits to build; None = all present.")
    tasks: list[str] = Field(default_factory=lambda: list(templates.TASKS))
    prefix: str = "changechat"
    format: Literal["json", "jsonl"] = "json"
    seed: int = 0
    answer_style: AnswerStyle = Field("varied", description="'canonical' always uses each task's first template.")
    instructions: InstructionSet = Field("release", description="Fixed instruction wording: release or paper.")
    category_count_questions: bool = Field(
        False, description="Add per-category count questions ('How many buildings have changed?')."
    )
    label_values: dict[int, ChangeClass] = Field(default_factory=lambda: dict(LEVIR_MCI_LABEL_VALUES))
    rules: RuleSettings = RuleSettings()
    openqa: OpenQAConfig = OpenQAConfig()
    workers: int = Field(1, ge=1, description="Processes that read and analyse change maps.")
    require_images: bool = Field(True, description="False builds caption records from a captions file alone.")


class PairAnalysis(BaseModel):
    """The rules' verdict on one pair's change map (None fields when the pair has no map)."""

    summary: rules.ChangeSummary | None = None
    objects: list[rules.ChangeObject] = Field(default_factory=list)
    size: tuple[int, int] | None = None


class BuildReport(BaseModel):
    """Per-type, per-split record counts (paper Table 1) and everything the build skipped or doubted."""

    counts: dict[str, dict[str, int]]
    pairs: dict[str, int]
    pairs_without_map: dict[str, int]
    map_caption_disagreements: int = Field(
        0, description="Pairs whose map says changed/unchanged while all five captions say the opposite."
    )
    skipped: dict[str, str] = Field(default_factory=dict)
    openqa: GenerationStats | None = None
    files: list[str] = Field(default_factory=list)

    def table1(self) -> str:
        """Markdown in the shape of the paper's Table 1 (type, then count per split, then total)."""
        splits = [s for s in ("train", "val", "test") if s in self.pairs] + sorted(
            set(self.pairs) - {"train", "val", "test"}
        )
        lines = [
            "| Instruction type | " + " | ".join(s.capitalize() for s in splits) + " |",
            "|---|" + "---:|" * len(splits),
        ]
        for task in REPORT_TASKS:
            if task == "open_dialog" and not any(self.counts.get(task, {}).values()):
                continue
            row = self.counts.get(task, {})
            lines.append(f"| {TASK_TITLES[task]} | " + " | ".join(f"{row.get(s, 0):,}" for s in splits) + " |")
        totals = [sum(self.counts.get(t, {}).get(s, 0) for t in REPORT_TASKS) for s in splits]
        lines.append("| **Total** | " + " | ".join(f"**{n:,}**" for n in totals) + " |")
        notes = [f"- {task}: skipped — {why}" for task, why in self.skipped.items()]
        return "\n".join(lines + (["", *notes] if notes else []))


def pair_rng(seed: int, pair: SourcePair) -> np.random.Generator:
    """A generator per pair, stable across runs and processes (template choices do not shift when pairs move)."""
    return np.random.default_rng([seed, zlib.crc32(f"{pair.split}/{pair.name}".encode())])


def analyse_pair(pair: SourcePair, label_values: dict[int, ChangeClass], settings: RuleSettings) -> PairAnalysis:
    """Apply the shared rules to the pair's change map."""
    if pair.label is None:
        return PairAnalysis()
    class_mask = read_class_mask(pair.label, label_values)
    summary = rules.summarize(class_mask, settings)
    objects = [
        obj
        for category in rules.CATEGORIES
        for obj in rules.find_objects(rules.change_mask(class_mask, category), category, settings)
    ]
    return PairAnalysis(summary=summary, objects=objects, size=class_mask.shape[:2])


def _analyse_star(args: tuple[SourcePair, dict[int, ChangeClass], RuleSettings]) -> PairAnalysis:
    return analyse_pair(*args)


def _stem(name: str) -> str:
    return Path(name).stem


def _record(
    pair: SourcePair, images_root: Path, task: str, key: str, exchanges: Sequence[tuple[str, str]], flag: int | None
) -> ChangeChatRecord:
    turns: list[Turn] = []
    for index, (question, answer) in enumerate(exchanges):
        value = templates.first_turn(question) if index == 0 else question
        turns += [Turn(speaker="human", value=value), Turn(speaker="gpt", value=answer)]
    return ChangeChatRecord(
        id=f"{pair.split}_{key}_{_stem(pair.name)}",
        image=pair.rel_images(images_root),
        changeflag=flag,
        conversations=turns,
        type=task,
        split=pair.split,
        label=pair.rel_label(images_root),
    )


def structured_records(
    pair: SourcePair, analysis: PairAnalysis, images_root: Path, config: BuilderConfig
) -> dict[str, list[AnyRecord]]:
    """Caption, binary, count, localisation and dialog records of one pair (no chat model involved)."""
    rng = pair_rng(config.seed, pair)
    style, wording = config.answer_style, config.instructions
    out: dict[str, list[AnyRecord]] = {task: [] for task in config.tasks}
    summary = analysis.summary
    flag = int(summary.changed) if summary is not None else pair.changeflag
    if "caption" in config.tasks and pair.captions:
        if pair.split == "test":
            out["caption"].append(
                CaptionTestRecord(
                    image_A=pair.rel_images(images_root)[0],
                    image_B=pair.rel_images(images_root)[1],
                    captions=list(pair.captions),
                    changeflag=flag,
                    id=f"test_caption_{_stem(pair.name)}",
                    split=pair.split,
                    label=pair.rel_label(images_root),
                )
            )
        else:
            question = templates.instruction("caption", wording)
            for k, caption in enumerate(pair.captions):
                out["caption"].append(
                    _record(pair, images_root, "caption", f"caption{k}", [(question, caption.strip())], flag)
                )
    if summary is None:
        return out
    binary = templates.binary_answer(summary.changed, rng, style)
    counts = templates.count_answer(summary.counts, rng, style)
    if "binary" in config.tasks:
        out["binary"].append(
            _record(pair, images_root, "binary", "binary", [(templates.instruction("binary", wording), binary)], flag)
        )
    if "count" in config.tasks:
        out["count"].append(
            _record(pair, images_root, "count", "count", [(templates.instruction("count"), counts)], flag)
        )
        if config.category_count_questions:
            for category in rules.CATEGORIES:
                exchange = (
                    templates.category_count_question(category, rng, style),
                    templates.category_count_answer(category, summary.counts[category], rng, style),
                )
                out["count"].append(_record(pair, images_root, "count", f"count_{category}", [exchange], flag))
    if "localisation" in config.tasks:
        answer = templates.localisation_answer(summary.category_cells, rng, style)
        out["localisation"].append(
            _record(pair, images_root, "localisation", "loc", [(templates.instruction("localisation"), answer)], flag)
        )
    if "dialog" in config.tasks and pair.captions:
        caption = templates.caption_answer(pair.captions, int(rng.integers(len(pair.captions))))
        exchanges = [
            (templates.instruction("binary", wording), binary),
            (templates.instruction("dialog_count"), counts),
            (templates.instruction("dialog_caption"), caption),
        ]
        out["dialog"].append(_record(pair, images_root, "dialog", "dialog", exchanges, flag))
    return out


def _captions_say_unchanged(captions: Sequence[str]) -> bool:
    return bool(captions) and all(is_release_no_change(c) for c in captions)


def _analyses(dataset: SourceDataset, config: BuilderConfig) -> list[PairAnalysis]:
    jobs = [(p, config.label_values, config.rules) for p in dataset.pairs]
    if config.workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(config.workers) as pool:
            return list(pool.map(_analyse_star, jobs, chunksize=32))
    results = []
    for index, job in enumerate(jobs):
        results.append(_analyse_star(job))
        if (index + 1) % 1000 == 0:
            logger.info("analysed %d / %d change maps", index + 1, len(jobs))
    return results


def _open_records(
    pairs: Sequence[SourcePair],
    facts: Sequence[GroundingFacts],
    generator: OpenQAGenerator,
    images_root: Path,
    progress: Callable[[int, int], None] | None,
    chunk: int = 64,
) -> dict[str, list[AnyRecord]]:
    out: dict[str, list[AnyRecord]] = {"open_qa": [], "open_dialog": []}
    for start in range(0, len(pairs), chunk):
        batch_pairs, batch_facts = pairs[start : start + chunk], facts[start : start + chunk]
        for pair, fact, generated in zip(batch_pairs, batch_facts, generator.generate(batch_facts), strict=True):
            flag = int(fact.changed)
            for k, item in enumerate(generated.qa):
                out["open_qa"].append(
                    _record(pair, images_root, "open_qa", f"open{k}", [(item.question, item.answer)], flag)
                )
            if generated.conversation:
                exchanges = [(item.question, item.answer) for item in generated.conversation]
                out["open_dialog"].append(_record(pair, images_root, "open_dialog", "open_dialog", exchanges, flag))
        if progress:
            progress(min(start + chunk, len(pairs)), len(pairs))
    return out


def build_changechat(config: BuilderConfig, chat_model: BaseChatModel | None = None) -> BuildReport:
    """Read the source, build every requested type per split, write the files and the report.

    ``chat_model`` overrides ``config.openqa.model``; with neither, open QA is skipped and the report says so.
    """
    unknown = set(config.tasks) - set(templates.TASKS)
    if unknown:
        raise ValueError(f"unknown tasks {sorted(unknown)}; expected some of {templates.TASKS}")
    dataset = read_source(
        config.source, config.captions_file, splits=config.splits, require_images=config.require_images
    )
    analyses = _analyses(dataset, config)
    images_root = dataset.images_root
    by_split: dict[str, dict[str, list[AnyRecord]]] = {s: {t: [] for t in REPORT_TASKS} for s in dataset.splits}
    report = BuildReport(
        counts={},
        pairs={s: len(dataset.split(s)) for s in dataset.splits},
        pairs_without_map={
            s: sum(a.summary is None for p, a in zip(dataset.pairs, analyses, strict=True) if p.split == s)
            for s in dataset.splits
        },
    )
    for pair, analysis in zip(dataset.pairs, analyses, strict=True):
        for task, records in structured_records(pair, analysis, images_root, config).items():
            by_split[pair.split][task].extend(records)
        summary = analysis.summary
        if summary is not None and pair.captions and summary.changed == _captions_say_unchanged(pair.captions):
            report.map_caption_disagreements += 1
    missing_maps = sum(report.pairs_without_map.values())
    if missing_maps:
        report.skipped["maps"] = (
            f"{missing_maps} pairs have no change map: binary, count, localisation, dialog and open QA skip them"
        )
    if "open_qa" in config.tasks:
        model = chat_model
        if model is None and config.openqa.model:
            model = load_chat_model(config.openqa.model, config.openqa.model_kwargs)
        if model is None:
            report.skipped["open_qa"] = "no chat model configured (openqa.model, or --openqa-model)"
            logger.warning("open-ended QA skipped: no chat model configured")
        else:
            cache_dir = config.openqa.cache_dir or (config.out_dir / "openqa_cache")
            generator = OpenQAGenerator(model, config.openqa, cache_dir)
            for split in dataset.splits:
                chosen = [
                    (p, a)
                    for p, a in zip(dataset.pairs, analyses, strict=True)
                    if p.split == split and a.summary is not None
                ]
                facts = [grounding_facts(p.name, a.summary, a.objects, p.captions, a.size) for p, a in chosen]  # type: ignore[arg-type]

                def progress(done: int, total: int, split: str = split) -> None:
                    logger.info("open QA %s: %d / %d pairs", split, done, total)

                generated = _open_records([p for p, _ in chosen], facts, generator, images_root, progress)
                for task, records in generated.items():
                    by_split[split][task].extend(records)
            report.openqa = generator.stats
    report.counts = {task: {s: len(by_split[s][task]) for s in dataset.splits} for task in REPORT_TASKS}
    report.files = [str(p) for p in _write(by_split, config)]
    config.out_dir.mkdir(parents=True, exist_ok=True)
    (config.out_dir / "build_report.json").write_text(report.model_dump_json(indent=2))
    (config.out_dir / "table1.md").write_text(report.table1() + "\n")
    return report


def _write(by_split: dict[str, dict[str, list[AnyRecord]]], config: BuilderConfig) -> list[Path]:
    written = []
    suffix = f".{config.format}"
    for split, tasks in by_split.items():
        if split == "test":
            for task, records in tasks.items():
                if records:
                    name = f"{config.prefix}_test{TEST_FILE_SUFFIX[task]}{suffix}"
                    written.append(write_records(config.out_dir / name, records))
        else:
            records = [r for task in REPORT_TASKS for r in tasks[task]]
            if records:
                written.append(write_records(config.out_dir / f"{config.prefix}_{split}{suffix}", records))
    return written
