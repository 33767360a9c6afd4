"""Where a mask's confidence comes from, in words: the facts of ``tools.masks.ConfidenceBasis`` worded per language.

The providers state the facts (held-out accuracy, the pairs and data sets behind it, any fallback); an answer that
hedges quotes them through this one function, in the question's language.
"""

from __future__ import annotations

from agent.answering.catalog import message, messages
from agent.answering.numbers import decimal, integer
from agent.answering.wording import say
from tools.masks import ConfidenceBasis


def _named(prefix: str, key: str | None, lang: str) -> str:
    """A band or sensor key in words; a key the catalogs do not know is shown as it is."""
    return message(f"{prefix}:{key}", lang) if f"{prefix}:{key}" in messages("en") else str(key)


def confidence_reason(basis: ConfidenceBasis, lang: str = "en") -> str:
    """The reason for a mask's confidence, e.g. "binary accuracy 0.83 (10/12) and grid F1 0.61 on held-out …"."""
    if basis.kind != "held_out":
        accuracy = decimal(basis.binary_accuracy or 0.0, lang, 2)
        return say(f"basis:{basis.kind}", lang, accuracy=accuracy)
    sensor = _named("sensor", basis.sensor, lang)
    kind = say("basis:pair_kind", lang, band=_named("band", basis.gsd_band, lang), sensor=sensor)
    parts = [
        say(
            "basis:held_out_learned" if basis.detector == "learned" else "basis:held_out",
            lang,
            accuracy=decimal(basis.binary_accuracy or 0.0, lang, 2),
            correct=integer(basis.binary_correct or 0, lang),
            pairs=integer(basis.pairs or 0, lang),
            f1=decimal(basis.grid_f1 or 0.0, lang, 2),
            kind=kind,
            datasets=", ".join(basis.datasets),
        )
    ]
    if basis.fallback:
        parts.append(say(f"basis:{basis.fallback}", lang, sensor=sensor))
    if not basis.default_settings:
        parts.append(message("basis:other_settings", lang))
    return "; ".join(parts)
