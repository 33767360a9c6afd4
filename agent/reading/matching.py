"""Typos and abbreviations: unknown words are corrected to the nearest domain word with rapidfuzz.

Only words the reader does not know are corrected, and only to a word of ``DOMAIN_WORDS`` within one edit (words of
up to six letters) or two (longer words), counting a swap of two letters as one edit (OSA distance), so that
"buidlings" reads as "buildings" and "structres" as "structures" while "rest" never becomes "west".
"""

from __future__ import annotations

import re

from rapidfuzz import process
from rapidfuzz.distance import OSA

from agent.reading.vocabulary import DOMAIN_WORDS, KNOWN_WORDS

_DOMAIN = frozenset(DOMAIN_WORDS)
_CHOICES = sorted(_DOMAIN)
_WORD = re.compile(r"[a-z][a-z'-]{3,}")
ABBREVIATIONS = {
    "bldg": "building",
    "bldgs": "buildings",
    "rd": "road",
    "rds": "roads",
    "st": "street",
    "sts": "streets",
    "cnt": "count",
    "num": "number",
    "pct": "percent",
    "perc": "percent",
    "approx": "about",
    "u": "you",
    "r": "are",
    "pls": "please",
    "plz": "please",
    "nw": "north-west",
    "sw": "south-west",
    "btm": "bottom",
    "sq": "square",
    "diff": "difference",
    "chg": "change",
    "chgd": "changed",
    "cel": "cell",
    "cels": "cells",
}
_ABBREVIATION = re.compile(r"\b(" + "|".join(map(re.escape, ABBREVIATIONS)) + r")\b")


def correct(folded: str) -> tuple[str, list[tuple[str, str]]]:
    """The text with abbreviations expanded and misspelt domain words corrected, and the corrections made."""
    fixes: list[tuple[str, str]] = []

    def expand(match: re.Match[str]) -> str:
        fixes.append((match.group(1), ABBREVIATIONS[match.group(1)]))
        return ABBREVIATIONS[match.group(1)]

    text = _ABBREVIATION.sub(expand, folded)

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        if word in _DOMAIN or word in KNOWN_WORDS or "'" in word:
            return word
        limit = 1 if len(word) <= 6 else 2
        best = process.extractOne(word, _CHOICES, scorer=OSA.distance, score_cutoff=limit)
        if best is None:
            return word
        fixes.append((word, best[0]))
        return best[0]

    return _WORD.sub(fix, text), fixes
