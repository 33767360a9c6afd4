"""What the page shows beside an answer: the evidence in Markdown, the grid table, and image previews."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from agent.answer import Answer
from agent.answering.page_messages import clip, confidence_label, mask_line
from agent.answering.provenance import mask_detail, resolution_text, verdict_rules
from agent.answering.reading import model_parse_text, reading_text
from deltavlm.rules import CELL_IDS

PREVIEW_MAX_SIDE = 2048


def scrub(message: str, labels: Mapping[str | None, str]) -> str:
    """Show uploaded files by role and name: server paths mean nothing to a visitor and should not leak.

    ``labels`` maps each path to what the visitor calls it ("the before (t1) file x.png"): LEVIR-style pairs
    share one file name across the dates, so a name alone would give both files the same name.
    """
    for path, label in sorted(labels.items(), key=lambda item: -len(str(item[0] or ""))):
        if path:
            said = re.escape(str(Path(path)))
            message = re.sub(rf"\b(?:t1|t2|mask|image) (?:file|path) {said}", lambda _, shown=label: shown, message)
            message = re.sub(said, lambda _, shown=label: shown, message)
    return message


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def evidence_markdown(answer: Answer, overlay_cells: Sequence[str]) -> str:
    """The full evidence of the latest answer, for a person to check: route, numbers, grid, model, conflicts."""
    ev = answer.evidence
    out = [
        f"**Question (turn {answer.turn + 1}):** {answer.question}",
        f"**Intent:** {answer.intent} — {reading_text(ev.route)}"
        + (" (follow-up)" if ev.route.follow_up else "")
        + f" · **answer {confidence_label(answer)}** · **model used:** {'yes' if answer.model_used else 'no'}",
        f"**Tools:** {' → '.join(ev.tools)}",
        f"**Change mask:** {mask_line(answer)}"
        + (f"  \n_{mask_detail(ev.mask.made_by)}_" if ev.mask and ev.mask.made_by.method != "unstated" else ""),
    ]
    verification = answer.verification
    if verification is not None:
        summary = verification.summary
        out.append("#### Verifier numbers (OpenCV rules on the mask)")
        rows = ["| measure | value |", "|---|---|"]
        rows.append(f"| changed | {_value(summary.changed)} |")
        rows.append(f"| changed pixels | {summary.changed_pixels:,} ({summary.changed_fraction:.1%} of the image) |")
        rows.append(f"| objects per category | {_value(summary.counts)} |")
        rows.append(f"| changed regions | {summary.changed_regions} |")
        rows.append(f"| changed cells | {_value(summary.cells)} |")
        out.append("\n".join(rows))
        if summary.cell_fractions:
            out.append(_grid_table(summary.cell_fractions, set(summary.cells)))
        for name, rule in verdict_rules(verification).items():
            out.append(f"- _{name} rule:_ {rule}")
    if ev.model is not None:
        model = ev.model
        out.append("#### DeltaVLM")
        out.append(f"- backend: {model.backend}; latency {model.latency_s:.2f} s")
        out.append(f"- instruction: “{clip(model.instruction, 300)}”")
        out.append(f"- reply: “{clip(model.text, 500)}”" if model.ok else f"- no answer: {clip(model.error, 500)}")
        if ev.model_parsed:
            out.append(f"- read from the reply: {model_parse_text(ev.model_parsed)}")
    if answer.conflicts:
        out.append("#### Conflicts and how they were resolved")
        for c in answer.conflicts:
            out.append(
                f"- **{c.fact}:** kept {_value(c.kept)} from {c.kept_source} over {_value(c.rejected)} from "
                f"{c.rejected_source} — {resolution_text(c)}"
            )
    else:
        out.append("**Conflicts:** none")
    if ev.facts:
        out.append("#### Facts stated in this answer")
        for fact in ev.facts.values():
            out.append(f"- {fact.key} = {_value(fact.value)} ({fact.source}, confidence {fact.confidence:.2f})")
    if answer.cells is not None and sorted(answer.cells) != sorted(overlay_cells):
        out.append(
            f"_Note: the answer names cells {_value(answer.cells)}; the overlay outlines the mask's cells "
            f"{_value(list(overlay_cells))}._"
        )
    return "\n\n".join(out)


def _grid_table(fractions: dict[str, float], changed: set[str]) -> str:
    """The 3×3 grid as a table of changed fractions; changed cells (over the threshold) in bold."""
    rows = ["| | left | centre | right |", "|---|---|---|---|"]
    for r, label in enumerate(("top", "centre", "bottom")):
        cells = []
        for cell in CELL_IDS[r * 3 : r * 3 + 3]:
            text = f"{cell} {fractions.get(cell, 0.0):.1%}"
            cells.append(f"**{text} ✓**" if cell in changed else text)
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def preview(image: np.ndarray) -> np.ndarray:
    """Shrink a picture for the browser (area interpolation keeps small changes visible as tints)."""
    longest = max(image.shape[:2])
    if longest <= PREVIEW_MAX_SIDE:
        return image
    factor = PREVIEW_MAX_SIDE / longest
    size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
