"""What the command line's ``ask`` and ``chat`` print around an answer, in the question's language: the tag under
each answer, how to continue the thread, and a question that could not be answered (the tool's detail quoted as
written, in English, like the page's). Before any question (the chat's banner) there is no question to follow, so
the words are in the language of the environment's locale (:func:`environment_language`)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from agent.answer import Answer
from agent.answering.catalog import LANGUAGES
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


LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")
"""Where a POSIX program reads the language of its messages, strongest first: the first one set decides."""


def environment_language(environ: Mapping[str, str] | None = None) -> str:
    """The catalogs' language named by the locale in force (``fr_FR.UTF-8`` → "fr"), else English: the first set of
    ``LC_ALL``, ``LC_MESSAGES`` and ``LANG`` decides, as for any POSIX program, so a ``ja_JP`` in ``LC_ALL`` means
    English even when ``LANG`` names French ("C" and "POSIX" mean English too)."""
    environ = os.environ if environ is None else environ
    locale = next((environ[name] for name in LOCALE_VARIABLES if environ.get(name)), "")
    lang = locale.split(".")[0].split("@")[0].split("_")[0].split("-")[0].lower()
    return lang if lang in LANGUAGES else "en"


def chat_banner(thread: str, lang: str) -> str:
    """The chat's line before the first question: the thread's id, and how to leave."""
    return say("cli:chat_banner", lang, thread=thread)
