"""Answers about the user's areas of interest (``tools.aoi``): which changed, how much, objects, a ranking.

The first sentence answers in the question's language; the figures of every polygon follow, in the same language.
A polygon that lies partly outside the pair, wholly outside it, on no valid data, or that had to be repaired is
said so by name, so no polygon disappears from an answer.
"""

from __future__ import annotations

from agent.answering.catalog import message
from agent.answering.compose import HEDGE_BELOW, _area, _hedge, _pct, mask_phrase
from agent.answering.numbers import decimal, integer, percent, plural
from agent.answering.provenance import confidence_reason
from agent.answering.wording import clauses, join, say, sentence, sentences, series
from agent.reading import Request
from agent.turn.state import PairFacts
from tools.aoi import AoiStats, AoiSummary


def say_aoi(key: str, lang: str, **slots: object) -> str:
    """An AOI message (catalog key ``aoi_<key>``) in ``lang`` with its slots filled."""
    return say(f"aoi_{key}", lang, **slots)


def picked(summary: AoiSummary, pick: str | None) -> list[AoiStats]:
    """The polygons a question names: by label or any property value (case-insensitive), else all of them."""
    if pick is None:
        return list(summary.polygons)
    wanted = pick.strip().lower()
    return [
        s
        for s in summary.polygons
        if s.label.lower() == wanted or any(str(v).strip().lower() == wanted for v in s.properties.values() if v)
    ]


def _share(stats: AoiStats, lang: str) -> str:
    if stats.status == "outside":
        return say_aoi("outside", lang, name=stats.label)
    if stats.changed_fraction is None:
        return say_aoi("no_data", lang, name=stats.label)
    area = (
        _area(stats.changed_area_m2, "ha", lang)
        if stats.changed_area_m2 is not None
        else f"{integer(stats.changed_pixels, lang)} px"
    )
    return say_aoi("share", lang, name=stats.label, pct=_pct(stats.changed_fraction, lang), area=area)


def _figures(stats: AoiStats, lang: str) -> str:
    """One polygon's figures (the evidence), with what happened to it."""
    parts = [say("aoi_fig:area", lang, name=stats.label, area=_area(stats.area_m2, "ha", lang))]
    if stats.status == "outside":
        parts.append(message("aoi_fig:outside", lang))
    else:
        if stats.status == "partly outside":
            parts.append(say("aoi_fig:partly_outside", lang, pct=percent(1 - stats.inside_share, lang, 0)))
        if stats.changed_fraction is None:
            parts.append(message("aoi_fig:no_data", lang))
        else:
            valid = integer(stats.valid_pixels, lang)
            figures = [say("aoi_fig:changed_share", lang, pct=_pct(stats.changed_fraction, lang), valid=valid)]
            if stats.changed_area_m2 is not None:
                figures.append(_area(stats.changed_area_m2, "m2", lang))
            number = plural(stats.objects, lang)
            figures.append(say(f"aoi_fig:objects:{number}", lang, n=integer(stats.objects, lang)))
            figures.append(message("aoi_fig:changed" if stats.changed else "aoi_fig:unchanged", lang))
            parts.append(series(figures, lang))
    if stats.repaired:
        parts.append(say("aoi_fig:repaired", lang, why=stats.repaired))
    return clauses(parts, lang)


def compose_aoi(request: Request, facts: PairFacts | None) -> tuple[str, str, list[AoiStats], float]:
    """(text, first sentence, the polygons it speaks of, confidence) for a question about areas of interest."""
    lang = request.language
    summary = facts.aoi if facts else None
    if summary is None:
        first = sentence(say_aoi("none", lang))
        return first, first, [], 1.0
    chosen = picked(summary, request.aoi_pick)
    if not chosen:
        names = join([s.label for s in summary.polygons], lang)
        first = sentence(say_aoi("missing", lang, source=summary.source, pick=request.aoi_pick, names=names))
        return first, first, [], 1.0
    thr = percent(summary.threshold, lang, 0)
    judged = [s for s in chosen if s.changed is not None]
    listed = False  # whether the first sentence already names every chosen polygon, the unjudged ones included
    if request.rank:
        ranked = sorted(judged, key=lambda s: s.changed_fraction or 0.0, reverse=request.rank == "most")
        names = join([f"{s.label} ({_pct(s.changed_fraction or 0.0, lang)})" for s in ranked], lang)
        first = say_aoi("ranked", lang, names=names)
    elif request.ask == "count":
        first = join([say_aoi("objects", lang, name=s.label, count=integer(s.objects, lang)) for s in judged], lang)
    elif request.ask in ("changed", "where") and request.aoi_pick is None and len(chosen) > 1:
        changed = [s.label for s in judged if s.changed]
        first = (
            say_aoi("changed_some", lang, n=len(changed), total=len(chosen), thr=thr, names=join(changed, lang))
            if changed
            else say_aoi("changed_none", lang, total=len(chosen), thr=thr)
        )
    else:
        first, listed = "", True
    if not first:
        first, listed = clauses([_share(s, lang) for s in chosen], lang), True
    source = facts.verification.source if facts else None
    confidence = source.confidence if source else 0.0
    first = sentence(first)
    unreliable = source is not None and source.reliable is False  # measured: this kind of imagery defeats the mask
    if confidence < HEDGE_BELOW or unreliable:  # the same rule as every other answer: "probably"
        first = sentence(_hedge(first, lang))
    unjudged = [_share(s, lang) for s in chosen if s.changed is None]
    if unjudged and not listed:
        first = sentences([first, sentence(clauses(unjudged, lang))], lang)
    mask = mask_phrase(source, lang) if source else message("none", lang)
    evidence = [say("aoi_ev:source", lang, source=summary.source, layer=summary.layer, mask=mask)]
    evidence += [sentence(_figures(s, lang)) for s in chosen]
    evidence.append(say("ev:rule", lang, rule=say("rule:aoi", lang, pct=percent(summary.threshold, lang, 0))))
    if confidence < HEDGE_BELOW or unreliable:
        why = confidence_reason(source.basis, lang) if source else message("basis:unmeasured", lang)
        evidence.append(say("aoi_ev:estimates", lang, conf=decimal(confidence, lang, 2), why=why))
    return sentences([first, *evidence], lang), first, chosen, confidence


def aoi_table(summary: AoiSummary) -> str:
    """The areas of interest as a table: one line per polygon, the unplaced and repaired ones said."""
    lines = [f"areas of interest ({summary.source}): changed = more than {summary.threshold:.0%} of valid pixels"]
    lines.append(f"  {'name':<16} {'status':<15} {'area ha':>9} {'changed':>8} {'ha':>8} {'objects':>7}  verdict")
    for s in summary.polygons:
        share = f"{s.changed_fraction:.1%}" if s.changed_fraction is not None else "-"
        changed_ha = f"{s.changed_area_m2 / 10_000:.2f}" if s.changed_area_m2 is not None else "-"
        verdict = "-" if s.changed is None else "changed" if s.changed else "unchanged"
        line = f"  {s.label[:16]:<16} {s.status:<15} {s.area_m2 / 10_000:>9.2f} {share:>8} {changed_ha:>8} "
        line += f"{s.objects:>7}  {verdict}"
        if s.repaired:
            line += f" (outline repaired: {s.repaired})"
        lines.append(line)
    return "\n".join(lines)
