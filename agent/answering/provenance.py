"""Where a mask's confidence and a pixel's size come from, in words: the tools' facts worded per language.

The providers state the facts (held-out accuracy, the pairs and data sets behind it, any fallback; the area rule and
CRS behind a pixel's size); an answer quotes them through these functions, in the question's language.
"""

from __future__ import annotations

from agent.answering.catalog import message, messages
from agent.answering.numbers import decimal, integer, significant
from agent.answering.wording import say
from tools.areas import PixelArea
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


def pixel_size_text(area: PixelArea, lang: str = "en") -> str:
    """How the pair's pixel size was found, e.g. "projected CRS EPSG:32614: |a·e − b·d| = 0.25 m² per pixel"."""
    pixel = significant(area.mean_pixel_m2, lang, 4) if area.mean_pixel_m2 is not None else ""
    gsd = significant(area.pixel_side_m, lang, 6) if area.pixel_side_m is not None else ""
    return say(f"pixel_size:{area.method}", lang, crs=area.crs or "", pixel=pixel, gsd=gsd, error=area.crs_error)


def gsd_disagreement(area: PixelArea, lang: str = "en") -> str | None:
    """The note when the user's GSD differs from the georeference's pixel side (which won); None when it does not."""
    if area.disagreeing_gsd_m is None or area.pixel_side_m is None:
        return None
    return say(
        "pixel_size:disagree",
        lang,
        gsd=significant(area.disagreeing_gsd_m, lang, 6),
        side=significant(area.pixel_side_m, lang, 3),
    )
