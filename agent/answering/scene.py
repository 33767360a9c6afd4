"""The answers of a whole-scene analysis (``changeagent scene``), as the report prints them."""

from __future__ import annotations

from deltavlm.rules import CATEGORIES, ChangeSummary
from tools.masks import MaskSource
from tools.orientation import Orientation


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def scene_report(
    s: ChangeSummary,
    source: MaskSource,
    *,
    objects_across_tiles: int,
    changed_tiles: int,
    tiles_total: int,
    tile: int,
    orientation: Orientation | None = None,
) -> str:
    """The scene's answers, one per line: changed, objects, cells, tiles, valid data; on a scene that is not
    north-up, a line saying the cell names follow the image as drawn."""
    by = f"{source.provider} mask, confidence {source.confidence:.2f}"
    part = "scene" if s.valid_fraction >= 1.0 else "valid part"
    valid = (
        []
        if s.valid_fraction >= 1.0
        else [
            f"Valid data: {s.valid_fraction:.2%} of the scene (both dates hold data there); the rest is no data, "
            "neither changed nor unchanged."
        ]
    )
    no_data = [f"No-data 3×3 cells (too little valid data): {' '.join(s.no_data_cells)}."] if s.no_data_cells else []
    if not s.changed:
        return "\n".join([f"No change: no pixel of the {part} changed by the {by}.", *valid, *no_data])
    lines = [f"Changed: yes, {s.changed_fraction:.2%} of the {part} ({s.changed_pixels:,} px) by the {by}.", *valid]
    cut = f"{_plural(objects_across_tiles, 'object')} span tile borders and count once"
    if s.categorical:
        counts = ", ".join(_plural(s.counts[c], c) for c in CATEGORIES)
        lines.append(f"Changed objects: {counts} ({cut}).")
    else:
        lines.append(
            f"About {_plural(s.changed_regions, 'changed region')} (the mask has no categories; {cut}); "
            "counts from a classical mask are estimates."
        )
    lines.append(f"Changed 3×3 cells: {' '.join(s.cells) or 'none'}.")
    if orientation is not None and not orientation.north_up:
        turned = "" if orientation.exact else f", turned about {round(orientation.rotation_deg)}° from north-up"
        lines.append(
            f"The scene is not north-up (its top edge faces {orientation.facing['top']}{turned}): the cell names "
            "TL…BR are as the image is drawn, not compass directions."
        )
    lines.extend(no_data)
    if s.categorical:
        for c in CATEGORIES:
            lines.append(f"  {c}: {' '.join(s.category_cells[c]) or 'none'}")
    lines.append(
        f"Changed tiles: {changed_tiles} of {tiles_total} ({tile} px tiles, more than "
        f"{s.settings.cell_threshold:.0%} of the tile changed)."
    )
    return "\n".join(lines)
