"""A refusal is not an estimate: an answer that says what cannot be told is never hedged ("Probably: I can't…"), in
any language, even on a mask whose confidence hedges every estimate. Whoever composes the refusal says so (a typed
flag), the hedge never reads the sentence's words."""

from __future__ import annotations

import numpy as np
import pytest

from agent import Agent
from agent.answering.catalog import message
from agent.settings import AgentSettings

SIZE = 90

QUESTIONS = {
    "en": {
        "estimate": "Has anything changed?",
        "summary": "Describe the changes.",
        "demolitions": "What about demolitions?",
        "hectares": "How many hectares changed?",
        "buildings": "How many buildings were built?",
    },
    "fr": {
        "estimate": "Est-ce que quelque chose a changé ?",
        "summary": "Décris les changements.",
        "demolitions": "Et les démolitions ?",
        "hectares": "Quelle surface a changé en hectares ?",
        "buildings": "Combien de bâtiments ont été construits ?",
    },
    "de": {
        "estimate": "Hat sich etwas verändert?",
        "summary": "Beschreibe die Veränderungen.",
        "demolitions": "Beschreibe den Abriss.",
        "hectares": "Wie viel Fläche hat sich in Hektar verändert?",
        "buildings": "Wie viele Gebäude wurden gebaut?",
    },
}
REFUSALS = {"demolitions": "no_direction", "hectares": "area_unknown", "buildings": "no_categories"}


class WeakProvider:
    """A learned-like mask without categories whose confidence (0.4) hedges every estimate made from it."""

    name = "weak"

    def provide(self, pair):
        from tools.masks import ChangeMask, MaskSource

        classes = np.zeros(pair.shape, np.uint8)
        classes[0:20, 0:20] = 3
        source = MaskSource(provider="weak", kind="learned", categorical=False, confidence=0.4)
        return ChangeMask(class_mask=classes, source=source)


@pytest.mark.parametrize("lang", ["fr", "de", "en"])
def test_a_refusal_on_a_weak_mask_is_not_hedged(tmp_path, lang):
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "artefacts"), mask_provider=WeakProvider())
    image = np.random.default_rng(3).integers(60, 200, size=(SIZE, SIZE, 3), dtype=np.uint8)
    pair = (image, image.copy())
    asked = QUESTIONS[lang]
    probably = message("probably", lang)
    estimate = agent.ask(pair, asked["estimate"], thread_id="e")
    assert estimate.hedged and estimate.first_sentence.startswith(probably), estimate.first_sentence
    agent.ask(pair, asked["summary"], thread_id="d")
    for ask, key in REFUSALS.items():
        answer = agent.ask(pair, asked[ask], thread_id="d" if ask == "demolitions" else ask)
        opening = message(key, lang).split("{")[0]
        assert answer.first_sentence.startswith(opening), (ask, answer.first_sentence)
        assert probably not in answer.first_sentence and not answer.hedged, (ask, answer.first_sentence)
