"""What the page says when something goes wrong: the problem in plain words, the file it concerns, what to do.

Every problem is said twice, as the assistant's reply in the chat (where the visitor is looking) and in the
status line; both come from here so they cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path

from agent.mask_options import MASK_CATEGORY_LABEL, MASK_KIND_LABEL

# Markers at the head of page messages: glyphs every text font family has (DejaVu Sans, Liberation, Noto Sans),
# never emoji, so a browser without an emoji font shows them instead of empty boxes.
MARK_OK = "✓"
MARK_PROBLEM = "⚠"  # U+26A0 without the emoji variation selector: drawn as text
MARK_AGAIN = "↻"
MARK_PLACE = "◎"
MARKS = (MARK_OK, MARK_PROBLEM, MARK_AGAIN, MARK_PLACE)

_ADVICE: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("differ in size", "different pixel grids", "different CRS", "is georeferenced", "world file"),
        "upload two co-registered dates of the same place: the same size, and the same CRS and pixel grid when "
        "georeferenced (crop or resample one onto the other first).",
    ),
    (
        ("over this page's limit", "over the limit of"),
        "analyse large scenes from the command line with `changeagent scene T1.tif T2.tif --out DIR`, or upload a "
        "smaller crop.",
    ),
    (
        ("not a readable image", "could not be read", "no bands", "not found"),
        "upload a PNG, JPEG or (Geo)TIFF image; the file named above is not one this page can read.",
    ),
    (
        ("bounds", "CRS"),
        "correct the Bounds (W,S,E,N) or CRS field under *Place a plain image on the map* and press Apply.",
    ),
    (
        ("mask",),
        f"upload the change mask that belongs to this pair (same size), or change **{MASK_KIND_LABEL}** / "
        f"**{MASK_CATEGORY_LABEL}** to say how to read it.",
    ),
)


def file_label(role: str, path: str | None) -> str:
    """How a visitor knows a file: its role and its name (dates of a LEVIR pair share one file name)."""
    return f"the {role} file {Path(path).name}" if path else f"the {role} file"


def advice(message: str) -> str:
    """What to do about a problem, picked by what the message says."""
    for needles, what in _ADVICE:
        if any(needle in message for needle in needles):
            return what
    return "fix the file named above and upload it again."


def load_problem(message: str, kept: str | None) -> str:
    """The chat reply for a pair that could not be loaded; ``kept`` names the pair that stays loaded, if any."""
    still = (
        f"\n\nThe pair **{kept}** is still loaded and the conversation about it goes on."
        if kept
        else "\n\nNo pair is loaded yet."
    )
    return (
        f"{MARK_PROBLEM} **Could not load the pair.** {_sentence(message)}\n\n**What to do:** {advice(message)}{still}"
    )


def not_loaded(load_error: str | None) -> str:
    """The reply to a question asked while no pair is loaded, repeating why the last load failed."""
    if load_error:
        return (
            f"{MARK_PROBLEM} **No pair is loaded**, so I cannot answer yet: the last upload failed. "
            f"{_sentence(load_error)}\n\n"
            f"**What to do:** {advice(load_error)}"
        )
    return (
        f"{MARK_PROBLEM} **No pair is loaded yet.** Upload a before (t1) and an after (t2) image on the left, or "
        "pick a synthetic example, then ask again."
    )


def status_line(chat_reply: str) -> str:
    """The status line repeats the chat's reply in one paragraph."""
    return " ".join(part.strip() for part in chat_reply.split("\n\n") if part.strip())


def _sentence(text: str) -> str:
    text = text.strip()
    if text and not any(ch.isdigit() for ch in text.split(" ", 1)[0]):  # "t1 and t2 …" keeps its case
        text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def mask_kind_hint(mask_name: str) -> str:
    """Said at upload when a two-valued mask (0/255, 0/1) was read as "auto" with no category: its change has no
    category, so counts will be of changed regions, not of buildings or roads, unless the visitor names one."""
    return (
        f"{MARK_PROBLEM} **The mask `{mask_name}` has two values (0 and 255, or 0 and 1)**, so it is read as change "
        "with no category: counts will be changed regions, not buildings or roads. If its change is one category "
        f"(LEVIR-CD labels are buildings), choose it in **{MASK_CATEGORY_LABEL}**; if it is LEVIR-MCI "
        f"(0/128/255), choose levir-mci in **{MASK_KIND_LABEL}**."
    )


def aoi_loaded(source: str, labels: list[str]) -> str:
    """Said when areas of interest are loaded: how many, their names, and what to ask."""
    shown = ", ".join(labels[:8]) + (f" and {len(labels) - 8} more" if len(labels) > 8 else "")
    return (
        f"{MARK_PLACE} **Areas of interest loaded:** {len(labels)} polygon{'s' * (len(labels) != 1)} from "
        f"`{source}` ({shown}). Ask “which parcels changed?”, “how much of plot 12 changed?” or “rank the parcels "
        "by change”; the downloads then include your layer with each polygon's figures."
    )
