"""The deterministic reader: question text (and the thread's earlier requests) in, a typed :class:`Request` out.

Reading order: the language (a language the reader does not know is said so, never guessed); a hostile request
(read a file, run code, change instructions, write elsewhere) before anything else; then the ask, the subject, the
direction, the regions, the unit and the polarity. A short or elliptical question ("and roads?", "what about the
bottom right?", "which cell has the most?") takes what it leaves out from the thread's last request.

The question is only ever matched against word lists: it is data, never a command, a path or a setting.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from agent.reading import lexicon as lx
from agent.reading.language import detect_language, fold
from agent.reading.matching import correct
from agent.reading.places import names_compass, regions_in
from agent.reading.request import AOI_REGION, FACT_ASKS, ReadingCode, ReadingStep, Request
from tools.orientation import Orientation

MAX_QUESTION_CHARS = 2000
_OPEN = re.compile(
    r"\b(?:built on|instead of|replac\w*|turned into|converted|what kind|what type|type of|kind of|used to be"
    r"|what was there|why did|why were|why was|cause[ds]?|reason for|season|weather|flood\w*|fire|earthquake"
    r"|damage\w*)\b"
)
_WHOLE = re.compile(r"\b(?:overall|in total|whole|entire|everywhere|all over|altogether|in all|the image as a whole)\b")
_WH = re.compile(
    r"\b(?:what|which|who|why|how|when|que|quoi|quel\w*|qué|cual\w*|was|welche\w*|warum|qual|quais)\b|什么|为什么"
)
_FOLLOW_ONLY = re.compile(r"^\W*(?:and|what about|how about|same for|also)\W*$")


def _ordered_categories(text: str) -> list[str]:
    return [c for c, rx in (("road", lx.ROAD), ("building", lx.BUILDING)) if rx.search(text)]


_PLACEHOLDERS = re.compile(r"%[-+ #0-9.]*[sdifrx](?![a-z])|\{[0-9a-z_]*\}")
"""printf and str.format slots left in a question by a template ("how many {0} %s buildings?"): not a unit."""


def _unit(text: str) -> str | None:
    for unit, pattern in lx.UNITS:
        if pattern.search(text):
            return unit
    return None


def _last_fact_request(previous: Sequence[Request]) -> Request | None:
    for request in reversed(previous):
        if request.ask in FACT_ASKS:
            return request
    return None


class _Reading:
    """What the words of one question say, before the ask is chosen."""

    def __init__(self, text: str, original: str, lang: str) -> None:
        self.text = text
        self.words = re.findall(r"\w+", text) if lang != "zh" else list(text)
        self.categories = _ordered_categories(text)
        self.other = next((name for name, rx in lx.OTHER_SUBJECTS.items() if rx.search(text)), None)
        new, gone = bool(lx.NEW.search(text)), bool(lx.DEMOLISHED.search(text))
        self.direction = "new" if new and not gone else "demolished" if gone and not new else "any"
        self.regions = regions_in(text, original, lang)
        self.unit = _unit(text)
        negative_text = text.replace("有没有", "") if lang == "zh" else text
        self.negative = bool(lx.NEGATIVE.search(negative_text))
        self.rank = "most" if lx.RANK_MOST.search(text) else "least" if lx.RANK_LEAST.search(text) else None
        self.whole = bool(_WHOLE.search(text))
        pick = lx.AOI_PICK.search(text)
        self.aoi_pick = next((g.strip("\"'") for g in pick.groups() if g), None) if pick else None
        self.aoi = bool(self.aoi_pick or lx.AOI.search(text))
        if self.aoi and lx.AOI_RANK.search(text):
            self.rank = self.rank or "most"
        self.export_format = next((fmt for fmt, rx in lx.EXPORT_FORMATS if rx.search(text)), "geojson")
        self.largest = bool(lx.LARGEST_ONE.search(text))
        self.size = bool(lx.SIZE.search(text)) and self.unit is None  # "how large, in hectares?" asks an area
        self.unwritten_format = next((fmt for fmt, rx in lx.UNWRITTEN_FORMATS if rx.search(text)), None)

    @property
    def short(self) -> bool:
        return len(self.words) <= (8 if self.words and len(self.words[0]) == 1 else 5)

    @property
    def has_subject(self) -> bool:
        return bool(self.categories or self.other or self.regions or self.direction != "any" or self.unit or self.aoi)


def _choose_ask(r: _Reading, text: str, where_word: bool) -> tuple[str, ReadingCode | None]:
    """The ask the wording names, and the rule that named it; ``""`` when it names none (a follow-up or an off-topic
    text)."""
    compare_words = bool(lx.COMPARE.search(text)) or (" or " in f" {text} " and bool(r.rank))
    if lx.EXPLAIN.search(text) and (len(r.words) <= 4 or not (r.categories or r.regions or _OPEN.search(text))):
        return "explain", "explain"
    if lx.CONFIRM.search(text):
        return "confirm", "confirm"
    if lx.EXPORT.search(text):
        return "export", "export"
    if r.largest:
        return "where", "largest"
    if (
        len(r.regions) >= 2
        and (compare_words or re.search(r"\b(?:or|ou|o|oder)\b|还是|或", text))
        and (
            compare_words
            or r.rank
            or re.search(r"\b(?:more|less|bigger|larger|greater|smaller|plus|mas|mehr|mais)\b|更", text)
        )
    ):
        return "compare", "compare_regions"
    if len(r.categories) == 2 and compare_words and not lx.COUNT.search(text.replace("how many more", "")):
        return "compare", "compare_categories"
    if len(r.categories) == 2 and re.search(
        r"\bmore (?:roads?|buildings?)\b.*\bor\b|\bwhich (?:changed|had) more\b", text
    ):
        return "compare", "compare_categories"
    area_unit = r.unit in ("m2", "ha", "km2", "acre", "px", "percent")
    if r.size:
        return "how_much", "size_scale"
    if lx.COUNT.search(text) and not area_unit:
        return "count", "count"
    if lx.HOW_MUCH.search(text) or (r.unit and r.unit != "percent") or (lx.COUNT.search(text) and area_unit):
        return "how_much", "how_much"
    if r.rank and (lx.WHERE.search(text) or lx.REGION_NOUNS.search(text)):
        return "where", "rank"
    if lx.WHERE.search(text) or where_word:
        return "where", "where"
    if _OPEN.search(text) and (lx.YES_NO_START.search(text) or lx.DESCRIBE.search(text) or r.other):
        return "open", "open"
    if lx.DESCRIBE.search(text):
        return "describe", "describe"
    if lx.YES_NO_START.search(text) and (
        lx.CHANGE_WORDS.search(text) or r.categories or r.negative or r.regions or r.direction != "any"
    ):
        return "changed", "yes_no"
    if r.negative:  # "do the images show the same thing?": a question about sameness, not a request to show
        return "changed", "sameness"
    if lx.SHOW.search(text):
        return "show", "show"
    return "", None


def _inherit(fields: dict[str, Any], reading: _Reading, anchor: Request, ask: str) -> list[str]:
    """Fill what an elliptical question leaves out from the thread's last factual request; say what was taken."""
    inherited = []
    if not reading.categories and not reading.other and anchor.categories:
        fields["categories"] = list(anchor.categories)
        inherited.append("subject")
    if fields["direction"] == "any" and anchor.direction != "any" and not reading.categories:
        fields["direction"] = anchor.direction
    keeps_place = not (reading.regions or reading.whole or reading.rank) and ask != "compare"
    if keeps_place and anchor.region != "image":
        fields["region"] = anchor.region
        inherited.append("region")
    if ask == "compare" and not fields["compared"] and anchor.compared:
        fields["compared"] = list(anchor.compared)
    if ask == anchor.ask == "changed" and not reading.negative:
        fields["polarity"] = anchor.polarity
    if ask in ("how_much", "compare") and not reading.unit and anchor.unit:
        fields["unit"] = anchor.unit
    return inherited


def read_request(question: str, previous: Sequence[Request] = ()) -> Request:
    """Read ``question``; ``previous`` holds the thread's earlier requests, oldest first."""
    raw = question.strip()[:MAX_QUESTION_CHARS]
    lower = raw.lower()
    folded = _PLACEHOLDERS.sub(" ", fold(raw))
    last = previous[-1] if previous else None
    if lx.HOSTILE.search(folded) or lx.HOSTILE.search(lower):
        lang = detect_language(lower, folded, use_model=False)[0] or "en"
        return Request(ask="hostile", language=lang, detected_language=lang, steps=[ReadingStep(code="hostile")])
    lang, detected = detect_language(lower, folded)
    if lang is not None and last is not None and detected == lang and len(folded.split()) <= 3:
        signals, own = lx.LANGUAGE_SIGNALS.get(lang), lx.LANGUAGE_SIGNALS.get(last.language)
        if (
            lang == "en"
            and last.language != "en"
            and (not (signals and signals.search(folded)) or (own and own.search(folded)))
        ):
            lang = detected = last.language  # "et ?" / "y?" / "und in Hektar?" in a French, Spanish, German thread
    if lang is None:
        return Request(
            ask="unsupported_language",
            language="en",
            detected_language=detected,
            steps=[ReadingStep(code="unsupported_language", value=detected)],
        )
    base = {"language": lang, "detected_language": detected}
    text, fixes = correct(folded) if lang == "en" else (folded, [])
    reading = _Reading(text, raw, lang)
    ask, why = _choose_ask(reading, text, "où" in lower)
    wants_overlay = bool(lx.SHOW.search(text)) and ask != "show"
    wants_export = bool(lx.EXPORT.search(text)) and ask != "export"
    steps = [ReadingStep(code="corrected", fixes=list(fixes))] if fixes else []
    anchor = _last_fact_request(previous)
    elliptic = anchor is not None and (
        bool(lx.FOLLOW_UP_START.search(text)) or len(reading.words) <= 2 or bool(lx.ELLIPTIC_PRONOUNS.search(text))
    )
    follow_up = False
    if not ask:
        if anchor is not None and (elliptic and (reading.has_subject or reading.rank or _FOLLOW_ONLY.search(text))):
            ask = anchor.ask
            if ask in ("count", "where", "changed") and reading.unit:
                ask = "how_much"
            if reading.rank and ask != "compare":
                ask = "where"
            if ask in ("export", "show"):
                ask = "count" if reading.categories else "changed"
            follow_up, why = True, "follow_up"
        elif (lx.CHANGE_WORDS.search(text) or reading.direction != "any") and (
            reading.has_subject or (text.endswith("?") and not _WH.search(text))
        ):  # "des bâtiments ont-ils été démolis ?": a direction word names a change too
            ask, why = "changed", "change_with_subject"
        elif reading.other or _OPEN.search(text) or lx.IMAGE_WORDS.search(text) or lx.CHANGE_WORDS.search(text):
            ask, why = "open", "open"
        elif reading.categories and reading.short:
            ask, why = "count", "category_alone"
        elif lx.SHOW.search(text):
            ask, why = "show", "show"
        else:
            return Request(ask="off_topic", steps=[ReadingStep(code="off_topic"), *steps], **base)
    fields = {
        "categories": reading.categories,
        "other_subject": reading.other,
        "direction": reading.direction,
        "region": reading.regions[0] if len(reading.regions) == 1 else "image",
        "compared": reading.regions[:2] if ask == "compare" and len(reading.regions) >= 2 else [],
        "rank": reading.rank if ask == "where" else None,
        "polarity": "negative" if reading.negative and ask == "changed" else "positive",
        "unit": reading.unit if ask in ("how_much", "compare") else None,
    }
    if reading.aoi and (reading.aoi_pick or not reading.regions) and ask in FACT_ASKS:
        fields["region"] = AOI_REGION  # the user's polygons; the read step drops it when the thread has none
        fields["rank"] = reading.rank
        fields["other_subject"] = None  # "fields" here are the user's parcels, not a kind of land cover
    if len(reading.regions) >= 2 and ask != "compare":
        cells = [r for r in reading.regions if len(r) == 2]
        fields["region"] = "cells:" + "+".join(cells) if len(cells) == len(reading.regions) else reading.regions[0]
    if ask in ("explain", "confirm") and anchor is not None:
        fields = {k: getattr(anchor, k) for k in fields}
        follow_up = True
    elif anchor is not None and elliptic and ask in FACT_ASKS and ask not in ("export", "show"):
        inherited = _inherit(fields, reading, anchor, ask)
        if inherited:
            follow_up = True
            steps.append(ReadingStep(code="inherited", fields=inherited))
    if ask == "compare" and not fields["compared"] and len(fields["categories"]) < 2:
        # a comparison without two places or two categories is not one: one place reads as where, one category as
        # a count
        ask = "count" if fields["categories"] else "where"
        why, steps = None, [ReadingStep(code="one_sided_compare", value=ask)]
    if why:  # the rule that chose the ask comes first (a follow-up names the previous question's ask)
        steps.insert(0, ReadingStep(code=why, value=anchor.ask if why == "follow_up" and anchor else None))
    return Request(
        ask=ask,  # type: ignore[arg-type]
        follow_up=follow_up,
        wants_overlay=wants_overlay,
        wants_export=wants_export,
        export_format=reading.export_format,  # type: ignore[arg-type]
        unwritten_format=reading.unwritten_format,
        size_scale=reading.size and ask == "how_much",
        referent="largest" if reading.largest and ask == "where" else None,
        aoi_pick=reading.aoi_pick if fields["region"] == AOI_REGION else None,
        steps=steps,
        **fields,  # type: ignore[arg-type]
        **base,
    )


def orient_request(request: Request, question: str, orientation: Orientation | None) -> Request:
    """Turn regions the question placed with compass words to the image sides that face them.

    The reader writes "the south" as the bottom row, true only on a north-up raster. On a south-up, rotated or
    mirrored one (``tools.orientation``) the region and compared regions become the image's own, and a reading
    step says so. Image words (top, left, cell ids) and regions inherited from earlier turns (already turned) stay.
    """
    if orientation is None or orientation.north_up or (request.region == "image" and not request.compared):
        return request
    if request.ask in ("explain", "confirm"):  # they repeat the previous request, whose regions are already turned
        return request
    raw = question.strip()[:MAX_QUESTION_CHARS]
    folded = fold(raw)
    text = correct(folded)[0] if request.language == "en" else folded
    if not names_compass(text, raw, request.language):
        return request
    region = orientation.image_region(request.region)
    compared = [orientation.image_region(key) for key in request.compared]
    turned = ReadingStep(code="compass_turned", value=orientation.facing["top"])
    return request.with_step(turned, region=region, compared=compared)
