"""ChangeChat-105k records: read and write the release's JSON, and ours (the same, plus a few fields).

Instruction record (LLaVA style, as released)::

    {"id": ..., "image": [A_rel, B_rel], "changeflag": 0|1,
     "conversations": [{"from": "human", "value": "<image> <image> Q"}, {"from": "gpt", "value": "A"}, ...]}

Caption test record (``changechat_105k_test.json``)::

    {"image_A": ..., "image_B": ..., "captions": [five], "changeflag": 0|1}

Our builder writes the same shapes and adds ``type`` (the ChangeChat task), ``split`` and, where a change
map exists, ``label`` (its path relative to the images root, for the optional mask-head loss). Readers of
the release ignore unknown fields, and our readers accept records without them, inferring ``type`` from the
instruction wording. Files are a JSON list (``.json``, as released) or JSON lines (``.jsonl``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from deltavlm.data.templates import TASKS, strip_image_tokens
from deltavlm.text import NO_CHANGE_CAPTIONS, PAPER_INSTRUCTIONS, RELEASE_INSTRUCTIONS, normalize_release_text


class Turn(BaseModel):
    """One message of a conversation."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    speaker: Literal["human", "gpt"] = Field(alias="from")
    value: str


class ChangeChatRecord(BaseModel):
    """An instruction record: a pair and its conversation (human and gpt turns alternating)."""

    model_config = ConfigDict(extra="allow")

    id: str
    image: list[str]
    changeflag: int | None = None
    conversations: list[Turn]
    type: str | None = None
    split: str | None = None
    label: str | None = None

    @field_validator("image")
    @classmethod
    def _two_images(cls, image: list[str]) -> list[str]:
        if len(image) != 2:
            raise ValueError(f"a ChangeChat record names two images (t1, t2), got {len(image)}")
        return image

    @field_validator("conversations")
    @classmethod
    def _alternating(cls, turns: list[Turn]) -> list[Turn]:
        if not turns or len(turns) % 2:
            raise ValueError("conversations must hold (human, gpt) pairs")
        for index, turn in enumerate(turns):
            expected = "human" if index % 2 == 0 else "gpt"
            if turn.speaker != expected:
                raise ValueError(f"turn {index} is from {turn.speaker!r}, expected {expected!r}")
        return turns

    def exchanges(self) -> list[tuple[str, str]]:
        """``(question, answer)`` per exchange, the ``<image>`` placeholders removed."""
        turns = self.conversations
        return [(strip_image_tokens(turns[i].value), turns[i + 1].value) for i in range(0, len(turns), 2)]

    @property
    def task(self) -> str:
        """Our ``type`` when present, else inferred from the wording (release files carry no type)."""
        return self.type or infer_task(self.exchanges())

    def dump(self) -> dict[str, object]:
        return self.model_dump(by_alias=True, exclude_none=True)


class CaptionTestRecord(BaseModel):
    """The release's caption test record: a pair and its five reference captions."""

    model_config = ConfigDict(extra="allow")

    image_A: str
    image_B: str
    captions: list[str]
    changeflag: int | None = None
    id: str | None = None
    split: str | None = None
    label: str | None = None

    @property
    def task(self) -> str:
        return "caption"

    @property
    def key(self) -> str:
        return self.id or self.image_A

    @property
    def changed(self) -> bool:
        """The release's convention: changeflag when present, else 'not every caption is a no-change one'."""
        if self.changeflag is not None:
            return bool(self.changeflag)
        return not all(is_release_no_change(c) for c in self.captions)

    def dump(self) -> dict[str, object]:
        return self.model_dump(exclude_none=True)


AnyRecord = ChangeChatRecord | CaptionTestRecord

_INSTRUCTION_TASKS: dict[str, str] = {}
for _task, _text in (*RELEASE_INSTRUCTIONS.items(), *PAPER_INSTRUCTIONS.items()):
    _INSTRUCTION_TASKS.setdefault(normalize_release_text(_text), _task)


def infer_task(exchanges: Sequence[tuple[str, str]]) -> str:
    """The ChangeChat task of a conversation from its instruction wording (release files carry no type)."""
    if len(exchanges) > 1:
        return "dialog"
    task = _INSTRUCTION_TASKS.get(normalize_release_text(exchanges[0][0]))
    return task if task in TASKS else "open_qa"


def is_release_no_change(caption: str) -> bool:
    """The release's caption-derived rule: a caption equal to one of LEVIR-CC's five no-change sentences."""
    return normalize_release_text(caption).strip() in NO_CHANGE_CAPTIONS


def parse_record(raw: dict[str, object]) -> AnyRecord:
    if "conversations" in raw:
        return ChangeChatRecord.model_validate(raw)
    if "captions" in raw and "image_A" in raw:
        return CaptionTestRecord.model_validate(raw)
    raise ValueError(f"not a ChangeChat record (keys {sorted(raw)})")


def read_records(path: str | Path) -> list[AnyRecord]:
    """All records of a ``.json`` list or ``.jsonl`` file, validated; errors name the file and line/index."""
    path = Path(path)
    text = path.read_text()
    if path.suffix == ".jsonl":
        raws = [(i + 1, json.loads(line)) for i, line in enumerate(text.splitlines()) if line.strip()]
        where = "line"
    else:
        data = json.loads(text)
        if isinstance(data, dict):
            data = data.get("annotations") or data.get("data") or [data]
        raws = list(enumerate(data))
        where = "index"
    records = []
    for position, raw in raws:
        try:
            records.append(parse_record(raw))
        except ValueError as error:
            raise ValueError(f"{path} {where} {position}: {error}") from error
    return records


def write_records(path: str | Path, records: Iterable[AnyRecord]) -> Path:
    """Write a ``.json`` list (the release's form) or ``.jsonl``, atomically (a temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dumped = [r.dump() for r in records]
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as handle:
        if path.suffix == ".jsonl":
            for item in dumped:
                handle.write(json.dumps(item, ensure_ascii=False) + "\n")
        else:
            json.dump(dumped, handle, ensure_ascii=False, indent=1)
    os.replace(tmp, path)
    return path
