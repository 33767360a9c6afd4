"""Numbers follow the question's language: no "8,744 px" inside a French answer."""

from __future__ import annotations

import pytest

from agent import Agent
from agent.answering.numbers import decimal, integer, percent
from agent.settings import AgentSettings
from deltavlm.rules import summarize
from deltavlm.synthetic import write_example
from tools.masks import load_change_mask
from tools.pairs import load_pair


def test_numbers_use_the_languages_separators():
    assert (percent(0.125, "en"), integer(8744, "en"), decimal(1234.5, "en", 2)) == ("12.5%", "8,744", "1,234.50")
    assert (percent(0.125, "fr"), integer(8744, "fr"), decimal(1234.5, "fr", 2)) == (
        "12,5\xa0%",
        "8\u202f744",
        "1\u202f234,50",
    )
    assert (percent(0.125, "de"), integer(8744, "de"), decimal(0.29, "de", 2)) == ("12,5\xa0%", "8.744", "0,29")
    assert percent(0.05, "en", 0) == "5%"


@pytest.mark.parametrize(
    ("lang", "question"),
    [
        ("fr", "Combien de pixels ont changé ?"),
        ("de", "Wie viele Pixel haben sich verändert?"),
        ("es", "¿Cuántos píxeles cambiaron?"),
    ],
)
def test_a_pixel_answer_writes_its_numbers_in_the_questions_language(tmp_path, lang, question):
    paths = write_example(tmp_path / "ex", seed=7)
    changed = summarize(load_change_mask(paths.mask, kind="levir-mci").class_mask)
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "a"))
    answer = agent.ask(load_pair(paths.t1, paths.t2), question, mask=paths.mask, mask_kind="levir-mci")
    assert answer.evidence.route.language == lang and answer.evidence.route.unit == "px"
    assert changed.changed_pixels >= 1000  # large enough to be grouped
    assert integer(changed.changed_pixels, lang) in answer.first_sentence
    assert f"{changed.changed_pixels:,}" not in answer.first_sentence
    assert percent(changed.changed_fraction, lang) in answer.first_sentence
