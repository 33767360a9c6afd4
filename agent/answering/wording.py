"""The wording of answers in the six languages the reader understands: templates, nouns, region names.

The words themselves live in the gettext catalogs (``agent.answering.catalog``); this module fills their slots and
applies the little grammar they need (contractions, German cases). Every template takes the same named slots in
every language, so the composer never branches on language.
"""

from __future__ import annotations

import re

from agent.answering.catalog import message
from agent.answering.numbers import integer, plural, significant
from deltavlm.rules import CELL_IDS

AREA_UNITS = ("m2", "ha", "km2", "acre")
UNIT_SYMBOLS = {"m2": "m²", "ha": "ha", "km2": "km²", "acre": "acres"}


def say(key: str, lang: str, **slots: object) -> str:
    """The catalog's template ``key`` in ``lang`` with its slots filled."""
    return grammar(message(key, lang).format(**slots), lang)


def unit_name(unit: str, lang: str) -> str:
    return message(f"unit:{unit}", lang)


def _named(key: str, lang: str) -> str:
    return message(f"region:{key}", lang)


def _cell(key: str, lang: str) -> str:
    v, h = message(f"cell-row:{key[0]}", lang), message(f"cell-column:{key[1]}", lang)
    return message("region:cell", lang).format(v=v, h=h, id=key)


_NAMED_KEYS = ("image", "row:top", "row:middle", "row:bottom", "col:left", "col:center", "col:right", "half:top")
_NAMED_KEYS += ("half:bottom", "half:left", "half:right")


def _german_dative(name: str) -> str:
    """ "die obere Reihe" → "der oberen Reihe", "das Bild" → "dem Bild" (the region names' only cases)."""
    if name.startswith("das "):
        return "dem " + name[4:]
    return re.sub(r"^die (\w+e) ", r"der \1n ", name) if re.match(r"^die \w+e [A-ZÄÖÜ]", name) else "der " + name[4:]


def grammar(text: str, lang: str) -> str:
    """Contractions and cases after the slots are filled: pt "de a" → "da", de "in die Zelle" → "in der Zelle"."""
    if lang == "pt":
        for a, b in (("de a ", "da "), ("de o ", "do "), ("em a ", "na "), ("em o ", "no ")):
            text = re.sub(rf"\b{a}", b, text)
    elif lang == "es":
        text = re.sub(r"\bde el ", "del ", text)
    elif lang == "de":
        for name in _GERMAN_NAMES:
            for prep in ("in", "von"):
                text = text.replace(f"{prep} {name}", f"{prep} {_german_dative(name)}")
        text = text.replace("in dem ", "im ").replace("von dem ", "vom ")
    return text


def noun(category: str, lang: str, count: int | None = None) -> str:
    """A category's noun for ``count`` things, or named without a number (``count=None``: "roads", Chinese 道路
    without the measure word a count takes)."""
    number = "generic" if count is None else plural(count, lang)
    return message(f"noun:{category}:{number}", lang)


def fact_value(value: object, lang: str, *, as_logged: bool = False) -> str:
    """A fact's value in words, the same wherever it is shown (the evidence panel, "why?", the model's parse):
    yes/no, a number in the language's style, a list of cells ("TL, TC"), "none" for nothing.

    A mapping is per category: in words ("3 roads, 5 buildings", "buildings TL TC, roads -"), or with ``as_logged``
    by the category codes the turn log and the rules use ("road 3, building 5"), which the evidence panel shows so
    a reader can match them."""
    if value is None:
        return message("none", lang)
    if isinstance(value, bool):
        return message("yes" if value else "no", lang).lower()
    if isinstance(value, int):
        return integer(value, lang)
    if isinstance(value, float):
        return significant(value, lang, 3)
    if isinstance(value, list):
        return series([str(v) for v in value], lang) or message("none", lang)
    if isinstance(value, dict):
        return series([_category_value(k, v, lang, as_logged) for k, v in value.items()], lang) or message("none", lang)
    return str(value)


def _category_value(category: str, value: object, lang: str, as_logged: bool) -> str:
    """One category's entry of a mapping: its cells (space-separated, since commas separate the entries; "-" for
    none) or its count."""
    shown = (" ".join(map(str, value)) or "-") if isinstance(value, list) else fact_value(value, lang)
    if as_logged:
        return f"{category} {shown}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{shown} {noun(category, lang, value)}"
    return f"{noun(category, lang)} {shown}"


def region_name(key: str, lang: str, facing: dict[str, str] | None = None) -> str:
    """A region key in words: ``BL`` → "the bottom-left cell (BL)", ``half:top`` → "the top half (north)".

    ``facing`` maps each image side to the compass direction it faces when the raster is not north-up
    (``tools.orientation``): a side's name then carries that direction ("the top half (south)")."""
    if key in _NAMED_KEYS:
        phrase = _named(key, lang)
        side = key.split(":")[-1]
        return _with_compass(phrase, key, facing[side], lang) if facing and side in facing else phrase
    if key == "CC":
        return _named("CC", lang)
    if key in CELL_IDS:
        return _cell(key, lang)
    if key.startswith("cells:"):
        return join([region_name(c, lang, facing) for c in key[len("cells:") :].split("+")], lang)
    raise ValueError(f"unknown region {key!r}")


CLAUSE_SEPARATORS = {"fr": " ; ", "zh": "；"}
"""Between clauses: French sets a space before the semicolon, Chinese uses the full-width one."""


def clauses(parts: list[str], lang: str) -> str:
    """Clauses joined with the language's semicolon: "a; b" ("a ; b" in French)."""
    return CLAUSE_SEPARATORS.get(lang, "; ").join(parts)


def gap(lang: str) -> str:
    """What goes between two whole sentences: a space, none in Chinese (its full stop 。 is wide)."""
    return "" if lang == "zh" else " "


def sentences(parts: list[str], lang: str) -> str:
    """Whole sentences one after the other (the empty ones left out)."""
    return gap(lang).join(part for part in parts if part)


def series(items: list[str], lang: str) -> str:
    """Items listed with commas only (figures such as "TL 12.5%, TC 3.0%"); Chinese lists with "、"."""
    return ("、" if lang == "zh" else ", ").join(items)


def join(items: list[str], lang: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    sep = "、" if lang == "zh" else ", "
    return sep.join(items[:-1]) + f" {message('and', lang)} " + items[-1] if lang != "zh" else sep.join(items)


_NORTH_UP_SIDE = {"north": "top", "south": "bottom", "west": "left", "east": "right"}


def _with_compass(phrase: str, key: str, direction: str, lang: str) -> str:
    """``phrase`` (a side's name on a north-up image, "the top row (north)") with its compass word replaced by that
    of ``direction``, borrowed from the north-up name of the same kind that faces it ("the top row (south)")."""
    kind = key.split(":")[0]
    side = _NORTH_UP_SIDE[direction]
    donor_kind = kind if kind == "half" else ("row" if side in ("top", "bottom") else "col")
    donor = _named(f"{donor_kind}:{side}", lang)
    opening = "（" if "（" in phrase else "("
    closing = "）" if opening == "（" else ")"
    if opening not in phrase or opening not in donor:
        return phrase
    word = donor[donor.rindex(opening) + 1 : donor.rindex(closing)]
    return phrase[: phrase.rindex(opening) + 1] + word + phrase[phrase.rindex(closing) :]


_SIDED = [key for key in _NAMED_KEYS if key.split(":")[-1] in ("top", "bottom", "left", "right")]
_GERMAN_NAMES = sorted(
    {_named(key, "de") for key in _NAMED_KEYS}
    | {_with_compass(_named(key, "de"), key, d, "de") for key in _SIDED for d in _NORTH_UP_SIDE}
    | {_named("CC", "de")}
    | {_cell(c, "de") for c in CELL_IDS if c != "CC"},
    key=len,
    reverse=True,
)


def sentence(text: str) -> str:
    """Capitalised, with a full stop (Chinese: 。)."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".。!?" else text + ("。" if any("\u4e00" <= ch <= "\u9fff" for ch in text) else ".")
