"""Which perception answers, in words (the CLI's banner and the page's status line)."""

from __future__ import annotations


def perception_sentence(model_problem: str | None, model_name: str | None) -> str:
    """The model that answers and what checks it, or why the verifiers answer alone."""
    if model_problem:
        return f"verifier-only: {model_problem}"
    if model_name is None:
        return "verifier-only: no DeltaVLM configured (OpenCV rules on the change mask)"
    return f"DeltaVLM via {model_name}, checked by the OpenCV verifiers"
