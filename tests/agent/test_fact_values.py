"""A fact's value is written one way wherever it is shown: the page's evidence panel, the "why?" answer and the
reading of the model's reply (``wording.fact_value``)."""

from __future__ import annotations

import re

import pytest

from agent import Agent
from agent.answering.page_evidence import evidence_markdown
from agent.answering.reading import model_parse_text
from agent.model_facts import model_facts
from agent.settings import AgentSettings, TrustSettings
from tests.two_blocks import two_changed_blocks

QUESTIONS = {
    "en": ("Did anything change?", "Where is the change?", "Why?"),
    "fr": ("Est-ce que quelque chose a changé ?", "Où est le changement ?", "Pourquoi ?"),
    "de": ("Hat sich etwas verändert?", "Wo ist die Veränderung?", "Warum?"),
}
SIZE = 96


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two changed blocks, and the change as a user mask."""
    folder = tmp_path_factory.mktemp("pair")
    arrays, mask = two_changed_blocks(folder, SIZE)
    return arrays, mask, folder


def _panel_value(panel: str, key: str) -> str:
    """The value of fact ``key`` in the evidence panel's list of stated facts ("- cells = TL, TC (source, …)")."""
    found = re.search(rf"^- {key} = (.+) \(verifier", panel, re.MULTILINE)
    assert found, panel
    return found.group(1)


@pytest.mark.parametrize("lang", sorted(QUESTIONS))
def test_the_panel_the_why_answer_and_the_model_parse_write_a_value_alike(pair, lang):
    (before, after), mask, folder = pair
    agent = Agent(AgentSettings(artefact_dir=folder / lang))
    shown = {}
    for question, key in zip(QUESTIONS[lang][:2], ("changed", "cells"), strict=True):
        answer = agent.ask((before, after), question, mask=mask, mask_kind="binary", thread_id=lang)
        shown[key] = _panel_value(evidence_markdown(answer, answer.cells or []), key)
        why = agent.ask((before, after), QUESTIONS[lang][2], mask=mask, mask_kind="binary", thread_id=lang)
        assert f" = {shown[key]} " in why.text, (shown[key], why.text)
    assert "," in shown["cells"], shown
    _, parse = model_facts("Yes, a building appeared.", "binary", TrustSettings(), 0)
    assert f" {shown['changed']} (" in model_parse_text(parse, lang)
