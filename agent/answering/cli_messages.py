"""What the command line's ``ask`` and ``chat`` print around an answer, in the question's language: the tag under
each answer, how to continue the thread, and a question that could not be answered (the tool's detail quoted as
written, in English, like the page's)."""

from __future__ import annotations

from agent.answer import Answer
from agent.answering.numbers import decimal
from agent.answering.wording import say


def answer_tag(answer: Answer) -> str:
    """The line under an answer: what was asked, which tools ran, the mask and the answer's confidence."""
    lang = answer.evidence.route.language
    source = answer.evidence.mask
    if source is None:
        mask = say("page:no_mask", lang)
    else:
        mask = say("cli:mask", lang, provider=source.provider, confidence=decimal(source.confidence, lang, 2))
    tools = ", ".join(answer.evidence.tools)
    confidence = decimal(answer.confidence, lang, 2)
    return "  " + say("cli:answer_tag", lang, intent=answer.intent, tools=tools, mask=mask, confidence=confidence)


def continue_thread(answer: Answer) -> str:
    return "  " + say("cli:thread", answer.evidence.route.language, thread=answer.thread_id)


def question_failed(detail: str, lang: str) -> str:
    return say("cli:question_failed", lang, detail=detail)
