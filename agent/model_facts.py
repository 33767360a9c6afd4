"""What DeltaVLM's text claims, as facts the ledger can weigh, and how each number was read."""

from __future__ import annotations

from pydantic import BaseModel

from agent.ledger import Fact, FactValue
from agent.settings import TrustSettings
from deltavlm.answers import (
    CellsAnswer,
    CountsAnswer,
    YesNoAnswer,
    is_no_change_phrase,
    parse_cells,
    parse_counts,
    parse_yes_no,
)
from deltavlm.text import RELEASE_INSTRUCTIONS

MODEL_INSTRUCTIONS: dict[str, str] = {
    "binary": RELEASE_INSTRUCTIONS["binary"],
    "count": RELEASE_INSTRUCTIONS["count"],
    "locate": RELEASE_INSTRUCTIONS["localisation"],
    "caption": RELEASE_INSTRUCTIONS["caption"],
}
"""The fixed types are asked in the wording the model was trained on; open questions verbatim."""

SOURCE = "DeltaVLM"


class ModelParse(BaseModel):
    """What was read from DeltaVLM's text, and how (the parsers' own typed results)."""

    raw: str
    yes_no: YesNoAnswer | None = None
    counts: CountsAnswer | None = None
    cells: CellsAnswer | None = None
    no_change_caption: bool = False


def model_facts(text: str, kind: str, trust: TrustSettings, turn: int) -> tuple[list[Fact], ModelParse]:
    """Facts parsed from the model's answer to a ``kind`` instruction (binary, count, locate, caption)."""
    facts: list[Fact] = []
    parsed = ModelParse(raw=text)

    def propose(key: str, value: FactValue, confidence: float, detail: str = "") -> None:
        facts.append(Fact(key=key, value=value, source=SOURCE, confidence=confidence, turn=turn, detail=detail))

    if kind == "binary":
        yes_no = parse_yes_no(text)
        parsed.yes_no = yes_no
        if yes_no.value is not None:
            propose("changed", yes_no.value, trust.model_binary, yes_no.method)
    elif kind == "count":
        counts = parse_counts(text)
        parsed.counts = counts
        for category, value in (counts.value or {}).items():
            propose(f"count.{category}", int(value), trust.model_counts, counts.method)
    elif kind == "locate":
        cells = parse_cells(text)
        parsed.cells = cells
        for category, names in (cells.value or {}).items():
            propose(f"cells.{category}", list(names), trust.model_cells, cells.method)
    elif kind == "caption":
        propose("caption", text, trust.model_caption)
        if is_no_change_phrase(text):
            parsed.no_change_caption = True
            propose("changed", False, trust.model_caption, "the caption says nothing changed")
    return facts, parsed
