"""The change-analysis agent: ``Agent().ask(pair, question)`` → :class:`Answer`.

``Agent`` and ``Answer`` are imported on first use so that light modules (the router, the CLI's
argument parsing) do not pay for LangGraph's import.
"""

from typing import Any

__all__ = ["Agent", "Answer"]


def __getattr__(name: str) -> Any:
    if name == "Agent":
        from agent.api import Agent

        return Agent
    if name == "Answer":
        from agent.answer import Answer

        return Answer
    raise AttributeError(f"module 'agent' has no attribute {name!r}")
