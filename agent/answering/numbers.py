"""Numbers in an answer, written the way the question's language writes them (Babel's locale data).

``12.5%`` and ``8,744`` in English, ``12,5 %`` and ``8 744`` in French, ``12,5 %`` and ``8.744`` in German.
"""

from __future__ import annotations

import copy
import math
from functools import lru_cache
from typing import Literal

from babel import Locale
from babel.numbers import NumberPattern

LOCALES = {"en": "en_US", "fr": "fr_FR", "es": "es_ES", "de": "de_DE", "pt": "pt_PT", "zh": "zh_Hans_CN"}


@lru_cache(maxsize=64)
def _pattern(lang: str, kind: str, digits: int) -> tuple[NumberPattern, Locale]:
    """The language's own decimal or percent pattern, with exactly ``digits`` decimals."""
    locale = Locale.parse(LOCALES.get(lang, "en_US"))
    formats = locale.percent_formats if kind == "percent" else locale.decimal_formats
    pattern = copy.copy(formats[None])
    pattern.frac_prec = (digits, digits)
    return pattern, locale


def _apply(value: float, lang: str, kind: str, digits: int) -> str:
    pattern, locale = _pattern(lang, kind, digits)
    return pattern.apply(value, locale)


def plural(n: int, lang: str) -> Literal["one", "other"]:
    """The catalogs' plural form for ``n`` things (CLDR): "one" for 1, and in French for 0 too ("0 zone modifiée");
    "other" for the rest (CLDR's "many", French millions, takes the plural's words)."""
    return "one" if Locale.parse(LOCALES.get(lang, "en_US")).plural_form(abs(int(n))) == "one" else "other"


def percent(value: float, lang: str, digits: int = 1) -> str:
    """A share as a percentage with ``digits`` decimals: 0.125 → "12.5%" (en), "12,5 %" (fr)."""
    return _apply(value, lang, "percent", digits)


def integer(value: int, lang: str) -> str:
    """A whole number with the language's grouping: 8744 → "8,744" (en), "8 744" (fr), "8.744" (de)."""
    return _apply(int(value), lang, "decimal", 0)


def decimal(value: float, lang: str, digits: int) -> str:
    """A number with exactly ``digits`` decimals and the language's separators."""
    return _apply(value, lang, "decimal", digits)


def significant(value: float, lang: str, digits: int) -> str:
    """A number to ``digits`` significant digits without trailing zeros (like ``:.4g``), in the language's style."""
    rounded = float(f"{value:.{digits}g}")
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded)))) if rounded else 0
    text = _apply(rounded, lang, "decimal", decimals)
    if decimals:
        sign = _pattern(lang, "decimal", 0)[1].number_symbols["latn"]["decimal"]
        text = text.rstrip("0").rstrip(sign)
    return text
