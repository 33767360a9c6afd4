"""The command line's summary of a verification: the rules' verdicts in the user's language, one fact a line.

``tools.verify`` returns the verdicts as numbers and names; this module words them (``changeagent verify``,
``demo``), so the tools hold no sentences and the summary follows the catalogs like every answer.
"""

from __future__ import annotations

from agent.answering.catalog import message
from agent.answering.numbers import decimal, integer, percent
from agent.answering.wording import noun, say
from deltavlm.rules import CATEGORIES, CELL_IDS
from tools.verify import Verification


def _cells(cells: list[str], lang: str) -> str:
    return " ".join(cells) or message("none", lang)


def verification_text(verification: Verification, lang: str = "en") -> str:
    """A verification as the lines the CLI prints: mask, yes/no, objects, cells and the 3×3 table of shares."""
    v = verification
    whole = "image" if v.valid_fraction >= 1.0 else "valid"
    lines = [
        say(
            "verify:mask",
            lang,
            provider=v.source.provider,
            kind=v.source.kind,
            confidence=decimal(v.source.confidence, lang, 2),
        ),
        say(
            f"verify:changed_{whole}",
            lang,
            answer=message("verify:yes" if v.binary.changed else "verify:no", lang),
            pixels=integer(v.binary.changed_pixels, lang),
            pct=percent(v.binary.changed_fraction, lang),
        ),
    ]
    if v.valid_fraction < 1.0:
        lines.append(say("verify:valid", lang, pct=percent(v.valid_fraction, lang)))
    if v.counts.categorical:
        counts = ", ".join(
            f"{integer(v.counts.counts[c], lang)} {noun(c, lang, v.counts.counts[c])}" for c in CATEGORIES
        )
        lines.append(say("verify:objects", lang, counts=counts))
    else:
        lines.append(say("verify:regions", lang, count=integer(v.counts.changed_regions, lang)))
    lines.append(say("verify:cells", lang, cells=_cells(v.grid.cells, lang)))
    if v.grid.no_data_cells:
        lines.append(say("verify:no_data_cells", lang, cells=_cells(v.grid.no_data_cells, lang)))
    for category, cells_of in v.grid.category_cells.items():
        named = message(f"verify:cells_of:{category}", lang)
        lines.append(f"  {say('verify:category_cells', lang, category=named, cells=_cells(cells_of, lang))}")
    shown = {c: "--" if c in v.grid.no_data_cells else percent(v.grid.cell_fractions[c], lang) for c in CELL_IDS}
    grid = [" ".join(f"{shown[c]:>6}" for c in CELL_IDS[r * 3 : r * 3 + 3]) for r in range(3)]
    lines.append(message("verify:grid", lang))
    lines.extend(f"  {row}" for row in grid)
    return "\n".join(lines)
