"""How a question was read, in words: the reader's steps (``agent.reading.ReadingStep``) from the catalogs.

The reader and the planner record which rule chose the ask and what they did (typos corrected, fields taken from the
previous question, compass words turned, the planner's fallbacks) as codes with their facts; the evidence shows
them through this module, in the language asked for.
"""

from __future__ import annotations

from agent.answering.catalog import message
from agent.answering.wording import clauses, join, say
from agent.reading import ReadingStep, Request

_ASK_VALUED = ("follow_up", "one_sided_compare")
"""Steps whose value is an ask, said by its name (``ask:…``)."""


def _value(step: ReadingStep, lang: str) -> str:
    if step.value is None:
        return ""
    if step.code in _ASK_VALUED:
        return message(f"ask:{step.value}", lang)
    if step.code == "compass_turned":
        return message(f"direction:{step.value}", lang)
    return step.value


def _fixes(step: ReadingStep, lang: str) -> str:
    if step.code == "planner_corrected":
        return ", ".join(f"{field} to {value!r}" for field, value in step.fixes)
    return ", ".join(f"{typo}→{word}" for typo, word in step.fixes)


def step_text(step: ReadingStep, lang: str = "en") -> str:
    """One reading step in words, e.g. "a follow-up: the previous count question, with what this one changes"."""
    fields = join([message(f"read:field:{name}", lang) for name in step.fields], lang)
    return say(f"read:{step.code}", lang, value=_value(step, lang), fixes=_fixes(step, lang), fields=fields)


def reading_text(request: Request, lang: str = "en") -> str:
    """How ``request`` was read, every step in order: "asks where; corrected teh→the"."""
    return clauses([step_text(step, lang) for step in request.steps], lang)
