"""The message catalogs: one gettext ``.po`` file per language under ``locale/<lang>/LC_MESSAGES/changeagent.po``.

Every entry is keyed by its ``msgctxt`` (the name the code uses, e.g. ``region_changed``); ``msgid`` is the English
text and ``msgstr`` the language's. Slots are ``str.format`` fields (``{region}``, ``{pct}``) and must be the same
in every language (``tests/agent/test_catalogs.py`` fails on a missing, empty or slot-changed translation).

The ``.po`` files are read with Babel when a language is first used and kept in memory (compiled at load time): a
fresh ``pip install -e .`` needs no build step and no generated ``.mo`` file can go stale.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "changeagent"
LANGUAGES: tuple[str, ...] = ("en", "fr", "es", "de", "pt", "zh")
SOURCE = "en"


def po_path(lang: str, root: Path = LOCALE_DIR) -> Path:
    return root / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(lang: str, root: Path = LOCALE_DIR) -> Catalog:
    """The parsed catalog of ``lang``; a missing or broken file is an error naming it."""
    path = po_path(lang, root)
    try:
        with path.open("rb") as handle:
            return read_po(handle, locale=lang, domain=DOMAIN)
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"message catalog {path} cannot be read: {exc}") from exc


@lru_cache(maxsize=len(LANGUAGES))
def messages(lang: str) -> dict[str, str]:
    """``msgctxt`` → translated text of ``lang`` (only entries with a translation)."""
    return {m.context: m.string for m in read_catalog(lang) if m.id and m.context and m.string}


def message(key: str, lang: str) -> str:
    """The text of ``key`` in ``lang``; English when the language lacks it (which the catalog test forbids)."""
    found = messages(lang).get(key) if lang in LANGUAGES else None
    if found is None:
        found = messages(SOURCE).get(key)
    if found is None:
        raise KeyError(f"no message {key!r} in {po_path(SOURCE)}")
    return found
