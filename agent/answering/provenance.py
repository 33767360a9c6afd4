"""Where a mask, its confidence, a pixel's size and a kept fact come from, in words, per language.

The providers state the facts (held-out accuracy, the pairs and data sets behind it, any fallback; the area rule and
CRS behind a pixel's size); an answer quotes them through these functions, in the question's language.
"""

from __future__ import annotations

from agent.answering.catalog import message, messages
from agent.answering.numbers import decimal, integer, percent, significant
from agent.answering.wording import clauses, noun, say
from agent.ledger import Conflict
from tools.areas import PixelArea
from tools.gsd import describe_gsd
from tools.masks import ConfidenceBasis, MaskMethod, MaskReading
from tools.verify import Verification


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
    return clauses(parts, lang)


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


def _reading(reading: MaskReading | None, lang: str) -> str:
    if reading is None:
        return message("made_by:unstated", lang)
    if reading.convention != "binary":
        return message(f"reading:{reading.convention}", lang)
    target = reading.binary_class or "change"
    named = message("reading:any_change", lang) if target == "change" else noun(target, lang, 1)
    return say("reading:binary", lang, target=named)


def mask_detail(made_by: MaskMethod, lang: str = "en") -> str:
    """What made a mask, e.g. "classical detector (colour/structure change) at 0.5 m/px: knows where …"."""
    m = made_by
    if m.method in ("user_file", "user_scene_file"):
        text = say(f"made_by:{m.method}", lang, reading=_reading(m.reading, lang))
    elif m.method == "classical":
        gsd = m.analysed_gsd_m or 0.0
        scale = (
            say("made_by:scale_known", lang, gsd=describe_gsd(gsd))
            if m.gsd_known
            else say("made_by:scale_unknown", lang, gsd=significant(gsd, lang, 6))
        )
        text = say(
            "made_by:classical",
            lang,
            scale=scale,
            pct=percent(m.changed_fraction or 0.0, lang),
            area=significant(m.min_area_m2 or 0.0, lang, 6),
        )
    elif m.method == "learned_file":
        text = say(
            "made_by:learned_file",
            lang,
            name=m.model_name or "",
            format=m.model_format or "",
            runtime=m.runtime or "",
            classes=", ".join(m.classes),
            threshold=significant(m.threshold or 0.0, lang, 6),
            stated=significant(m.stated_confidence or 0.0, lang, 6),
            certainty=decimal(m.certainty or 0.0, lang, 2),
        )
    elif m.method == "deltavlm_head":
        stated = significant(m.stated_confidence or 0.0, lang, 6)
        text = say("made_by:deltavlm_head", lang, config=m.config or "", stated=stated)
    else:
        text = message(f"made_by:{m.method}", lang)
    if m.tile_px is not None:
        text += clauses(["", ""], lang) + say(
            "made_by:tiles", lang, tile=integer(m.tile_px, lang), overlap=integer(m.overlap_px or 0, lang)
        )
    return text


def resolution_text(conflict: Conflict, lang: str = "en") -> str:
    """How a conflict was settled, e.g. "kept my answer from turn 1, which is more confident"."""
    turn = integer(conflict.earlier_turn + 1, lang) if conflict.earlier_turn is not None else ""
    return say(
        f"resolution:{conflict.resolution}",
        lang,
        source=conflict.kept_source,
        turn=turn,
        fact=conflict.shown_by or "",
        value=conflict.shown_value,
    )


def verdict_rules(verification: Verification, lang: str = "en") -> dict[str, str]:
    """The rule behind each verdict, in words: counts, grid (with its no-data clause) and yes/no."""
    grid = verification.grid
    grid_rule = say("rule:grid", lang, pct=percent(grid.cell_threshold, lang, 0))
    if grid.min_valid_cell_fraction is not None:
        grid_rule += " " + say("rule:grid_valid", lang, pct=percent(grid.min_valid_cell_fraction, lang, 0))
    return {
        "counts": say("rule:counts", lang, px=integer(verification.counts.min_object_pixels, lang)),
        "grid": grid_rule,
        "binary": message("rule:binary", lang),
    }
