"""Reading a question: the typed request, the deterministic reader, languages, places, typos and follow-ups."""

from agent.reading.reader import MAX_QUESTION_CHARS, languages_sentence, orient_request, read_request
from agent.reading.request import LANGUAGE_NAMES, Request

__all__ = ["LANGUAGE_NAMES", "MAX_QUESTION_CHARS", "Request", "languages_sentence", "orient_request", "read_request"]
