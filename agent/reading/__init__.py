"""Reading a question: the typed request, the deterministic reader, languages, places, typos and follow-ups."""

from agent.reading.reader import MAX_QUESTION_CHARS, orient_request, read_request
from agent.reading.request import LANGUAGE_NAMES, ReadingStep, Request

__all__ = ["LANGUAGE_NAMES", "MAX_QUESTION_CHARS", "ReadingStep", "Request", "orient_request", "read_request"]
