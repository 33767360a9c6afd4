"""How a question and the model's reply were read, in words: the reader's steps (``agent.reading.ReadingStep``) and
the reply's parse (``deltavlm.answers.ParsedAnswer``: a method code and its rules), from the catalogs.

The reader and the planner record which rule chose the ask and what they did (typos corrected, fields taken from the
previous question, compass words turned, the planner's fallbacks) as codes with their facts; the evidence shows
them through this module, in the language asked for.
"""

from __future__ import annotations

from typing import Any

from agent.answering.catalog import message
from agent.answering.wording import clauses, fact_value, join, say
from agent.model_facts import ModelParse
from agent.reading import ReadingStep, Request
from deltavlm.answers import ParsedAnswer

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


def _fixes(step: ReadingStep) -> str:
    """Typo → word, or field → value put back (quoted): arrows, the same in every language."""
    if step.code == "planner_corrected":
        return ", ".join(f"{field}→{value!r}" for field, value in step.fixes)
    return ", ".join(f"{typo}→{word}" for typo, word in step.fixes)


def step_text(step: ReadingStep, lang: str = "en") -> str:
    """One reading step in words, e.g. "a follow-up: the previous count question, with what this one changes"."""
    fields = join([message(f"read:field:{name}", lang) for name in step.fields], lang)
    return say(f"read:{step.code}", lang, value=_value(step, lang), fixes=_fixes(step), fields=fields)


def reading_text(request: Request, lang: str = "en") -> str:
    """How ``request`` was read, every step in order: "asks where; corrected teh→the"."""
    return clauses([step_text(step, lang) for step in request.steps], lang)


def parse_text(parsed: ParsedAnswer[Any], lang: str = "en") -> str:
    """How a field was read from the model's reply, e.g. "from counts (number before category)"."""
    rules = " + ".join(message(f"parse:rule:{rule}", lang) for rule in parsed.rules)
    style = message(f"parse:style:{parsed.style}", lang) if parsed.style else ""
    how = say(f"parse:{parsed.method}", lang, rules=rules, style=style, error=parsed.error or "")
    if parsed.conflicts:
        how = clauses([how, say("parse:conflicts", lang, categories=join(parsed.conflicts, lang))], lang)
    return how


def model_parse_text(parse: ModelParse, lang: str = "en") -> str:
    """Every field read from the model's reply, with its value and how it was read."""
    fields = (("changed", parse.yes_no), ("count", parse.counts), ("where", parse.cells))
    said = [
        say("parse:field", lang, field=message(f"ask:{ask}", lang), value=fact_value(p.value, lang), how=how)
        for ask, p in fields
        if p is not None and (how := parse_text(p, lang))
    ]
    if parse.no_change_caption:
        said.append(message("parse:no_change_caption", lang))
    return clauses(said, lang) or message("none", lang)
