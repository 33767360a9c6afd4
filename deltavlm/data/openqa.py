"""Open-ended QA and conversation generation (paper §3.5) with any LangChain chat model.

The chat model never sees pixels. As in the paper, it gets a grounded text prompt: the pair's five
captions and what the ChangeChat rules found in its change map (changed or not, objects per category,
each object's 3×3 cell, bounding box and a thinned contour, the changed cells). It returns JSON: a list of
question–answer pairs and, when asked, a short follow-up conversation.

Generated text is not trusted. :func:`validate_exchange` rejects an answer whose numbers do not match the
rule counts, or that places a category's change in a cell the map does not support; rejected items are
counted in :class:`GenerationStats`. Raw responses are cached on disk, keyed by the model's identifying
parameters and the prompt, so a rebuild replays the same responses (and costs nothing) while a change
of prompt or model asks again. The builder skips these types, and says so, when no model is configured.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from deltavlm.answers import parse_cells, parse_counts
from deltavlm.rules import CATEGORIES, CELL_IDS, CELL_NAMES, ChangeObject, ChangeSummary, grid_bounds
from deltavlm.text import RELEASE_INSTRUCTIONS, normalize_release_text

logger = logging.getLogger(__name__)

PROMPT_VERSION = 1
"""Part of the cache key: bump when the prompt text changes meaning."""

MAX_CONTOUR_POINTS = 12


class OpenQAConfig(BaseModel):
    """Which chat model writes open-ended QA, and how much it writes."""

    model: str | None = Field(
        None, description="'package.module:Factory' returning a LangChain BaseChatModel; None skips open QA."
    )
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    questions_per_pair: int = Field(4, ge=1, description="Paper: 26,600 QA over 6,815 train pairs ≈ 3.9.")
    conversation_turns: int = Field(0, ge=0, description="Turns of a generated follow-up conversation; 0 = none.")
    cache_dir: Path | None = Field(None, description="Defaults to <out_dir>/openqa_cache.")
    max_attempts: int = Field(2, ge=1, description="Re-asks when a response is not valid JSON.")
    max_concurrency: int = Field(4, ge=1)


class ObjectFact(BaseModel):
    """What the prompt says about one changed object (no pixels)."""

    category: str
    cell: str
    bbox: tuple[int, int, int, int]
    area_px: int
    contour: list[tuple[int, int]]


class GroundingFacts(BaseModel):
    """Everything the chat model is told about one pair."""

    name: str
    size: tuple[int, int]
    captions: list[str]
    changed: bool
    counts: dict[str, int]
    category_cells: dict[str, list[str]]
    objects: list[ObjectFact]

    def object_cells(self, category: str) -> set[str]:
        return {o.cell for o in self.objects if o.category == category}


class Exchange(BaseModel):
    question: str
    answer: str


class GeneratedQA(BaseModel):
    """The valid part of one pair's response."""

    qa: list[Exchange] = Field(default_factory=list)
    conversation: list[Exchange] = Field(default_factory=list)


class GenerationStats(BaseModel):
    """Counts over a build, for the report: what was asked, cached, accepted and rejected (and why)."""

    pairs: int = 0
    calls: int = 0
    cache_hits: int = 0
    unparsable: int = 0
    accepted_qa: int = 0
    rejected_qa: int = 0
    accepted_conversations: int = 0
    rejected_conversations: int = 0
    reasons: dict[str, int] = Field(default_factory=dict)

    def reject(self, reason: str) -> None:
        key = reason.split(":")[0]
        self.reasons[key] = self.reasons.get(key, 0) + 1


def cell_of(x: float, y: float, height: int, width: int) -> str:
    """The 3×3 cell holding pixel (x, y), with the rules' cell bounds."""
    for cell, (r0, r1, c0, c1) in grid_bounds(height, width).items():
        if r0 <= y < r1 and c0 <= x < c1:
            return cell
    return CELL_IDS[-1]


def _thin(contour: Sequence[tuple[int, int]], limit: int = MAX_CONTOUR_POINTS) -> list[tuple[int, int]]:
    if len(contour) <= limit:
        return [tuple(p) for p in contour]  # type: ignore[misc]
    step = len(contour) / limit
    return [tuple(contour[int(i * step)]) for i in range(limit)]  # type: ignore[misc]


def grounding_facts(
    name: str,
    summary: ChangeSummary,
    objects: Sequence[ChangeObject],
    captions: Sequence[str],
    size: tuple[int, int],
) -> GroundingFacts:
    """The prompt's facts from the rules' outputs for one change map (``size`` = height, width)."""
    height, width = size
    return GroundingFacts(
        name=name,
        size=size,
        captions=list(captions),
        changed=summary.changed,
        counts=dict(summary.counts),
        category_cells={c: list(summary.category_cells[c]) for c in CATEGORIES},
        objects=[
            ObjectFact(
                category=o.category,
                cell=cell_of(o.centroid[0], o.centroid[1], height, width),
                bbox=o.bbox,
                area_px=o.pixels,
                contour=_thin(o.contour),
            )
            for o in objects
        ],
    )


SYSTEM_PROMPT = """You write training data for a vision-language model that analyses changes between two \
co-registered satellite images of the same place (t1 before, t2 after; 0.5 m per pixel).
You cannot see the images. You are given facts extracted from the images' change annotation: five human \
captions, and the changed objects found in the change map (category, 3x3 grid cell, bounding box \
[x, y, width, height] in pixels, area, and a thinned outline).
Write questions a user might ask about the changes and answer them as the model should, using only the \
facts. Rules:
- Never state a number of roads or buildings other than the given counts; never invent objects.
- Name grid cells only where the facts place a change of that category.
- Prefer questions the fixed instructions do not already cover: what replaced what, where objects are \
relative to each other, their shape, size or arrangement, the land cover before, the purpose of the change.
- Answer in one or two plain sentences.
Return JSON only, with no other text: {"qa": [{"question": "...", "answer": "..."}], \
"conversation": [{"question": "...", "answer": "..."}]}"""

EXAMPLE_FACTS = {
    "captions": ["two houses are built beside the road", "a pair of villas appear on the bareland"],
    "changed": True,
    "counts": {"road": 0, "building": 2},
    "changed cells": {"road": [], "building": ["bottom-left"]},
    "objects": [
        {"category": "building", "cell": "bottom-left", "bbox": [20, 180, 30, 26], "area_px": 700},
        {"category": "building", "cell": "bottom-left", "bbox": [58, 190, 28, 24], "area_px": 610},
    ],
}
EXAMPLE_RESPONSE = {
    "qa": [
        {
            "question": "What appeared on the bare land?",
            "answer": "Two new buildings were built side by side on the bare land.",
        },
        {"question": "Where are the new buildings?", "answer": "Both new buildings are in the bottom-left part."},
    ],
    "conversation": [],
}


def _facts_json(facts: GroundingFacts) -> dict[str, Any]:
    return {
        "image size": list(facts.size),
        "captions": facts.captions,
        "changed": facts.changed,
        "counts": facts.counts,
        "changed cells": {c: [CELL_NAMES[x] for x in cells] for c, cells in facts.category_cells.items()},
        "objects": [
            {
                "category": o.category,
                "cell": CELL_NAMES[o.cell],
                "bbox": list(o.bbox),
                "area_px": o.area_px,
                "outline": [list(p) for p in o.contour],
            }
            for o in facts.objects
        ],
    }


def build_messages(facts: GroundingFacts, questions: int, conversation_turns: int) -> list[BaseMessage]:
    """System rules, one worked example (in-context learning, as the paper), then this pair's facts."""
    ask = f'Write {questions} question-answer pairs in "qa"'
    ask += (
        f' and a {conversation_turns}-turn follow-up conversation in "conversation" (each question may '
        "refer to earlier answers)."
        if conversation_turns
        else ' and leave "conversation" empty.'
    )
    example = (
        "Example facts:\n"
        + json.dumps(EXAMPLE_FACTS)
        + "\nExample response (2 pairs):\n"
        + json.dumps(EXAMPLE_RESPONSE)
    )
    return [
        SystemMessage(content=SYSTEM_PROMPT),
        HumanMessage(content=f"{example}\n\nFacts:\n{json.dumps(_facts_json(facts))}\n\n{ask}"),
    ]


def model_identity(chat_model: BaseChatModel) -> str:
    """A stable description of the model for the cache key (class plus identifying parameters)."""
    try:
        params = dict(chat_model._identifying_params)
    except Exception:  # a model without identifying params still gets a key
        params = {}
    return type(chat_model).__name__ + json.dumps(params, sort_keys=True, default=str)


def cache_key(identity: str, messages: Sequence[BaseMessage], attempt: int) -> str:
    payload = json.dumps(
        {
            "v": PROMPT_VERSION,
            "model": identity,
            "attempt": attempt,
            "messages": [[m.type, m.content] for m in messages],
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache:
    """Raw responses on disk, one JSON file per key (atomic writes, safe to share between runs)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        path = self._path(key)
        if not path.is_file():
            return None
        return str(json.loads(path.read_text())["response"])

    def put(self, key: str, response: str, identity: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"model": identity, "response": response}))
        os.replace(tmp, path)


def parse_response(text: str) -> GeneratedQA | None:
    """The JSON object of a response (code fences and chatter around it tolerated); None when absent."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None

    def items(key: str) -> list[Exchange]:
        out = []
        for item in data.get(key) or []:
            if (
                isinstance(item, Mapping)
                and isinstance(item.get("question"), str)
                and isinstance(item.get("answer"), str)
            ):
                out.append(Exchange(question=item["question"].strip(), answer=item["answer"].strip()))
        return out

    return GeneratedQA(qa=items("qa"), conversation=items("conversation"))


_FIXED = {normalize_release_text(t) for t in RELEASE_INSTRUCTIONS.values()}
_DIGITS = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")


def validate_exchange(exchange: Exchange, facts: GroundingFacts) -> str | None:
    """Why an exchange contradicts the facts (None when it does not).

    * numbers: counts the answer states for roads or buildings must equal the rule counts, and every other
      numeral in it must be one of the counts or their total (an invented "4 trees" is rejected too);
    * cells: a category may only be placed in cells the map supports (its changed cells or the cells of
      its objects' centroids);
    * the fixed instructions are not open questions.
    """
    if not exchange.question or not exchange.answer:
        return "empty: question or answer is empty"
    if normalize_release_text(exchange.question) in _FIXED:
        return "fixed instruction: repeats a fixed ChangeChat instruction"
    counts = parse_counts(exchange.answer).value or {}
    for category, value in counts.items():
        if value != facts.counts.get(category, 0):
            return f"count mismatch: answer says {value} {category}(s), the map has {facts.counts.get(category, 0)}"
    allowed = {*facts.counts.values(), sum(facts.counts.values())}
    for token in _DIGITS.findall(exchange.answer):
        if float(token) not in allowed:
            return f"number mismatch: {token} is not a count of this pair ({sorted(allowed)})"
    cells = parse_cells(exchange.answer).value or {}
    for category, named in cells.items():
        supported = set(facts.category_cells.get(category, [])) | facts.object_cells(category)
        wrong = [c for c in named if c not in supported]
        if wrong:
            return f"cell mismatch: {category} placed in {[CELL_NAMES[c] for c in wrong]} without change there"
    return None


def load_chat_model(spec: str, kwargs: Mapping[str, Any] | None = None) -> BaseChatModel:
    """Instantiate ``'package.module:Factory'`` (e.g. ``langchain_openai:ChatOpenAI``) with ``kwargs``."""
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise ValueError(f"chat model spec {spec!r} must look like 'package.module:Factory'")
    factory = getattr(importlib.import_module(module_name), attribute)
    model = factory(**dict(kwargs or {}))
    if not isinstance(model, BaseChatModel):
        raise TypeError(f"{spec} returned {type(model).__name__}, not a LangChain BaseChatModel")
    return model


def _content(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, list):  # content blocks
        return "".join(part.get("text", "") if isinstance(part, Mapping) else str(part) for part in content)
    return str(content)


class OpenQAGenerator:
    """Asks the chat model for each pair (cached), parses and validates what comes back."""

    def __init__(self, chat_model: BaseChatModel, config: OpenQAConfig, cache_dir: str | Path) -> None:
        self.chat_model = chat_model
        self.config = config
        self.cache = ResponseCache(cache_dir)
        self.identity = model_identity(chat_model)
        self.stats = GenerationStats()

    def _responses(self, prompts: list[list[BaseMessage]], attempt: int) -> list[str | None]:
        keys = [cache_key(self.identity, m, attempt) for m in prompts]
        out: list[str | None] = [self.cache.get(k) for k in keys]
        self.stats.cache_hits += sum(r is not None for r in out)
        missing = [i for i, r in enumerate(out) if r is None]
        if missing:
            self.stats.calls += len(missing)
            results = self.chat_model.batch(
                [prompts[i] for i in missing],
                config={"max_concurrency": self.config.max_concurrency},
                return_exceptions=True,
            )
            for i, result in zip(missing, results, strict=True):
                if isinstance(result, BaseException):
                    logger.warning("open-QA call failed: %s", result)
                    continue
                text = _content(result)
                self.cache.put(keys[i], text, self.identity)
                out[i] = text
        return out

    def generate(self, facts: Sequence[GroundingFacts]) -> list[GeneratedQA]:
        """Valid QA (and conversation) per pair, in order; a pair whose every attempt fails gets none."""
        cfg = self.config
        prompts = [build_messages(f, cfg.questions_per_pair, cfg.conversation_turns) for f in facts]
        parsed: list[GeneratedQA | None] = [None] * len(facts)
        pending = list(range(len(facts)))
        for attempt in range(cfg.max_attempts):
            if not pending:
                break
            responses = self._responses([prompts[i] for i in pending], attempt)
            still = []
            for i, response in zip(pending, responses, strict=True):
                result = parse_response(response) if response is not None else None
                if result is None:
                    still.append(i)
                else:
                    parsed[i] = result
            pending = still
        self.stats.pairs += len(facts)
        self.stats.unparsable += len(pending)
        return [self._validated(p, f) if p is not None else GeneratedQA() for p, f in zip(parsed, facts, strict=True)]

    def _validated(self, generated: GeneratedQA, facts: GroundingFacts) -> GeneratedQA:
        qa, seen = [], set()
        for item in generated.qa[: self.config.questions_per_pair]:
            reason = validate_exchange(item, facts)
            key = normalize_release_text(item.question)
            if reason is None and key in seen:
                reason = "duplicate: question asked twice"
            if reason is None:
                qa.append(item)
                seen.add(key)
                self.stats.accepted_qa += 1
            else:
                self.stats.rejected_qa += 1
                self.stats.reject(reason)
        conversation: list[Exchange] = []
        turns = generated.conversation[: self.config.conversation_turns]
        for item in turns:
            reason = validate_exchange(item, facts)
            if reason is not None:  # later turns may lean on a wrong answer: keep only the part before it
                self.stats.reject(reason)
                break
            conversation.append(item)
        if self.config.conversation_turns and turns:
            if len(conversation) >= 2:
                self.stats.accepted_conversations += 1
            else:
                self.stats.rejected_conversations += 1
                conversation = []
        return GeneratedQA(qa=qa, conversation=conversation)
