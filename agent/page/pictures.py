"""The pictures of the compare view: both dates, the same two with the changes drawn, a legend, full-size files.

The swipe needs two pictures of one size: the dates at the overlay's scale, or the dates with the change mask,
grid and changed cells drawn on each, so sliding compares the ground under identical marks. Pictures sent to the
browser are shrunk to :data:`~agent.page.evidence.PREVIEW_MAX_SIDE`; when that loses detail, the full-resolution
files are offered for download beside the view.
"""

from __future__ import annotations

import html
from pathlib import Path

from pydantic import BaseModel, Field

from agent.page.evidence import PREVIEW_MAX_SIDE, preview
from tools.masks import ChangeMask
from tools.overlay import draw_changes, enlarged, legend_entries, render_overlay, save_png
from tools.pairs import ImagePair
from tools.verify import Verification

GRID_CHOICES: tuple[tuple[str, int], ...] = (
    ("3×3 (the ChangeChat cells)", 0),
    ("6×6 finer grid", 6),
    ("9×9 finer grid", 9),
    ("12×12 finer grid", 12),
)


class DatePictures(BaseModel):
    """Both dates as the swipe shows them, and full-size copies when the swipe's are reduced."""

    before: str
    after: str
    full_size: list[str] = Field(default_factory=list)


class ChangePictures(BaseModel):
    """One answer's pictures: both dates with the changes drawn, the overlay file with its legend, the legend."""

    before: str
    after: str
    overlay: str
    legend: str
    full_size: list[str] = Field(default_factory=list)


def reduced(pair: ImagePair) -> bool:
    """True when the swipe shows less than every pixel (the dates are larger than a preview)."""
    return max(pair.shape) > PREVIEW_MAX_SIDE


def date_pictures(pair: ImagePair, folder: Path) -> DatePictures:
    """The two dates at the overlay's scale, shrunk for the browser; full size too when shrinking lost pixels."""
    before = save_png(preview(enlarged(pair.t1)), folder / "before.png")
    after = save_png(preview(enlarged(pair.t2)), folder / "after.png")
    full = []
    if reduced(pair):
        full = [str(save_png(pair.t1, folder / "before_full.png")), str(save_png(pair.t2, folder / "after_full.png"))]
    return DatePictures(before=str(before), after=str(after), full_size=full)


def change_pictures(
    pair: ImagePair, mask: ChangeMask, verification: Verification, folder: Path, stem: str, fine_grid: int = 0
) -> ChangePictures:
    """The change marks on both dates (for the swipe), the overlay with its legend strip (a file), the legend."""
    marked = [draw_changes(image, mask, verification, fine_grid=fine_grid) for image in (pair.t1, pair.t2)]
    before = save_png(preview(marked[0]), folder / f"{stem}_before_changes.png")
    after = save_png(preview(marked[1]), folder / f"{stem}_after_changes.png")
    overlay = save_png(render_overlay(pair, mask, verification, fine_grid=fine_grid), folder / f"{stem}_overlay.png")
    full = [str(overlay)]
    if reduced(pair):
        full.append(str(save_png(marked[0], folder / f"{stem}_before_changes_full.png")))
    return ChangePictures(
        before=str(before),
        after=str(after),
        overlay=str(overlay),
        legend=legend_html(mask, verification, fine_grid),
        full_size=full,
    )


def legend_html(mask: ChangeMask, verification: Verification, fine_grid: int = 0) -> str:
    """The overlay's legend as page text (crisp at any zoom), from the same entries as the picture's strip."""
    items = []
    for kind, label, (r, g, b) in legend_entries(mask, verification, fine_grid):
        colour = f"rgb({r},{g},{b})"
        style = {
            "fill": f"background:{colour};opacity:0.8",
            "outline": f"border:3px solid {colour}",
            "line": f"border-top:2px solid {colour};height:0;margin-top:8px",
        }[kind]
        swatch = f'<span style="display:inline-block;width:18px;height:14px;{style};vertical-align:middle"></span>'
        items.append(f'<span style="margin-right:18px;white-space:nowrap">{swatch} {html.escape(label)}</span>')
    source = mask.source
    where = f"mask: {html.escape(source.provider)} ({html.escape(source.kind)}), confidence {source.confidence:.2f}"
    return (
        f'<div class="legend" style="font-size:15px;line-height:1.9">{"".join(items)}<br><small>{where}</small></div>'
    )
