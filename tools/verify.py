"""Deterministic verifiers: the ChangeChat rules applied to a change mask, with their evidence.

Each verifier returns what it concluded, the numbers that led there, and the mask's source, so an
answer can show its working and the agent can weigh a classical mask below a supplied one.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from deltavlm.rules import ChangeSummary, RuleSettings, summarize
from tools.masks import ChangeMask, MaskSource


class BinaryVerdict(BaseModel):
    changed: bool
    changed_pixels: int
    changed_fraction: float
    source: MaskSource


class CountVerdict(BaseModel):
    counts: dict[str, int] = Field(description="Objects per named category; empty when the mask has none.")
    changed_regions: int = Field(description="Objects over all change, category or not.")
    categorical: bool
    min_object_pixels: int = Field(description="The counting rule: objects under this many pixels are ignored.")
    source: MaskSource


class GridVerdict(BaseModel):
    cells: list[str] = Field(description="Changed cells over all change.")
    no_data_cells: list[str] = Field(
        default_factory=list, description="Cells with too little valid data to call changed or unchanged."
    )
    category_cells: dict[str, list[str]]
    cell_fractions: dict[str, float]
    categorical: bool
    cell_threshold: float = Field(description="The grid rule: a cell changed when more than this share changed.")
    min_valid_cell_fraction: float | None = Field(
        None, description="With a valid-data mask: a cell under this share of valid data is 'no data'."
    )
    source: MaskSource


class Verification(BaseModel):
    """All verifiers on one mask: what the agent stores as the pair's verified facts."""

    binary: BinaryVerdict
    counts: CountVerdict
    grid: GridVerdict
    category_fractions: dict[str, float]
    summary: ChangeSummary
    source: MaskSource
    valid_fraction: float = Field(
        1.0, description="Share of the image where both dates hold data; every fraction is of this valid part."
    )


def count_rules(min_object_pixels: int | None, settings: RuleSettings | None = None) -> RuleSettings:
    """``settings`` with the smallest counted object set to ``min_object_pixels`` when one is given.

    The rules' default (8 px, 2 m² at 0.5 m) is a pixel count; at 10 m it would be 800 m² and no house would be
    counted. A provider that resolves objects down to a size in metres (the classical detector: its
    ``min_area_m2`` at the pair's GSD) states that size in pixels, and counts use it.
    """
    settings = settings or RuleSettings()
    if min_object_pixels is None:
        return settings
    return settings.model_copy(update={"min_object_pixels": int(min_object_pixels)})


def rules_for_source(source: MaskSource, settings: RuleSettings | None = None) -> RuleSettings:
    """The rules a mask from ``source`` is read with: GSD-aware object sizes where the source states them."""
    return count_rules(source.min_object_pixels, settings)


def verify(mask: ChangeMask, settings: RuleSettings | None = None) -> Verification:
    """Run every rule once on ``mask`` and split the result into per-question verdicts."""
    source = mask.source
    settings = rules_for_source(source, settings)
    summary = summarize(mask.class_mask, settings, valid=mask.valid)
    return Verification(
        binary=BinaryVerdict(
            changed=summary.changed,
            changed_pixels=summary.changed_pixels,
            changed_fraction=summary.changed_fraction,
            source=source,
        ),
        counts=CountVerdict(
            counts=summary.counts if summary.categorical else {},
            changed_regions=summary.changed_regions,
            categorical=summary.categorical,
            min_object_pixels=settings.min_object_pixels,
            source=source,
        ),
        grid=GridVerdict(
            cells=summary.cells,
            no_data_cells=summary.no_data_cells,
            category_cells=summary.category_cells if summary.categorical else {},
            cell_fractions=summary.cell_fractions,
            categorical=summary.categorical,
            cell_threshold=settings.cell_threshold,
            min_valid_cell_fraction=settings.min_valid_cell_fraction if mask.valid is not None else None,
            source=source,
        ),
        category_fractions=summary.category_fractions if summary.categorical else {},
        summary=summary,
        source=source,
        valid_fraction=summary.valid_fraction,
    )
