"""The ChangeChat builder: counts per type and split, answers from the shared rules, the release's record
format, open-QA generation with a fake chat model, and the training dataset's augmentation."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from deltavlm import rules
from deltavlm.answers import parse_cells, parse_counts, parse_yes_no
from deltavlm.data import templates
from deltavlm.data.builder import BuilderConfig, build_changechat
from deltavlm.data.dataset import AugmentConfig, ChangeChatDataset, augment_pair
from deltavlm.data.openqa import Exchange, GroundingFacts, OpenQAConfig, validate_exchange
from deltavlm.data.records import CaptionTestRecord, ChangeChatRecord, read_records, write_records
from deltavlm.data.source import DatasetNotFoundError, read_class_mask, read_source
from deltavlm.synthetic import write_levir_mci
from deltavlm.text import RELEASE_INSTRUCTIONS

SPLIT_SIZES = {"train": 6, "val": 2, "test": 4}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("levir_mci")
    write_levir_mci(root, SPLIT_SIZES, seed=3, size=64)
    return root


@pytest.fixture(scope="module")
def built(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("changechat")
    build_changechat(BuilderConfig(source=source, out_dir=out, seed=1))
    return out


def _all_records(built: Path) -> list[Any]:
    records: list[Any] = []
    for path in sorted(built.glob("changechat_*.json")):
        records += read_records(path)
    return records


def test_counts_per_type_and_split_as_table_1(built: Path) -> None:
    report = json.loads((built / "build_report.json").read_text())
    n = SPLIT_SIZES
    assert report["counts"]["caption"] == {"train": 5 * n["train"], "val": 5 * n["val"], "test": n["test"]}
    for task in ("binary", "count", "localisation", "dialog"):
        assert report["counts"][task] == n
    assert report["counts"]["open_qa"] == {"train": 0, "val": 0, "test": 0}
    assert "no chat model" in report["skipped"]["open_qa"]
    table = (built / "table1.md").read_text()
    assert "| Change captioning | 30 | 10 | 4 |" in table and "open_qa: skipped" in table
    names = {p.name for p in built.glob("changechat_*.json")}
    assert names == {
        "changechat_train.json",
        "changechat_val.json",
        "changechat_test.json",
        "changechat_test_binary.json",
        "changechat_test_count.json",
        "changechat_test_loc.json",
        "changechat_test_dialog.json",
    }


def test_structured_answers_are_the_rules_verdicts(built: Path, source: Path) -> None:
    checked = 0
    for record in _all_records(built):
        if isinstance(record, CaptionTestRecord) or record.task == "caption":
            continue
        summary = rules.summarize(read_class_mask(source / "images" / record.label))
        assert record.changeflag == int(summary.changed)
        exchanges = record.exchanges()
        if record.task == "binary":
            assert parse_yes_no(exchanges[0][1]).value is summary.changed
        elif record.task == "count":
            assert parse_counts(exchanges[0][1]).value == summary.counts
        elif record.task == "localisation":
            assert parse_cells(exchanges[0][1]).value == summary.category_cells
        elif record.task == "dialog":  # easy → hard: binary, then counts, then the caption
            assert [q for q, _ in exchanges] == [
                RELEASE_INSTRUCTIONS["binary"],
                RELEASE_INSTRUCTIONS["dialog_count"],
                RELEASE_INSTRUCTIONS["dialog_caption"],
            ]
            assert parse_yes_no(exchanges[0][1]).value is summary.changed
            assert parse_counts(exchanges[1][1]).value == summary.counts
        checked += 1
    assert checked == 4 * sum(SPLIT_SIZES.values())


def test_builder_uses_the_shared_rule_code(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Change the one rule implementation and the dataset's labels follow: there is no second copy."""
    real = rules.summarize

    def doctored(class_mask: np.ndarray, settings: rules.RuleSettings | None = None) -> rules.ChangeSummary:
        summary = real(class_mask, settings)
        return summary.model_copy(update={"counts": {"road": 7, "building": 11}, "changed": True})

    monkeypatch.setattr(rules, "summarize", doctored)
    build_changechat(BuilderConfig(source=source, out_dir=tmp_path, splits=["test"], answer_style="canonical"))
    for record in read_records(tmp_path / "changechat_test_count.json"):
        assert parse_counts(record.exchanges()[0][1]).value == {"road": 7, "building": 11}


def test_records_have_the_release_shape_and_round_trip(built: Path, tmp_path: Path) -> None:
    raw = json.loads((built / "changechat_train.json").read_text())
    first = raw[0]
    assert {"id", "image", "changeflag", "conversations"} <= set(first)
    assert first["conversations"][0]["from"] == "human"
    assert first["conversations"][0]["value"].startswith("<image> <image> ")
    assert all(len(r["image"]) == 2 for r in raw)
    assert len({r["id"] for r in raw}) == len(raw)
    records = read_records(built / "changechat_train.json")
    write_records(tmp_path / "copy.jsonl", records)
    assert [r.dump() for r in read_records(tmp_path / "copy.jsonl")] == [r.dump() for r in records]
    caption_test = json.loads((built / "changechat_test.json").read_text())[0]
    assert {"image_A", "image_B", "captions", "changeflag"} <= set(caption_test)
    assert len(caption_test["captions"]) == 5


def test_reads_released_records_without_our_fields(tmp_path: Path) -> None:
    """The release carries no type: it is inferred from the instruction wording."""
    release = [
        {
            "id": "1",
            "image": ["train/A/train_000001.png", "train/B/train_000001.png"],
            "changeflag": 1,
            "conversations": [
                {"from": "human", "value": "<image> <image> " + RELEASE_INSTRUCTIONS[task]},
                {"from": "gpt", "value": answer},
            ],
        }
        for task, answer in (
            ("binary", "yes"),
            ("count", "3 new roads and 5 new buildings"),
            ("localisation", "roads ['top-left'] buildings []"),
            ("caption", "a road is built"),
        )
    ]
    release.append({**release[0], "id": "5", "conversations": release[0]["conversations"] * 3})
    release.append(
        {
            **release[0],
            "id": "6",
            "conversations": [
                {"from": "human", "value": "<image> <image> What replaced the trees?"},
                {"from": "gpt", "value": "houses"},
            ],
        }
    )
    caption_test = {"image_A": "a.png", "image_B": "b.png", "captions": ["x"] * 5, "changeflag": 0}
    (tmp_path / "release.json").write_text(json.dumps([*release, caption_test]))
    records = read_records(tmp_path / "release.json")
    assert [r.task for r in records] == ["binary", "count", "localisation", "caption", "dialog", "open_qa", "caption"]
    assert isinstance(records[-1], CaptionTestRecord) and not records[-1].changed
    with pytest.raises(ValueError, match="index 0"):
        (tmp_path / "bad.json").write_text(json.dumps([{"id": "x", "image": ["a"], "conversations": []}]))
        read_records(tmp_path / "bad.json")


@pytest.mark.parametrize("road,building", list(itertools.product(range(4), range(4))))
def test_every_count_template_parses_back(road: int, building: int) -> None:
    counts = {"road": road, "building": building}
    options = templates.COUNT_ZERO_ANSWERS if road == building == 0 else templates.COUNT_TEMPLATES
    for index in range(len(options)):
        answer = templates.count_answer(counts, _FixedChoice(index), "varied")
        assert parse_counts(answer).value == counts, answer
    for category in ("road", "building"):
        for index in range(len(templates.CATEGORY_COUNT_TEMPLATES)):
            n = counts[category]
            answer = templates.category_count_answer(category, n, _FixedChoice(index), "varied")
            assert parse_counts(answer, default_category=category).value == {category: n}, answer


def test_every_binary_and_localisation_template_parses_back() -> None:
    for changed, answers in templates.BINARY_ANSWERS.items():
        assert all(parse_yes_no(a).value is changed for a in answers)
    for roads, buildings in itertools.product(([], ["TL"], ["BR", "TC", "CL"]), ([], ["CC"], ["BL", "BC"])):
        truth = {
            "road": [c for c in rules.CELL_IDS if c in roads],
            "building": [c for c in rules.CELL_IDS if c in buildings],
        }
        for index in range(3):
            answer = templates.localisation_answer(truth, _FixedChoice(index), "varied")
            assert parse_cells(answer).value == truth, answer
    assert templates.localisation_answer({"road": ["CC", "TL"], "building": []}) == (
        "roads ['top-left', 'center-center'] buildings []"
    )


class _FixedChoice:
    """A stand-in generator that always picks option ``index`` (clamped)."""

    def __init__(self, index: int) -> None:
        self.index = index

    def integers(self, n: int) -> int:
        return min(self.index, n - 1)


# --- real caption data (read in place) -------------------------------------------------------------------


def test_real_levir_mci_captions_give_table_1_caption_counts(shared_data: Path, tmp_path: Path) -> None:
    captions = shared_data / "levir_mci" / "captions_all.json"
    dataset = read_source(captions, require_images=False)
    assert {s: len(dataset.split(s)) for s in dataset.splits} == {"train": 6815, "val": 1333, "test": 1929}
    assert all(len(p.captions) == 5 for p in dataset.pairs)
    report = build_changechat(
        BuilderConfig(
            source=captions, out_dir=tmp_path, tasks=["caption"], require_images=False, splits=["train", "test"]
        )
    )
    assert report.counts["caption"] == {"train": 34_075, "test": 1_929}  # paper Table 1
    assert "no change map" in report.skipped["maps"]


def test_levircc_sample_captions_are_read(shared_data: Path) -> None:
    dataset = read_source(shared_data / "levircc" / "captions.json", require_images=False)
    assert [p.name for p in dataset.pairs] == ["train_000016.png", "train_000051.png", "train_000054.png"]
    assert dataset.pairs[0].captions[0] == "several houses appear on the bareland at the bottom"


def test_missing_source_names_what_to_download(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="LEVIR-MCI"):
        read_source(tmp_path / "nowhere")
    (tmp_path / "LevirCCcaptions.json").write_text(
        json.dumps({"images": [{"filename": "x.png", "split": "train", "sentences": [{"tokens": ["a"], "raw": "a"}]}]})
    )
    with pytest.raises(DatasetNotFoundError, match=re.escape("train/A/x.png")):
        read_source(tmp_path)


# --- open-ended QA with a fake chat model ------------------------------------------------------------------


class GroundedFakeChat(BaseChatModel):
    """Answers from the facts in the prompt; ``lie`` adds a wrong count; ``garbage`` answers non-JSON first."""

    lie: bool = False
    garbage_first: bool = False
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "grounded-fake"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"lie": self.lie, "garbage_first": self.garbage_first}

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        self.calls += 1
        prompt = str(messages[-1].content)
        if self.garbage_first and self.calls == 1:
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content="Sorry, I cannot help."))])
        facts = json.loads(re.search(r"Facts:\n(\{.*\})\n", prompt).group(1))  # type: ignore[union-attr]
        counts = facts["counts"]
        buildings = counts["building"] + (3 if self.lie else 0)
        qa = [
            {"question": "How many buildings were built?", "answer": f"{buildings} new buildings appeared."},
            {"question": "What was there before?", "answer": facts["captions"][0]},
            {"question": "Is there a road change?", "answer": f"There are {counts['road']} new roads."},
        ]
        conversation = [
            {"question": "Did anything change?", "answer": "Yes." if facts["changed"] else "No."},
            {"question": "How many roads?", "answer": f"{counts['road']} new roads."},
        ]
        content = "```json\n" + json.dumps({"qa": qa, "conversation": conversation}) + "\n```"
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=content))])


def test_open_qa_is_generated_validated_and_cached(source: Path, tmp_path: Path) -> None:
    config = BuilderConfig(
        source=source,
        out_dir=tmp_path,
        splits=["test"],
        tasks=["open_qa"],
        openqa=OpenQAConfig(questions_per_pair=3, conversation_turns=2, max_concurrency=1),
    )
    model = GroundedFakeChat()
    report = build_changechat(config, chat_model=model)
    assert model.calls == SPLIT_SIZES["test"]
    assert report.counts["open_qa"]["test"] == 3 * SPLIT_SIZES["test"]
    assert report.counts["open_dialog"]["test"] == SPLIT_SIZES["test"]
    records = read_records(tmp_path / "changechat_test_open.json")
    assert all(isinstance(r, ChangeChatRecord) and r.task == "open_qa" for r in records)
    assert records[0].conversations[0].value.startswith("<image> <image> ")
    dialogs = read_records(tmp_path / "changechat_test_open_dialog.json")
    assert all(len(d.conversations) == 4 for d in dialogs)
    again = GroundedFakeChat()
    build_changechat(config, chat_model=again)
    assert again.calls == 0  # every response came from the disk cache


def test_open_qa_rejects_answers_that_contradict_the_counts(source: Path, tmp_path: Path) -> None:
    config = BuilderConfig(
        source=source, out_dir=tmp_path, splits=["test"], tasks=["open_qa"], openqa=OpenQAConfig(questions_per_pair=3)
    )
    report = build_changechat(config, chat_model=GroundedFakeChat(lie=True, garbage_first=True))
    assert report.openqa is not None
    assert report.openqa.rejected_qa == SPLIT_SIZES["test"]  # the lying answer of every pair
    assert report.openqa.reasons == {"count mismatch": SPLIT_SIZES["test"]}
    assert report.counts["open_qa"]["test"] == 2 * SPLIT_SIZES["test"]  # the first pair was re-asked


def test_validation_checks_numbers_and_cells() -> None:
    facts = GroundingFacts(
        name="x",
        size=(64, 64),
        captions=["a house is built"],
        changed=True,
        counts={"road": 0, "building": 2},
        category_cells={"road": [], "building": ["TL"]},
        objects=[],
    )
    ok = Exchange(question="Where are the houses?", answer="Both of the 2 new buildings are in the top-left.")
    assert validate_exchange(ok, facts) is None
    assert "number" in (validate_exchange(Exchange(question="q", answer="About 5 trees were cut."), facts) or "")
    wrong_cell = Exchange(question="q", answer="The buildings are in the bottom-right.")
    assert "cell" in (validate_exchange(wrong_cell, facts) or "")
    fixed = Exchange(question=RELEASE_INSTRUCTIONS["binary"], answer="yes")
    assert "fixed instruction" in (validate_exchange(fixed, facts) or "")


# --- the training dataset ----------------------------------------------------------------------------------


def test_dataset_yields_one_sample_per_answer_with_history(built: Path, source: Path) -> None:
    records = read_records(built / "changechat_test_dialog.json")
    dataset = ChangeChatDataset(records, source / "images", with_masks=True)
    assert len(dataset) == 3 * len(records)
    third = dataset[2]
    assert [q for q, _ in third.history] == [RELEASE_INSTRUCTIONS["binary"], RELEASE_INSTRUCTIONS["dialog_count"]]
    assert third.question == RELEASE_INSTRUCTIONS["dialog_caption"]
    assert third.class_mask is not None and third.class_mask.shape == third.t1.shape[:2]
    captions = ChangeChatDataset(read_records(built / "changechat_test.json"), source / "images")
    assert len(captions) == 5 * SPLIT_SIZES["test"]


def test_augmentation_moves_both_dates_and_the_map_together() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (100, 120, 3), dtype=np.uint8)
    mask = rng.integers(0, 3, (100, 120), dtype=np.uint8)
    config = AugmentConfig()
    for seed in range(20):
        a, b, m = augment_pair(image, image.copy(), mask, np.random.default_rng(seed), config)
        assert np.array_equal(a, b)  # the same transform for t1 and t2: the pair stays registered
        assert 95 <= a.shape[0] <= 100 and 114 <= a.shape[1] <= 120  # at most 5 % of each side removed
        assert m is not None and m.shape == a.shape[:2]
        assert set(np.unique(m)) <= {0, 1, 2, 255}  # nearest-neighbour: class ids stay ids (255 = outside)
    first = augment_pair(image, image, mask, np.random.default_rng(5), config)
    again = augment_pair(image, image, mask, np.random.default_rng(5), config)
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    same = augment_pair(image, image, mask, rng, AugmentConfig(enabled=False))
    assert same[0] is image and same[2] is mask
