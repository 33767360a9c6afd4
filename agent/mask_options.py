"""How a user names the meaning of a change-mask file: one vocabulary for the CLI, batch, scene and the page.

A 0/255 file cannot say whether 255 means "building" (LEVIR-MCI, LEVIR-CD) or "any change" (DSIFN), so every
front-end asks the same two questions in the same words. The specs are plain data: each front-end turns them
into its own controls, and the core imports no front-end library. The pixel size a user states for plain images
(``--gsd``) is asked the same way on every command, so it lives here too.
"""

from __future__ import annotations

from typing import Any, get_args

from deltavlm.rules import CATEGORIES
from tools.gsd import check_gsd
from tools.masks import MaskKind
from tools.raster import InputError

MASK_KINDS: tuple[str, ...] = get_args(MaskKind)
MASK_KIND_LABEL = "Mask kind"
MASK_CATEGORY_LABEL = "Mask category"
NO_CATEGORY = "none"
MASK_CATEGORY_CHOICES: tuple[str, ...] = (NO_CATEGORY, *CATEGORIES)
MASK_KIND_HELP = "how to read {what}: LEVIR-MCI values (0/128 road/255 building), class indices, or binary"
MASK_CATEGORY_HELP = "with binary masks: the category their change belongs to (LEVIR-CD labels are buildings)"


def category_hint(category: str = "building") -> str:
    """How to name a binary mask's category, in the words of both front-ends (the page's label, the CLI's flag)."""
    return (
        f"set **{MASK_CATEGORY_LABEL} → {category}** on the page, or `--mask-category {category}` on the command line"
    )


def mask_option_specs(what: str) -> list[tuple[str, dict[str, Any]]]:
    """``(flag, keyword arguments)`` of the two mask options, ready for ``parser.add_argument(flag, **kwargs)``."""
    return [
        (
            "--mask-kind",
            {
                "choices": list(MASK_KINDS),
                "default": "auto",
                "help": f"{MASK_KIND_LABEL}: {MASK_KIND_HELP.format(what=what)}",
            },
        ),
        ("--mask-category", {"choices": list(CATEGORIES), "help": f"{MASK_CATEGORY_LABEL}: {MASK_CATEGORY_HELP}"}),
    ]


GSD_HELP = (
    "ground sampling distance (metres per pixel) of plain images: the classical detector's scale, the confidence "
    "it states and the areas follow it; a georeference with a pixel size wins over it"
)


def metres(text: str) -> float:
    """A positive, finite number of metres per pixel (argparse names this function in its error: "invalid metres
    value")."""
    try:
        return check_gsd(float(text))
    except InputError as exc:
        raise ValueError(str(exc)) from None


def gsd_option_spec() -> tuple[str, dict[str, Any]]:
    """``(flag, keyword arguments)`` of ``--gsd METRES``, the same on verify, ask, chat, batch and scene."""
    return "--gsd", {"type": metres, "metavar": "METRES", "help": GSD_HELP}
