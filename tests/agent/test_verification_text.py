"""The CLI's summary of a verification is worded from the catalogs: English as before, other languages localised."""

from __future__ import annotations

import numpy as np

from agent.answering.verification import verification_text
from deltavlm.rules import ChangeClass
from tools.masks import ChangeMask, MaskSource
from tools.verify import verify


def _verification(valid: bool = False):
    mask = np.zeros((90, 90), np.uint8)
    mask[5:25, 5:25] = ChangeClass.BUILDING
    source = MaskSource(provider="user", kind="user", categorical=True, confidence=1.0)
    keep = np.ones((90, 90), bool)
    keep[60:, :] = False
    return verify(ChangeMask(class_mask=mask, source=source, valid=keep if valid else None))


def test_english_summary_names_the_facts():
    text = verification_text(_verification())
    assert text.splitlines()[:3] == [
        "mask: user (user, confidence 1.00)",
        "changed: yes (400 px, 4.9% of the image)",
        "changed objects: 0 roads, 1 building",
    ]
    assert "changed cells: TL" in text and "  buildings: TL" in text and "changed fraction per cell:" in text


def test_french_summary_uses_the_catalog_and_french_numbers():
    text = verification_text(_verification(valid=True), "fr").replace("\xa0", " ")
    assert "changé : oui (400 px, 7,4 % de la partie valide)" in text
    assert "données valides : 66,7 % de l'image" in text and "cellules sans données" in text


def test_the_verdicts_carry_their_rules_as_numbers_and_the_answers_word_them():
    from agent.answering.provenance import verdict_rules

    v = _verification(valid=True)
    assert v.grid.cell_threshold == 0.05 and v.grid.min_valid_cell_fraction is not None
    rules = verdict_rules(v)
    assert rules["grid"] == (
        "3×3 grid; a cell changed when more than 5% of its pixels changed "
        "(of its valid pixels; a cell under 50% valid data is 'no data')"
    )
    assert rules["counts"].endswith(f"ignoring those under {v.counts.min_object_pixels} px")
    assert "(of its valid pixels" not in verdict_rules(_verification())["grid"]


def test_chinese_summary_names_each_category_plainly():
    text = verification_text(_verification(), "zh")
    assert "  建筑：TL" in text and "  道路：" in text  # a category's name, not its counted noun ("栋建筑:")
    assert "栋建筑:" not in text and "条道路:" not in text
    assert "  bâtiments : TL" in verification_text(_verification(), "fr")
