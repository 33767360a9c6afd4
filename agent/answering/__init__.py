"""Answers built from the typed request: first sentence first, in the user's language where it is templated."""

from agent.answering.compose import HEDGE_BELOW, Composed, Knowledge, compose, mask_phrase

__all__ = ["HEDGE_BELOW", "Composed", "Knowledge", "compose", "mask_phrase"]
