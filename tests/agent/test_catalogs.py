"""Every message of the answers exists in every language, non-empty, with the same slots; the check can fail."""

from __future__ import annotations

import ast
import shutil
import string
from pathlib import Path

import pytest

from agent.answering.catalog import LANGUAGES, LOCALE_DIR, SOURCE, po_path, read_catalog

ANSWERING = Path(__file__).resolve().parents[2] / "agent" / "answering"


def _slots(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def missing_translations(root: Path = LOCALE_DIR) -> list[str]:
    """Every problem in the catalogs under ``root``: entries absent, empty or with other slots than English."""
    source = {m.context: m for m in read_catalog(SOURCE, root) if m.id and m.context}
    problems = []
    for lang in LANGUAGES:
        entries = {m.context: m for m in read_catalog(lang, root) if m.id and m.context}
        for key, english in source.items():
            found = entries.get(key)
            if found is None or not found.string:
                problems.append(f"{lang}: {key} has no translation")
            elif _slots(found.string) != _slots(english.string or english.id):
                problems.append(f"{lang}: {key} has slots {_slots(found.string)}, English {_slots(english.id)}")
        problems += [f"{lang}: {key} is not in English" for key in set(entries) - set(source)]
    return problems


def test_every_message_is_translated_with_the_same_slots():
    assert not missing_translations()


def test_a_missing_or_broken_translation_fails_the_check(tmp_path):
    root = tmp_path / "locale"
    shutil.copytree(LOCALE_DIR, root)
    fr = po_path("fr", root)
    text = fr.read_text(encoding="utf-8")
    assert 'msgstr "Oui"' in text and "{pct} de ses pixels" in text
    fr.write_text(text.replace('msgstr "Oui"', 'msgstr ""').replace("{pct} de ses pixels", "{pourcent} de ses pixels"))
    problems = missing_translations(root)
    assert "fr: yes has no translation" in problems
    assert any(p.startswith("fr: region_changed has slots") for p in problems)


def _keys_used() -> set[str]:
    """Message keys the answering code names literally: say("key", …) and message("key", …)."""
    keys = set()
    for path in ANSWERING.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("say", "message") and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    keys.add(first.value)
    return keys


def test_every_key_the_code_names_is_in_the_catalog():
    known = {m.context for m in read_catalog(SOURCE) if m.context}
    used = _keys_used()
    assert len(used) > 20
    assert not used - known


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_catalog_names_its_language(lang):
    assert str(read_catalog(lang).locale).startswith(lang)


def test_every_subject_the_reader_knows_has_a_name_in_the_catalog():
    """A subject no mask separates ("trees") is named in the answer's language, never by the reader's key."""
    from agent.reading.lexicon import OTHER_SUBJECTS

    known = {m.context for m in read_catalog(SOURCE) if m.context}
    assert {f"subject:{name}" for name in OTHER_SUBJECTS} <= known
