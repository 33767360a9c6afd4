"""Answers built from the request: the first sentence answers exactly what was asked, the evidence follows.

A yes/no gets yes or no in the question's own polarity, a count gets the number, a region question gets that
region, a unit gets that unit (or says why it cannot). Whole-image facts come from the reconciled ledger (so that
DeltaVLM and the verifiers are weighed as before); region facts come from the verifiers' per-region numbers. A
category is never claimed from a mask without categories. When the stated fact's confidence is below
``HEDGE_BELOW`` the first sentence says "probably" and the answer names a better source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.answering.catalog import message
from agent.answering.exports import FORMAT_NAMES
from agent.answering.numbers import decimal, integer, percent, plural, significant
from agent.answering.orientation import facing, orientation_sentence
from agent.answering.provenance import confidence_reason, gsd_disagreement, mask_detail, pixel_size_text
from agent.answering.wording import (
    AREA_UNITS,
    UNIT_SYMBOLS,
    clauses,
    join,
    noun,
    region_name,
    say,
    sentence,
    sentences,
    series,
    unit_name,
)
from agent.ledger import Fact
from agent.reading import LANGUAGE_NAMES, Request
from agent.turn.state import PairFacts
from deltavlm.rules import CATEGORIES, CELL_IDS, SIZE_SCALE, cell_is_changed, size_class
from tools.areas import convert
from tools.masks import MaskSource
from tools.regions import COLUMNS, ROWS, RegionStats, union_stats
from tools.verify import Verification

HEDGE_BELOW = 0.8
"""Below this confidence a stated fact is hedged ("probably") and a better source is suggested."""
EQUAL_WITHIN = 0.005
"""Two regions whose changed shares differ by less than half a percentage point changed "about equally"."""

DIRECTION_ASKS = ("changed", "count", "where", "how_much", "describe", "compare")
"""Asks whose answer says that the mask cannot tell built from demolished, when the question named a direction."""
FITTING_MEASURE = {"changed": "binary_accuracy", "where": "grid_f1", "count": "count_error"}
"""The held-out score that fits each kind of question (``MaskSource.measured``): a yes/no answer shows its yes/no
accuracy, a where-answer its grid F1; a kind with nothing measured shows the mask's confidence."""
CATEGORY_FOLLOW_UPS = ("changed", "count", "where", "how_much", "describe")
"""Asks a follow-up about categories the mask lacks gets any-change figures for, once the refusal was said."""
OBJECT_CORE_SHARE = 0.8
"""A where-answer names the cells holding at least this share of the changed objects."""


@dataclass
class Knowledge:
    """What this turn can state: reconciled facts, the verifiers' numbers (with regions and areas), the model."""

    facts: dict[str, Fact]
    pair: PairFacts | None
    has_model: bool = False
    model_text: str | None = None
    said: frozenset[str] = frozenset()
    """Notes said earlier in the thread, said once: "calibration" (how the confidence was measured), "categories"
    (the mask cannot separate the categories asked about)."""


@dataclass
class Composed:
    text: str
    first: str
    stated: list[str] = field(default_factory=list)
    confidence: float = 1.0
    regions: list[str] = field(default_factory=list)
    """The region keys whose numbers the answer used (for its evidence)."""
    said: list[str] = field(default_factory=list)
    """The once-per-thread notes this answer said (``Knowledge.said``)."""
    refusal: bool = False
    """The first sentence says what cannot be told (no categories, no pixel size, no direction, another subject):
    not an estimate, so it is never hedged, whatever the language's words."""


def _pct(value: float, lang: str = "en") -> str:
    return percent(value, lang)


def _px(value: int, lang: str = "en") -> str:
    return integer(value, lang)


def _area(m2: float, unit: str, lang: str = "en") -> str:
    value = convert(m2, unit)  # type: ignore[arg-type]
    digits = 0 if unit == "m2" else 3 if unit == "km2" else 2
    return f"{decimal(value, lang, digits)} {UNIT_SYMBOLS[unit]}"


def mask_phrase(source: MaskSource, lang: str = "en") -> str:
    """The mask an answer rests on, e.g. "your change mask (user, confidence 1.00)"."""
    kind = message(f"mask_kind:{source.kind}", lang)
    return say("mask_phrase", lang, mask=kind, provider=source.provider, conf=decimal(source.confidence, lang, 2))


def shares_list(shares: dict[str, float], lang: str, digits: int = 1) -> str:
    """Cell ids with their shares, in the given order: "TL 12.5%, TC 0.0%" ("TL 12,5 %, TC 0,0 %" in French)."""
    return series([f"{cell} {percent(share, lang, digits)}" for cell, share in shares.items()], lang)


class _Turn:
    """One answer being written: the request, what is known, and the sentences so far."""

    def __init__(self, request: Request, k: Knowledge) -> None:
        self.r, self.k, self.lang = request, k, request.language
        self.p = k.pair
        self.source_conf = float(k.pair.verification.source.confidence) if k.pair else 1.0
        self.categorical = bool(k.pair and k.pair.verification.source.categorical)
        self.threshold = float(k.pair.regions.threshold) if k.pair else 0.05
        self.evidence: list[str] = []
        self.stated: list[str] = []
        self.fact_confidences: list[float] = []
        self.refused = False  # categories asked of a mask without them
        self.refusal = False  # the answer's first sentence refuses (categories, a unit without a pixel size)
        self.used: list[str] = []

    # ---------------------------------------------------------------- numbers, in the question's language
    def pct(self, value: float) -> str:
        return _pct(value, self.lang)

    def px(self, value: int) -> str:
        return _px(value, self.lang)

    def area(self, m2: float, unit: str) -> str:
        return _area(m2, unit, self.lang)

    # ---------------------------------------------------------------- facts
    @property
    def v(self) -> Verification:
        assert self.p is not None
        return self.p.verification

    def stats(self, key: str) -> RegionStats:
        assert self.p is not None
        regions = self.p.regions.regions
        if key not in self.used:
            self.used.append(key)
        if not key.startswith("cells:"):
            return regions[key]
        return union_stats(self.p.regions, key[len("cells:") :].split("+"), self.threshold)

    def fact(self, key: str) -> Fact | None:
        found = self.k.facts.get(key)
        if found is not None:
            self.stated.append(key)
            self.fact_confidences.append(found.confidence)
        return found

    @property
    def confidence(self) -> float:
        """The lowest confidence among the ledger facts stated, else the mask's (region facts are the mask's)."""
        return min(self.fact_confidences) if self.fact_confidences else self.source_conf

    def region(self, key: str | None = None) -> str:
        return region_name(key or self.r.region, self.lang, facing(self.p.orientation if self.p else None))

    def cells_in(self, key: str) -> list[str]:
        if key == "image":
            return list(CELL_IDS)
        if key in CELL_IDS:
            return [key]
        if key.startswith("cells:"):
            return key[len("cells:") :].split("+")
        kind, name = key.split(":")
        if kind == "row":
            return list(ROWS[name])
        if kind == "col":
            return list(COLUMNS[name])
        return {
            "top": ["TL", "TC", "TR"],
            "bottom": ["BL", "BC", "BR"],
            "left": ["TL", "CL", "BL"],
            "right": ["TR", "CR", "BR"],
        }[name]

    def categories_unknown(self) -> bool:
        """Categories asked of a mask that has none: say so first, never guess."""
        return bool(self.r.categories) and not self.categorical

    def no_categories(self) -> str:
        nouns = join([noun(c, self.lang) for c in self.r.categories], self.lang)
        self.refused = self.refusal = True
        return say("no_categories", self.lang, nouns=nouns, mask=mask_phrase(self.v.source, self.lang))

    def yes_no(self, value: bool) -> str:
        positive = value if self.r.polarity == "positive" else not value
        return say("yes" if positive else "no", self.lang)

    # ---------------------------------------------------------------- asks
    def changed(self) -> str:
        r = self.r
        if r.categories and not self.categories_unknown():
            counts = self.category_counts()
            if counts is None:
                return self.no_categories()
            any_changed = any(n > 0 for n in counts.values())
            if any_changed:
                count = join([f"{self.px(n)} {noun(c, self.lang, n)}" for c, n in counts.items()], self.lang)
                clause = say("category_changed", self.lang, count=count, region=self.region())
                if r.direction != "any":
                    return clause
            else:
                clause = say(
                    "category_unchanged", self.lang, noun=noun(r.categories[0], self.lang, 1), region=self.region()
                )
            return say("answer_clause", self.lang, answer=self.yes_no(any_changed), clause=clause)
        if self.categories_unknown():
            self.evidence.append(self.any_change_sentence())
            return self.no_categories()
        if r.region == "image":
            fact = self.fact("changed")
            changed = bool(fact.value) if fact else bool(self.v.summary.changed)
            pct = self.pct(self.v.summary.changed_fraction)
            if changed:
                clause = say("region_changed", self.lang, region=self.region(), pct=pct)
            else:
                clause = say("region_unchanged", self.lang, region=self.region())
            self.evidence.append(say("ev:rule_pair", self.lang))
            return say("answer_clause", self.lang, answer=self.yes_no(changed), clause=clause)
        stats = self.stats(r.region)
        if stats.changed:
            clause = say("region_changed", self.lang, region=self.region(), pct=self.pct(stats.fraction))
        elif stats.changed_pixels == 0:
            clause = say("region_unchanged", self.lang, region=self.region())
        else:
            clause = say(
                "region_below_rule",
                self.lang,
                region=self.region(),
                pct=self.pct(stats.fraction),
                thr=percent(self.threshold, self.lang, 0),
            )
        rule = say("rule:regions", self.lang, pct=percent(self.p.regions.threshold, self.lang, 0))
        self.evidence.append(say("ev:rule", self.lang, rule=rule))
        clause += self.cells_that_differ(r.region, bool(stats.changed))
        return say("answer_clause", self.lang, answer=self.yes_no(bool(stats.changed)), clause=clause)

    def cells_that_differ(self, region: str, changed: bool) -> str:
        """A region's verdict and its cells' verdicts can differ (a column at 4 % holding a cell at 7 %): then the
        answer names the cells, so a reader never sees "no" beside a changed cell of the same region."""
        cells = self.cells_in(region)
        if len(cells) < 2:
            return ""
        changed_cells = [c for c in cells if self.stats(c).changed]
        if not changed and changed_cells:
            named = [
                say("cell_share", self.lang, cell=self.region(c), pct=self.pct(self.stats(c).fraction))
                for c in changed_cells
            ]
            return clauses(["", say("region_cells_changed", self.lang, cells=join(named, self.lang))], self.lang)
        if changed and not changed_cells:
            top = max(cells, key=lambda c: self.stats(c).fraction)
            return ", " + say(
                "region_no_cell_changed", self.lang, top=self.region(top), pct=self.pct(self.stats(top).fraction)
            )
        return ""

    def category_counts(self) -> dict[str, int] | None:
        if self.r.region == "image":
            counts = {}
            for c in self.r.categories:
                fact = self.fact(f"count.{c}")
                if fact is None:
                    return None
                counts[c] = int(fact.value)
            return counts
        if not self.categorical:
            return None
        stats = self.stats(self.r.region)
        return {c: int(stats.category_objects[c]) for c in self.r.categories}

    def count(self) -> str:
        r = self.r
        if r.categories:
            counts = self.category_counts()
            if counts is None:
                self.evidence.append(self.any_change_sentence())
                if self.k.has_model:
                    self.evidence.append(say("ev:model_no_count", self.lang))
                return self.no_categories()
            parts = [
                say("count", self.lang, n=n, noun=noun(c, self.lang, n), region=self.region())
                for c, n in counts.items()
            ]
            return clauses(parts, self.lang)
        if r.region == "image":
            fact = self.fact("regions")
            n = int(fact.value) if fact else int(self.v.summary.changed_regions)
        else:
            n = int(self.stats(r.region).objects)
        if not self.categorical:
            self.evidence.append(say("ev:count_any_kind", self.lang))
        return say("count_changes", self.lang, n=n, noun=noun("change", self.lang, n), region=self.region())

    def values_for(self, key: str) -> float:
        stats = self.stats(key)
        if len(self.r.categories) == 1 and self.categorical:
            return float(stats.category_fractions[self.r.categories[0]])
        return float(stats.fraction)

    def cell_changed(self, cell: str, share: float) -> bool:
        pixels = int(self.stats(cell).pixels)
        return cell_is_changed(round(share * pixels), pixels, self.threshold)

    def nothing_in(self, key: str) -> str:
        if self.r.categories:
            return say(
                "category_unchanged", self.lang, noun=noun(self.r.categories[0], self.lang, 1), region=self.region(key)
            )
        return say("where_nothing", self.lang, region=self.region(key))

    def largest(self) -> str:
        """Where the largest counted object is, and its size: what "which is the largest one?" refers to."""
        assert self.p is not None
        key = self.r.categories[0] if len(self.r.categories) == 1 and self.categorical else "any"
        big = self.p.regions.largest.get(key)
        if big is None:
            return say("largest_none", self.lang)
        size = f"{self.px(big.pixels)} px"
        if big.area_m2 is not None:
            size = f"{self.area(big.area_m2, 'm2')} ({size})"
        return say("largest", self.lang, cell=self.region(big.cell), size=size)

    def where(self) -> str:
        r = self.r
        if r.referent == "largest":
            return self.largest()
        if self.categories_unknown():
            self.evidence.append(self.any_change_sentence())
            return self.no_categories()
        cells = self.cells_in(r.region)
        shares = {c: self.values_for(c) for c in cells}
        if r.rank:
            pick = max(cells, key=lambda c: shares[c]) if r.rank == "most" else min(cells, key=lambda c: shares[c])
            if r.rank == "most" and shares[pick] == 0:
                return self.nothing_in(r.region)
            ranked = {c: shares[c] for c in sorted(cells, key=lambda c: -shares[c])}
            self.evidence.append(say("ev:cell_shares_ranked", self.lang, shares=shares_list(ranked, self.lang)))
            return say(f"rank_{r.rank}", self.lang, cell=self.region(pick), pct=self.pct(shares[pick]))
        if r.region == "image":
            key = f"cells.{r.categories[0]}" if len(r.categories) == 1 else "cells"
            fact = self.fact(key)
            changed = list(fact.value) if fact else [c for c in cells if self.stats(c).changed]
        else:
            changed = [c for c in cells if self.cell_changed(c, shares[c])]
        if not changed:
            if max(shares.values()) == 0:
                return self.nothing_in(r.region)
            top = max(cells, key=lambda c: shares[c])
            return say(
                "where_none",
                self.lang,
                region=self.region(),
                thr=percent(self.threshold, self.lang, 0),
                top=self.region(top),
                pct=self.pct(shares[top]),
            )
        names = join([self.region(c) for c in changed], self.lang)
        clusters = self.p.regions.clusters
        if r.region == "image" and clusters and len(clusters[0]) > 1:
            self.evidence.append(say("ev:cluster", self.lang, cells=" ".join(clusters[0])))
        if r.region == "image" and not r.categories:
            self.object_spread(changed)
        thr, listed = percent(self.threshold, self.lang, 0), shares_list({c: shares[c] for c in cells}, self.lang)
        self.evidence.append(say("ev:cell_rule", self.lang, thr=thr, shares=listed))
        if len(r.categories) == 1:
            category = message(f"category:{r.categories[0]}", self.lang)
            return say("where_category", self.lang, category=category, cells=names)
        return say("where", self.lang, cells=names)

    def object_spread(self, changed: list[str]) -> None:
        """Where the changed objects are, beside the 5 % area rule: on a large scene most objects can sit in cells
        the rule never names, so the cells holding at least 80 % of the objects are named, most first."""
        share = self.p.regions.object_share
        ranked = sorted((c for c in share if share[c]), key=lambda c: -share[c])
        core: list[str] = []
        for cell in ranked:
            if sum(share[c] for c in core) >= OBJECT_CORE_SHARE:
                break
            core.append(cell)
        if not core:
            return
        held = percent(sum(share[c] for c in core), self.lang, 0)
        listed = shares_list({c: share[c] for c in core}, self.lang, 0)
        if set(core) <= set(changed):
            self.evidence.append(say("ev:object_share", self.lang, listed=listed))
        else:
            number = "none" if not changed else plural(len(changed), self.lang)
            self.evidence.append(
                say(
                    f"ev:objects_elsewhere:{number}",
                    self.lang,
                    held=held,
                    core=" ".join(core),
                    listed=listed,
                    changed=" ".join(changed),
                    thr=percent(self.threshold, self.lang, 0),
                )
            )

    def how_much(self) -> str:
        r = self.r
        if self.categories_unknown():
            self.evidence.append(self.any_change_sentence())
            return self.no_categories()
        stats = self.stats(r.region)
        single = r.categories[0] if len(r.categories) == 1 else None
        fraction = stats.category_fractions[single] if single else stats.fraction
        pixels = round(fraction * stats.pixels)
        area_m2 = (stats.category_area_m2 or {}).get(single) if single else stats.area_m2
        area = self.p.area
        if note := gsd_disagreement(area, self.lang):
            self.evidence.append(say("ev:note", self.lang, note=note))
        if r.size_scale:
            return self.size(fraction)
        if r.unit == "px":
            return say("pixels", self.lang, px=self.px(pixels), region=self.region(), pct=self.pct(fraction))
        if r.unit in AREA_UNITS:
            if area_m2 is None:
                self.evidence.append(say("ev:give_gsd", self.lang))
                self.refusal = True
                return say(
                    "area_unknown",
                    self.lang,
                    unit=unit_name(r.unit, self.lang),
                    pct=self.pct(fraction),
                    region=self.region(),
                    px=self.px(pixels),
                )
            self.evidence.append(say("ev:pixel_size", self.lang, how=pixel_size_text(area, self.lang)))
            return say(
                "area",
                self.lang,
                area=self.area(area_m2, r.unit),
                region=self.region(),
                pct=self.pct(fraction),
                px=self.px(pixels),
            )
        if area_m2 is not None:
            m2, ha, how = self.area(area_m2, "m2"), self.area(area_m2, "ha"), pixel_size_text(area, self.lang)
            self.evidence.append(say("ev:area_and_pixel", self.lang, m2=m2, ha=ha, how=how))
        elif r.unit is None:
            self.evidence.append(say("ev:no_pixel_size", self.lang))
        return say("share", self.lang, pct=self.pct(fraction), region=self.region(), px=self.px(pixels))

    def size(self, fraction: float) -> str:
        """How big the change is, on the one scale of the rules (``deltavlm.rules.SIZE_SCALE``)."""
        bounds = [percent(bound, self.lang, 0) for bound, _ in SIZE_SCALE]
        self.evidence.append(say("size_scale_rule", self.lang, a=bounds[0], b=bounds[1], c=bounds[2]))
        size = size_class(fraction)
        if size == "none":
            return say("region_unchanged", self.lang, region=self.region())
        return say(
            "size", self.lang, size=message(f"size:{size}", self.lang), pct=self.pct(fraction), region=self.region()
        )

    def compare(self) -> str:
        r = self.r
        if self.categories_unknown() and (len(r.categories) == 2 or not r.compared):
            self.evidence.append(self.any_change_sentence())
            return self.no_categories()
        if r.compared:
            a, b = r.compared[:2]
            use_area = r.unit in AREA_UNITS and self.stats(a).area_m2 is not None
            if use_area:
                va, vb = self.stats(a).area_m2, self.stats(b).area_m2
                fmt = lambda v: self.area(v, r.unit)  # noqa: E731
                close = abs(va - vb) <= EQUAL_WITHIN * max(self.stats(a).region_area_m2 or 1.0, 1.0)
            else:
                va, vb = self.values_for(a), self.values_for(b)
                fmt, close = self.pct, abs(va - vb) < EQUAL_WITHIN
            if close:
                return say("compare_equal", self.lang, a=self.region(a), b=self.region(b), va=fmt(va), vb=fmt(vb))
            (a, va), (b, vb) = sorted(((a, va), (b, vb)), key=lambda x: -x[1])
            return say("compare_more", self.lang, a=self.region(a), b=self.region(b), va=fmt(va), vb=fmt(vb))
        first, second = r.categories[:2]
        if r.unit in ("percent", "px") or r.unit in AREA_UNITS:
            stats = self.stats(r.region)
            va, vb = stats.category_fractions[first], stats.category_fractions[second]
            fmt = self.pct
        else:
            counts = self.category_counts() or {}
            va, vb = counts.get(first, 0), counts.get(second, 0)
            fmt = str
        if va == vb:
            return say(
                "compare_equal", self.lang, a=noun(first, self.lang), b=noun(second, self.lang), va=fmt(va), vb=fmt(vb)
            )
        (a, va), (b, vb) = sorted(((first, va), (second, vb)), key=lambda x: -x[1])
        return say("compare_more", self.lang, a=noun(a, self.lang), b=noun(b, self.lang), va=fmt(va), vb=fmt(vb))

    def describe(self) -> str:
        r = self.r
        caption = self.fact("caption") if r.region == "image" and not r.categories else None
        if caption is not None:
            return caption.value
        fact = self.fact("changed") if r.region == "image" else None
        stats = self.stats(r.region)
        changed = bool(fact.value) if fact is not None else stats.changed_pixels > 0
        if not changed:
            return (
                say("nothing_changed", self.lang)
                if r.region == "image"
                else say("region_unchanged", self.lang, region=self.region())
            )
        cells = [c for c in self.cells_in(r.region) if self.stats(c).changed] or [
            max(self.cells_in(r.region), key=lambda c: self.stats(c).fraction)
        ]
        if self.categorical:
            objects = {c: stats.category_objects[c] for c in CATEGORIES}
            what = join([f"{self.px(n)} {noun(c, self.lang, n)}" for c, n in objects.items()], self.lang)
        else:
            n = stats.objects
            what = f"{self.px(n)} {noun('change', self.lang, n)}"
            self.evidence.append(say("ev:where_not_what", self.lang, mask=mask_phrase(self.v.source, self.lang)))
        if r.region != "image":
            share = say(
                "share", self.lang, pct=self.pct(stats.fraction), region=self.region(), px=self.px(stats.changed_pixels)
            )
            return say("share_what", self.lang, share=share, what=what)
        return say(
            "describe",
            self.lang,
            pct=self.pct(stats.fraction),
            cells=join([self.region(c) for c in cells], self.lang),
            what=what,
        )

    def any_change_sentence(self) -> str:
        stats = self.stats(self.r.region)
        number = plural(stats.objects, self.lang)
        n, pct = integer(stats.objects, self.lang), self.pct(stats.fraction)
        return say(f"ev:any_change:{number}", self.lang, region=self.region(), pct=pct, n=n)


def _hedge(first: str, lang: str) -> str:
    """ "Probably yes, …" for a yes/no; "Probably: …" before any other first sentence. Never given a refusal
    (``Composed.refusal``): one is not an estimate."""
    word = say("probably", lang)
    if lang == "zh":
        return say("hedged", lang, first=first)
    if first.startswith((say("yes", lang) + ",", say("no", lang) + ",")):
        return f"{word} {first[0].lower()}{first[1:]}"
    # German starts a whole sentence after a colon with a capital; "I" and cell ids keep theirs in every language
    keep = lang == "de" or first.startswith(("I ", "I'")) or (first[:2].isalpha() and first[:2].isupper())
    return say("hedged", lang, first=first if keep else first[0].lower() + first[1:])


def compose(request: Request, k: Knowledge) -> Composed:
    """The answer's text for ``request``: its first sentence, then the evidence and notes, all in its language."""
    lang = request.language
    if request.ask == "unsupported_language":
        # the question's language is unknown, so this is said in English (the reader's fallback language)
        known = say("languages", lang, names=", ".join(LANGUAGE_NAMES.values()))
        return Composed(f"{known} {say('ask_again', lang)}", known, confidence=1.0)
    if request.ask in ("off_topic", "hostile"):
        first = sentence(say(request.ask, lang))
        return Composed(first, first, confidence=1.0)
    said: list[str] = []
    tag = ""
    categorical = bool(k.pair and k.pair.verification.source.categorical)
    if "categories" in k.said and request.categories and not categorical and request.ask in CATEGORY_FOLLOW_UPS:
        # said once already that the mask has no categories: answer the rest with any-change figures
        nouns = join([noun(c, lang) for c in request.categories], lang)
        tag = say("any_change_tag", lang, nouns=nouns)
        request = request.model_copy(update={"categories": [], "direction": "any"})
    turn = _Turn(request, k)
    if request.ask == "open":
        if k.model_text:
            first = sentence(k.model_text)
            return Composed(first, first, ["model"], min(turn.source_conf, 0.6))
        first = sentence(say("open_no_model", lang))
        return Composed(sentences([first, turn.any_change_sentence()], lang), first, confidence=turn.source_conf)
    if request.other_subject:
        first = sentence(say("other_subject", lang, subject=message(f"subject:{request.other_subject}", lang)))
        text = sentences([first, turn.any_change_sentence()], lang)
        return Composed(text, first, confidence=turn.source_conf, refusal=True)
    body = {
        "changed": turn.changed,
        "count": turn.count,
        "where": turn.where,
        "how_much": turn.how_much,
        "compare": turn.compare,
        "describe": turn.describe,
        "export": lambda: say(
            "export" if not k.pair or k.pair.verification.summary.changed else "export_empty",
            lang,
            fmt=FORMAT_NAMES[request.export_format],
        ),
        "show": lambda: say("show", lang),
    }[request.ask]()
    first = sentence(body)
    refusal = turn.refusal
    if request.direction != "any" and request.ask in DIRECTION_ASKS and not turn.refused and k.pair is not None:
        # no mask here says which way a pixel changed: "what about demolitions?" hears that first (a summary would
        # answer it wrongly); other questions about new or demolished things hear it right after their figures
        which_way = sentence(say("no_direction", lang, mask=mask_phrase(k.pair.verification.source, lang)))
        if request.ask == "describe" and request.direction == "demolished":
            first, tag, refusal = which_way, sentences([first, tag], lang), True
        else:
            tag = sentences([which_way, tag], lang)
    confidence = turn.confidence
    assert k.pair is not None
    source = k.pair.verification.source
    unreliable = source.reliable is False  # measured: this kind of imagery defeats the mask
    measure = FITTING_MEASURE.get(request.ask)
    fitting = source.measured.get(measure) if measure else None
    if fitting is None:  # nothing measured for this kind of question: the mask's confidence
        measure, fitting = "confidence", confidence
    weak = confidence < HEDGE_BELOW or fitting < HEDGE_BELOW or unreliable
    if request.ask not in ("export", "show") and weak and not turn.refused:
        if not refusal:
            first = sentence(_hedge(first, lang))
        described = source.basis.kind == "unmeasured" and source.made_by.method != "unstated"
        why = mask_detail(source.made_by, lang) if described else confidence_reason(source.basis, lang)
        shown, value, better = say(f"measure:{measure}", lang), decimal(fitting, lang, 2), say("better_path", lang)
        if "calibration" in k.said:  # the full sentence was said once in this thread: a short tag now
            turn.evidence.append(say("confidence_tag", lang, measure=shown, conf=value))
        elif unreliable:
            gsd = source.gsd_m
            where = say("ev:at_gsd", lang, gsd=significant(gsd, lang, 3)) if gsd else say("ev:on_imagery", lang)
            turn.evidence.append(
                say("ev:confidence_unreliable", lang, measure=shown, value=value, why=why, where=where, better=better)
            )
        else:
            turn.evidence.append(say("ev:confidence", lang, measure=shown, value=value, why=why, better=better))
        if "calibration" not in k.said:
            said.append("calibration")
    if turn.refused and request.categories and not categorical:
        said.append("categories")
    valid = k.pair.verification.summary.valid_fraction
    if valid < 1.0:  # numbers are on the part both dates cover: say how much that is, and which cells had none
        no_data = k.pair.verification.summary.no_data_cells
        shown = percent(valid, lang, 1)
        said_valid = (
            say("ev:valid_part_cells", lang, valid=shown, cells=" ".join(no_data))
            if no_data
            else say("ev:valid_part", lang, valid=shown)
        )
        turn.evidence.insert(0, said_valid)
    places = request.region != "image" or bool(request.compared) or request.ask in ("where", "compare")
    oriented = orientation_sentence(k.pair.orientation if k.pair else None, lang) if places else None
    notes = [part for part in (tag, oriented) if part]
    if k.pair and k.pair.grey_date:  # compared in grey: say so, or the answer reads as a colour comparison
        notes.append(sentence(say("grey_date", lang, date=k.pair.grey_date)))
    evidence = [e[:1].upper() + e[1:] for e in turn.evidence]  # every sentence starts with a capital
    text = sentences([first, *notes, *evidence], lang)
    regions = [key for key in turn.used if not key.startswith("cells:")]
    # the confidence an answer carries is the one measured for what was asked (grid F1 for where, binary accuracy
    # for yes/no), never above the facts' own
    stated = min(confidence, fitting) if measure in ("binary_accuracy", "grid_f1") else confidence
    return Composed(text, first, turn.stated, stated, regions, said, refusal)
