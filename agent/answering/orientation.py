"""The sentence that says a raster is not north-up, in the question's language.

Compass words were read on the image sides that face them (``tools.orientation``); the grid's cell names
(TL…BR) and the words top, bottom, left and right stay as the image is drawn. An answer about places on such a
raster says both, so a reader who looks at the picture and at a map can tell which is which.
"""

from __future__ import annotations

from agent.answering.catalog import message
from agent.answering.wording import sentence
from tools.orientation import Orientation


def facing(orientation: Orientation | None) -> dict[str, str] | None:
    """Image side → the compass direction it faces, when the pair is not north-up; else None."""
    if orientation is None or orientation.north_up:
        return None
    return dict(orientation.facing)


def orientation_sentence(orientation: Orientation | None, lang: str) -> str | None:
    """The note for an answer about places on a raster that is not north-up; None on a north-up or plain one."""
    sides = facing(orientation)
    if orientation is None or sides is None:
        return None
    top = message(f"direction:{sides['top']}", lang)
    if orientation.exact:
        return sentence(message("orientation_exact", lang).format(top=top))
    degrees = round(min(orientation.rotation_deg, 360.0 - orientation.rotation_deg))
    return sentence(message("orientation_nearest", lang).format(top=top, deg=degrees))
