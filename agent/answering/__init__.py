"""Answers built from the typed request: first sentence first, in the user's language where it is templated."""

from agent.answering.compose import HEDGE_BELOW, Composed, Knowledge, compose, mask_phrase
from agent.answering.turn import about_previous, compose_turn, export_notes

__all__ = [
    "HEDGE_BELOW",
    "Composed",
    "Knowledge",
    "about_previous",
    "compose",
    "compose_turn",
    "export_notes",
    "mask_phrase",
]
