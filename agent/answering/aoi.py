"""Answers about the user's areas of interest (``tools.aoi``): which changed, how much, objects, a ranking.

The first sentence answers in the question's language; the figures of every polygon follow in English, as the
evidence of other answers does. A polygon that lies partly outside the pair, wholly outside it, on no valid data, or
that had to be repaired is said so by name, so no polygon disappears from an answer.
"""

from __future__ import annotations

from agent.answering.compose import HEDGE_BELOW, _area, _pct, mask_phrase
from agent.answering.wording import grammar, join, say, sentence
from agent.reading import Request
from agent.turn.state import PairFacts
from tools.aoi import AoiStats, AoiSummary

T: dict[str, dict[str, str]] = {
    "none": {
        "en": "I have no areas of interest for this pair: give a GeoJSON, GeoPackage or Shapefile of your polygons "
        "(--aoi FILE, or the page's upload) and ask again",
        "fr": "Je n'ai pas de zones d'intérêt pour cette paire : donnez vos polygones en GeoJSON, GeoPackage ou "
        "Shapefile (--aoi FICHIER, ou le dépôt de la page) et reposez la question",
        "es": "No tengo áreas de interés para este par: dé sus polígonos en GeoJSON, GeoPackage o Shapefile "
        "(--aoi ARCHIVO, o la carga de la página) y pregunte de nuevo",
        "de": "Für dieses Paar habe ich keine Interessengebiete: geben Sie Ihre Polygone als GeoJSON, GeoPackage "
        "oder Shapefile an (--aoi DATEI oder der Upload der Seite) und fragen Sie erneut",
        "pt": "Não tenho áreas de interesse para este par: dê os seus polígonos em GeoJSON, GeoPackage ou "
        "Shapefile (--aoi FICHEIRO, ou o carregamento da página) e pergunte de novo",
        "zh": "这对影像没有感兴趣区：请提供多边形的 GeoJSON、GeoPackage 或 Shapefile（--aoi 文件，或页面上传）后再问",
    },
    "missing": {
        "en": "None of the areas of interest in {source} is called {pick}; they are {names}",
        "fr": "Aucune zone d'intérêt de {source} ne s'appelle {pick} ; elles sont : {names}",
        "es": "Ninguna área de interés de {source} se llama {pick}; son: {names}",
        "de": "Kein Interessengebiet in {source} heißt {pick}; es gibt: {names}",
        "pt": "Nenhuma área de interesse de {source} se chama {pick}; são: {names}",
        "zh": "{source}中没有名为{pick}的感兴趣区；现有：{names}",
    },
    "changed_some": {
        "en": "{n} of the {total} areas of interest changed (more than {thr} of their pixels): {names}",
        "fr": "{n} des {total} zones d'intérêt ont changé (plus de {thr} de leurs pixels) : {names}",
        "es": "{n} de las {total} áreas de interés cambiaron (más del {thr} de sus píxeles): {names}",
        "de": "{n} der {total} Interessengebiete haben sich verändert (mehr als {thr} ihrer Pixel): {names}",
        "pt": "{n} das {total} áreas de interesse mudaram (mais de {thr} dos pixels): {names}",
        "zh": "{total}个感兴趣区中有{n}个发生变化（超过{thr}的像素）：{names}",
    },
    "changed_none": {
        "en": "None of the {total} areas of interest changed by more than {thr} of its pixels",
        "fr": "Aucune des {total} zones d'intérêt n'a changé de plus de {thr} de ses pixels",
        "es": "Ninguna de las {total} áreas de interés cambió más del {thr} de sus píxeles",
        "de": "Keines der {total} Interessengebiete hat sich um mehr als {thr} seiner Pixel verändert",
        "pt": "Nenhuma das {total} áreas de interesse mudou mais de {thr} dos pixels",
        "zh": "{total}个感兴趣区都没有超过{thr}的像素发生变化",
    },
    "share": {
        "en": "{name}: {pct} of its pixels changed ({area})",
        "fr": "{name} : {pct} de ses pixels ont changé ({area})",
        "es": "{name}: cambió el {pct} de sus píxeles ({area})",
        "de": "{name}: {pct} der Pixel haben sich verändert ({area})",
        "pt": "{name}: {pct} dos pixels mudaram ({area})",
        "zh": "{name}：{pct}的像素发生变化（{area}）",
    },
    "objects": {
        "en": "{name}: {count} changed objects",
        "fr": "{name} : {count} objets modifiés",
        "es": "{name}: {count} objetos cambiados",
        "de": "{name}: {count} veränderte Objekte",
        "pt": "{name}: {count} objetos alterados",
        "zh": "{name}：{count}个变化对象",
    },
    "ranked": {
        "en": "The areas of interest by changed share, most first: {names}",
        "fr": "Les zones d'intérêt par part modifiée, la plus forte d'abord : {names}",
        "es": "Las áreas de interés por proporción cambiada, de mayor a menor: {names}",
        "de": "Die Interessengebiete nach verändertem Anteil, der größte zuerst: {names}",
        "pt": "As áreas de interesse pela parte alterada, da maior para a menor: {names}",
        "zh": "按变化比例从高到低排列的感兴趣区：{names}",
    },
    "outside": {
        "en": "{name} lies outside the pair",
        "fr": "{name} est en dehors de la paire",
        "es": "{name} está fuera del par",
        "de": "{name} liegt außerhalb des Paares",
        "pt": "{name} fica fora do par",
        "zh": "{name}位于影像范围之外",
    },
    "no_data": {
        "en": "{name} has no valid data on the pair",
        "fr": "{name} n'a pas de données valides sur la paire",
        "es": "{name} no tiene datos válidos en el par",
        "de": "{name} hat keine gültigen Daten im Paar",
        "pt": "{name} não tem dados válidos no par",
        "zh": "{name}在影像上没有有效数据",
    },
}


def say_aoi(key: str, lang: str, **slots: object) -> str:
    table = T[key]
    return grammar(table.get(lang, table["en"]).format(**slots), lang)


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
    area = _area(stats.changed_area_m2, "ha") if stats.changed_area_m2 is not None else f"{stats.changed_pixels} px"
    return say_aoi("share", lang, name=stats.label, pct=_pct(stats.changed_fraction), area=area)


def _figures(stats: AoiStats) -> str:
    """One polygon's figures in English (the evidence), with what happened to it."""
    parts = [f"{stats.label}: area {_area(stats.area_m2, 'ha')}"]
    if stats.status == "outside":
        parts.append("outside the pair, no figures")
    else:
        if stats.status == "partly outside":
            parts.append(f"{1 - stats.inside_share:.0%} of it lies outside the pair, figures are for the rest")
        if stats.changed_fraction is None:
            parts.append("no valid data")
        else:
            changed_area = f", {_area(stats.changed_area_m2, 'm2')}" if stats.changed_area_m2 is not None else ""
            verdict = "changed" if stats.changed else "not changed"
            parts.append(
                f"{_pct(stats.changed_fraction)} of {stats.valid_pixels:,} valid pixels changed{changed_area}, "
                f"{stats.objects} changed object{'s' * (stats.objects != 1)}, {verdict}"
            )
    if stats.repaired:
        parts.append(f"its outline was invalid ({stats.repaired}) and was repaired")
    return "; ".join(parts)


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
    thr = f"{summary.threshold:.0%}"
    judged = [s for s in chosen if s.changed is not None]
    listed = False  # whether the first sentence already names every chosen polygon, the unjudged ones included
    if request.rank:
        ranked = sorted(judged, key=lambda s: s.changed_fraction or 0.0, reverse=request.rank == "most")
        names = join([f"{s.label} ({_pct(s.changed_fraction or 0.0)})" for s in ranked], lang)
        first = say_aoi("ranked", lang, names=names)
    elif request.ask == "count":
        first = join([say_aoi("objects", lang, name=s.label, count=s.objects) for s in judged], lang)
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
        first, listed = "; ".join(_share(s, lang) for s in chosen), True
    source = facts.verification.source if facts else None
    confidence = source.confidence if source else 0.0
    first = sentence(first)
    unjudged = [_share(s, lang) for s in chosen if s.changed is None]
    if unjudged and not listed:
        first = f"{first} {sentence('; '.join(unjudged))}"
    evidence = [f"Areas of interest from {summary.source} (layer {summary.layer}), on {mask_phrase(source)}."]
    evidence += [sentence(_figures(s)) for s in chosen]
    evidence.append(sentence(f"Rule: {summary.rule}"))
    if confidence < HEDGE_BELOW:
        evidence.append(f"The mask's confidence is {confidence:.2f}: these figures are estimates.")
    details = " ".join(evidence)
    return " ".join(p for p in (first, say("details", lang), details) if p), first, chosen, confidence
