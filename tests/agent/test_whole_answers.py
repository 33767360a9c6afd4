"""Whole answers in the question's language: no English sentence and no "Details (in English)" after the first one.

Each language asks the same kinds of question (yes/no, where, counts, pixels, areas, the most changed cell, a
region, a category the mask lacks, a description, a size, "why?", "are you sure?", an export, a subject no mask
separates, a short follow-up) over a synthetic pair with a
user mask, over the same pair with the classical detector at 10 m per pixel (the hedged path, with its calibration
sentence) and over a real LEVIR-CD pair; every sentence of every answer is checked for English words.
"""

from __future__ import annotations

import re

import pytest

from agent import Agent
from agent.answering.numbers import integer
from agent.settings import AgentSettings
from tests.phrasings import Truth
from tests.two_blocks import two_changed_blocks

ENGLISH = {
    "the", "of", "and", "is", "are", "were", "when", "than", "only", "which", "cannot", "can't", "without", "with",
    "this", "that", "these", "changed", "share", "shares", "rule", "note", "details", "english", "holds", "lie",
    "lies", "from", "your", "what", "where", "because", "not", "yes", "probably", "confidence", "accuracy",
    "measured", "held-out", "pairs", "cell", "cells", "regions",
}  # fmt: skip
"""Words of English answers that none of the other five languages writes ("was", "no", "region" are German or Spanish
words too; the mask's provider name, a proper name such as "user" or "classical", is not among them)."""

QUESTIONS = {
    "fr": [
        "Est-ce que quelque chose a changé ?",
        "Où est le changement ?",
        "Combien de changements y a-t-il ?",
        "Combien de pixels ont changé ?",
        "Quelle surface a changé en hectares ?",
        "Quelle cellule a le plus changé ?",
        "La colonne de gauche a-t-elle changé ?",
        "Combien de bâtiments ont été construits ?",
        "Décris le changement.",
        "Le changement est-il grand ou petit ?",
        "Pourquoi ?",
        "En es-tu sûr ?",
        "Tu es sûr ?",
        "Exporte les changements en shapefile",
        "Combien d'arbres ont été coupés ?",
        "Et en hectares ?",
    ],
    "es": [
        "¿Ha cambiado algo?",
        "¿Dónde está el cambio?",
        "¿Cuántos cambios hay?",
        "¿Cuántos píxeles cambiaron?",
        "¿Qué superficie cambió en hectáreas?",
        "¿Qué celda cambió más?",
        "¿Cambió la columna izquierda?",
        "¿Cuántos edificios se construyeron?",
        "Describe el cambio.",
        "¿El cambio es grande o pequeño?",
        "¿Por qué?",
        "¿Estás seguro?",
        "Exporta los cambios como shapefile",
        "¿Cuántos árboles se talaron?",
        "¿Y en hectáreas?",
    ],
    "de": [
        "Hat sich etwas verändert?",
        "Wo ist die Veränderung?",
        "Wie viele Veränderungen gibt es?",
        "Wie viele Pixel haben sich verändert?",
        "Wie viel Fläche in Hektar hat sich verändert?",
        "Welche Zelle hat sich am meisten verändert?",
        "Hat sich die linke Spalte verändert?",
        "Wie viele Gebäude wurden gebaut?",
        "Beschreibe die Veränderung.",
        "Ist die Veränderung groß oder klein?",
        "Warum?",
        "Bist du sicher?",
        "Exportiere die Änderungen als Shapefile",
        "Wie viele Bäume wurden gefällt?",
        "Und in Hektar?",
    ],
    "pt": [
        "Alguma coisa mudou?",
        "Onde está a mudança?",
        "Quantas mudanças há?",
        "Quantos pixels mudaram?",
        "Que área mudou em hectares?",
        "Qual célula mudou mais?",
        "A coluna da esquerda mudou?",
        "Quantos edifícios foram construídos?",
        "Descreve a mudança.",
        "A mudança é grande ou pequena?",
        "Porquê?",
        "Você tem certeza?",
        "Tem a certeza?",
        "Exporte as mudanças como shapefile",
        "Quantas árvores foram cortadas?",
        "E em hectares?",
    ],
    "zh": [
        "有变化吗？",
        "变化在哪里？",
        "有多少处变化？",
        "有多少像素发生了变化？",
        "变化面积是多少公顷？",
        "哪个格子变化最多？",
        "左边一列有变化吗？",
        "新建了多少栋建筑？",
        "描述一下变化。",
        "变化大还是小？",
        "为什么？",
        "你确定吗？",
        "导出变化",
        "那公顷呢？",
    ],
}

SIZE = 90  # 3×3 cells of 30×30 px


def english_sentences(text: str) -> list[str]:
    """The sentences of ``text`` holding an English word (a word of ``ENGLISH``)."""
    found = []
    text = re.sub(r"\S*[/\\]\S*", " ", text)  # file paths name files, not sentences
    for sentence in re.split(r"(?<=[.!?。])\s*", text):
        words = set(re.findall(r"[a-z][a-z'\-]*", sentence.lower()))
        if words & ENGLISH or "pixel size" in sentence.lower():
            found.append(sentence)
    return found


def test_the_check_finds_english():
    assert english_sentences("Oui, l'image a changé. Rule: the pair changed when any pixel changed.") == [
        "Rule: the pair changed when any pixel changed."
    ]
    assert not english_sentences("Règle : la paire a changé dès qu'un pixel du masque (user) a changé.")


def _synthetic(tmp_path):
    """A pair whose top-left block (1,600 px) and a small bar (250 px) changed, with that change as a mask."""
    return two_changed_blocks(tmp_path, SIZE)


def _english_in_thread(agent, pair, lang, **kw) -> list[str]:
    problems = []
    for question in QUESTIONS[lang]:
        answer = agent.ask(pair, question, thread_id=f"{lang}-{id(kw)}", **kw)
        assert answer.evidence.route.language == lang, (question, answer.evidence.route)
        assert answer.evidence.route.ask not in ("open", "off_topic", "unsupported_language"), (question, answer.text)
        problems += [f"{question} → {s}" for s in english_sentences(answer.text)]
    return problems


@pytest.mark.parametrize("lang", sorted(QUESTIONS))
def test_whole_answers_hold_no_english(tmp_path, lang):
    pair, mask = _synthetic(tmp_path)
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "artefacts"))
    problems = _english_in_thread(agent, pair, lang, mask=mask, mask_kind="binary", gsd_m=0.5)
    problems += _english_in_thread(agent, pair, lang, gsd_m=10.0)  # classical, hedged: calibration sentences
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lang", ["fr", "de", "zh"])
def test_whole_answers_on_a_real_pair_hold_no_english(shared_data, tmp_path, lang):
    t1, t2, label = Truth(shared_data, "L36").paths
    agent = Agent(AgentSettings(artefact_dir=tmp_path))
    problems = _english_in_thread(agent, (t1, t2), lang, mask=label, mask_kind="binary", mask_category="building")
    assert not problems, "\n".join(problems)


def test_french_numbers_are_written_the_french_way(tmp_path):
    pair, mask = _synthetic(tmp_path)
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "artefacts"))
    pixels = agent.ask(pair, "Quelle surface a changé en hectares ?", mask=mask, mask_kind="binary", gsd_m=0.5)
    assert f"{integer(1850, 'fr')} px" in pixels.text and "1,850" not in pixels.text
    where = agent.ask(pair, "Où est le changement ?", mask=mask, mask_kind="binary")
    assert "TL 100,0\u202f%" in where.text or "TL 100,0\u00a0%" in where.text, where.text
    assert not re.search(r"\d\.\d", where.text) and not re.search(r"\d%", where.text), where.text


def test_chinese_sentences_follow_each_other_without_spaces(tmp_path):
    pair, mask = _synthetic(tmp_path)
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "artefacts"))
    where = agent.ask(pair, "变化在哪里？", mask=mask, mask_kind="binary")
    assert where.text.count("。") >= 3 and "。 " not in where.text, where.text
    refused = agent.ask(pair, "新建了多少栋建筑？", mask=mask, mask_kind="binary")
    assert "把建筑与其他变化区分开" in refused.text, refused.text  # the category, not "栋建筑" (a counted noun)


def test_a_count_of_none_is_singular_in_french(tmp_path):
    """French writes "0 zone modifiée" (CLDR: 0 and 1 take the singular), English "0 changed regions"."""
    from agent.answering.wording import noun

    assert noun("change", "fr", 0) == noun("change", "fr", 1) and noun("change", "en", 0) == noun("change", "en", 2)
    pair, _ = _synthetic(tmp_path)
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "artefacts"))
    none = agent.ask((pair[0], pair[0].copy()), "Combien de changements y a-t-il ?")
    assert f"0 {noun('change', 'fr', 1)}" in none.text, none.text


def test_a_hedge_lowers_the_sentence_it_precedes_but_not_an_id():
    from agent.answering.compose import _hedge

    assert _hedge("A mudança é moderada.", "pt") == "Provavelmente: a mudança é moderada."
    assert _hedge("Cellules modifiées : TL.", "fr") == "Probablement : cellules modifiées : TL."
    assert _hedge("TL changed the most: 12.0%.", "en") == "Probably: TL changed the most: 12.0%."
    assert _hedge("Veränderte Zellen: TL.", "de") == "Wahrscheinlich: Veränderte Zellen: TL."  # a German sentence
