"""The page's own messages follow the catalogs' plural rule (CLDR, ``numbers.plural``), the same one answers use:
French says "0 route" in the page as in an answer; the README names what the page keeps in English."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agent.answering.page_messages import aoi_loaded, mask_reread
from deltavlm.rules import ChangeClass
from tools.masks import ChangeMask, MaskSource
from tools.verify import verify


def _buildings_only() -> ChangeMask:
    """A categorical mask with two new buildings and no road."""
    classes = np.zeros((64, 64), np.uint8)
    classes[4:14, 4:14] = ChangeClass.BUILDING
    classes[40:52, 40:52] = ChangeClass.BUILDING
    source = MaskSource(provider="user", kind="user", categorical=True, confidence=1.0)
    return ChangeMask(class_mask=classes, source=source)


def test_a_french_mask_reread_says_0_route_as_the_answers_do():
    verification = verify(_buildings_only())
    assert verification.summary.counts["road"] == 0
    said = mask_reread("mask.png", "catégories", None, verification, "fr")
    assert "0 route" in said and "0 routes" not in said
    assert "2 bâtiments" in said
    english = mask_reread("mask.png", "categories", None, verification, "en")
    assert "0 roads" in english and "2 buildings" in english


def test_areas_of_interest_are_counted_with_the_same_plural_rule():
    assert "0 polygone " in aoi_loaded("parcels.geojson", [], "fr")
    assert "1 polygone " in aoi_loaded("parcels.geojson", ["a"], "fr")
    assert "2 polygones " in aoi_loaded("parcels.geojson", ["a", "b"], "fr")
    assert "0 polygons " in aoi_loaded("parcels.geojson", [], "en")


def test_the_readme_names_every_progress_text_the_page_keeps_in_english():
    """Progress texts are the page's chrome, in English like its labels (``tests/test_layout.py``); the README's
    list of what stays English names each, so a new one is said there too."""
    import ast

    root = Path(__file__).resolve().parents[2]
    readme = " ".join(root.joinpath("README.md").read_text(encoding="utf-8").split())  # lines wrap anywhere
    texts = []
    for path in sorted(root.joinpath("agent", "page").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == "desc":
                if isinstance(node.value, ast.Constant):
                    texts.append(node.value.value)
                elif isinstance(node.value, ast.JoinedStr):  # f"answering ({…})": its words before the first slot
                    first = node.value.values[0]
                    texts.append(first.value if isinstance(first, ast.Constant) else "")
    assert len(texts) >= 5
    missing = [text for text in texts if f'"{text}' not in readme]
    assert not missing, missing
