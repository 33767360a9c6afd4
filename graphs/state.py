"""What a conversation thread keeps between turns (checkpointed, so JSON-plain values only).

Pixels, masks and models stay out of the state: it holds the pair's id (content hash) and, when
the pair came from files, their paths so that a restarted process can reload it.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


class ThreadState(TypedDict, total=False):
    pair_id: str
    """Content hash of the pair this thread is about; a thread is bound to one pair."""
    pair_name: str
    pair_paths: list[str] | None
    """t1, t2 paths when the pair came from files (reload after a restart)."""
    mask: dict[str, Any] | None
    """The user's change mask for this pair (path, kind, category), kept for the whole thread."""
    gsd_m: float | None
    """The user's ground sampling distance (metres per pixel) for a plain pair; a georeference wins over it."""
    question: str
    """The current question, as typed (data only)."""
    turn: int
    route: dict[str, Any]
    """The typed request the policy read from the current question (agent.reading.Request as a dict)."""
    verification: dict[str, Any] | None
    """Verifier facts for the current turn, with the mask's source."""
    model_reply: dict[str, Any] | None
    """DeltaVLM's reply for the current turn (tools.vlm.VLMReply as a dict), or None when not asked."""
    reconciled: dict[str, Any]
    """This turn's reconciled facts, the conflicts found, and what was parsed from the model's text."""
    ledger: dict[str, dict[str, Any]]
    """Established facts (changed, counts, cells, caption) with source, confidence and turn."""
    answer: dict[str, Any] | None
    """The composed answer of the current turn (the agent's Answer as a dict)."""
    turns: Annotated[list[dict[str, Any]], operator.add]
    """Every finished turn: question, route, answer text, model exchange."""
