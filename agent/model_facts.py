"""What DeltaVLM's text claims, as facts the ledger can weigh, and how each number was read."""

from __future__ import annotations

from typing import Any

from agent.intents import Route
from agent.ledger import Fact
from agent.settings import TrustSettings
from deltavlm.answers import is_no_change_phrase, parse_cells, parse_counts, parse_yes_no
from deltavlm.text import RELEASE_INSTRUCTIONS

MODEL_INSTRUCTIONS: dict[str, str] = {
    "binary": RELEASE_INSTRUCTIONS["binary"],
    "count": RELEASE_INSTRUCTIONS["count"],
    "locate": RELEASE_INSTRUCTIONS["localisation"],
    "caption": RELEASE_INSTRUCTIONS["caption"],
}
"""The fixed types are asked in the wording the model was trained on; open questions verbatim."""

SOURCE = "DeltaVLM"


def model_facts(text: str, route: Route, trust: TrustSettings, turn: int) -> tuple[list[Fact], dict[str, Any]]:
    """Facts parsed from the model's answer to the route's instruction, and a record of the parsing."""
    facts: list[Fact] = []
    parsed: dict[str, Any] = {"raw": text}
    if route.intent == "binary":
        result = parse_yes_no(text)
        parsed["yes_no"] = result.model_dump()
        if result.value is not None:
            facts.append(
                Fact(
                    key="changed",
                    value=result.value,
                    source=SOURCE,
                    confidence=trust.model_binary,
                    turn=turn,
                    detail=result.method,
                )
            )
    elif route.intent == "count":
        result = parse_counts(text)
        parsed["counts"] = result.model_dump()
        for category, value in (result.value or {}).items():
            facts.append(
                Fact(
                    key=f"count.{category}",
                    value=int(value),
                    source=SOURCE,
                    confidence=trust.model_counts,
                    turn=turn,
                    detail=result.method,
                )
            )
    elif route.intent == "locate":
        result = parse_cells(text)
        parsed["cells"] = result.model_dump()
        for category, cells in (result.value or {}).items():
            facts.append(
                Fact(
                    key=f"cells.{category}",
                    value=list(cells),
                    source=SOURCE,
                    confidence=trust.model_cells,
                    turn=turn,
                    detail=result.method,
                )
            )
    elif route.intent == "caption":
        facts.append(Fact(key="caption", value=text, source=SOURCE, confidence=trust.model_caption, turn=turn))
        if is_no_change_phrase(text):
            parsed["no_change_caption"] = True
            facts.append(
                Fact(
                    key="changed",
                    value=False,
                    source=SOURCE,
                    confidence=trust.model_caption,
                    turn=turn,
                    detail="the caption is one of LEVIR-CC's no-change sentences",
                )
            )
    return facts, parsed
