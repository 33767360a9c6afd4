"""Every sentence a user reads comes from this package: answers, notes, "why?", "are you sure?", export notes.

How to add a sentence (other modules return facts, never prose; ``tests/test_layout.py`` checks it):

1. Add an entry to each of the six catalogs ``locale/<lang>/LC_MESSAGES/changeagent.po`` (en, fr, es, de, pt, zh):
   ``msgctxt`` is the key the code uses, ``msgid`` the English text, ``msgstr`` the language's text. Slots are
   ``str.format`` fields (``{region}``, ``{pct}``) and every language uses exactly the English slots.
2. Write it from the code with ``say("key", lang, region=…, pct=…)`` (``agent.answering.wording``), or
   ``message("key", lang)`` for a bare word. Numbers, shares and areas go in through ``agent.answering.numbers``
   so that they follow the language's conventions (``12,5 %`` in French, ``8.744`` px in German).
3. ``tests/agent/test_catalogs.py`` fails while a language lacks the entry or changes its slots.

The catalogs are read with Babel on first use and kept in memory (``agent.answering.catalog``); nothing is compiled
at install time.
"""

from agent.answering.compose import HEDGE_BELOW, Composed, Knowledge, compose, mask_phrase
from agent.answering.exports import describe_export, export_notes, unplaced_hint
from agent.answering.turn import about_previous, compose_turn

__all__ = [
    "HEDGE_BELOW",
    "Composed",
    "Knowledge",
    "about_previous",
    "compose",
    "compose_turn",
    "describe_export",
    "export_notes",
    "mask_phrase",
    "unplaced_hint",
]
