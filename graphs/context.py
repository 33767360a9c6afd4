"""What every node receives at run time besides the state: the tools and the pair store.

The agent extends this context with its own settings (trust, the planner); the graph itself only needs the pair
store, the rules, where artefacts go and the DeltaVLM tool (``perceive`` asks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from deltavlm.rules import RuleSettings
from graphs.pair_store import PairStore
from tools.vlm import DeltaVLMTool


@dataclass
class GraphContext:
    """The run context of the conversation graph (LangGraph ``context_schema``)."""

    store: PairStore
    rules: RuleSettings
    artefact_dir: Path
    geojson_crs: Literal["wgs84", "native"] = "wgs84"
    vlm: DeltaVLMTool | None = None
