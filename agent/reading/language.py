"""Which language a question is in: the reader's own word lists first, py3langid's shipped model for the rest.

Short questions ("and roads?") carry too little text for a statistical model, so the words the reader knows decide
when they can; py3langid (a 1 MB model that ships in the package) answers only when no known word is present, which
is also how a question in a language the reader does not understand is recognised as such.
"""

from __future__ import annotations

import re
import unicodedata

from agent.reading.lexicon import FRENCH_ONLY, GERMAN_ONLY, LANGUAGE_SIGNALS, PORTUGUESE_ONLY, SPANISH_ONLY

SUPPORTED = ("en", "fr", "es", "de", "pt", "zh")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_KANA_HANGUL = re.compile(r"[\u3040-\u30ff\uac00-\ud7af]")
_OTHER_SCRIPT = re.compile(r"[\u0400-\u04ff\u0590-\u06ff\u0900-\u0dff\u0e00-\u0e7f\u0370-\u03ff]")
_DISTINCT = {"fr": FRENCH_ONLY, "es": SPANISH_ONLY, "pt": PORTUGUESE_ONLY, "de": GERMAN_ONLY}


def fold(text: str) -> str:
    """Lower-case, accents removed, ``ß`` → ``ss``, typographic apostrophes straightened, spaces collapsed."""
    text = text.lower().replace("ß", "ss").replace("\u2019", "'").replace("\u00b4", "'")
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", stripped)).strip()


def _langid(text: str) -> str:
    import py3langid  # imported on first need: most questions are decided by the word lists

    return str(py3langid.classify(text)[0])


def detect_language(lower: str, folded: str, *, use_model: bool = True) -> tuple[str | None, str]:
    """``(supported language or None, detected code)``; None means a language the reader does not understand.

    ``use_model=False`` decides from the word lists alone (English when they say nothing), for text such as code.
    """
    if _KANA_HANGUL.search(lower):
        return None, "ja" if re.search(r"[\u3040-\u30ff]", lower) else "ko"
    if _HAN.search(lower):
        return "zh", "zh"
    if _OTHER_SCRIPT.search(lower):
        return (None, _langid(lower)) if use_model else ("en", "en")
    english = len(LANGUAGE_SIGNALS["en"].findall(folded))
    scores = {lang: len(pattern.findall(folded)) for lang, pattern in _DISTINCT.items()}
    scores["fr"] += lower.count("où")
    best = max(scores, key=lambda lang: scores[lang])
    if scores[best] and scores[best] > english:
        tied = [lang for lang, score in scores.items() if score == scores[best]]
        if len(tied) > 1 and use_model:
            guess = _langid(lower)
            return (guess, guess) if guess in tied else (tied[0], tied[0])
        return best, best
    if english:
        return "en", "en"
    words = re.findall(r"[^\W\d_]{2,}", folded)
    if len(words) < 3 or not use_model:
        return "en", "en"
    guess = _langid(lower)
    return (guess, guess) if guess in SUPPORTED else (None, guess)
