"""Whole-scene analysis: ``analyse_scene(t1, t2, out_dir)`` → :class:`SceneResult` (and ``changeagent scene``).

A scene too large to load (a 10,000² px GeoTIFF pair and up) is answered at scene level: changed or not,
objects per category with an object cut by tile borders counted once, the 3×3 cells of the whole scene,
and a finer grid of changed tiles, plus one GeoJSON in the scene's own CRS and the merged change mask as
a GeoTIFF. The raster work (windowed reads, the disk-backed merge, strip-wise counting) lives in
:mod:`tools.scene`; this module chooses the mask and states its source and confidence; ``agent.answering.scene``
words the answers.

The mask is the user's scene mask (read windowed, taken as ground truth) or, without one, the agent's
default provider (the classical detector) run per tile with context. A per-tile classical mask sets its
threshold per tile, so its confidence is reported as the median over tiles, with the range.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from agent.answering.scene import scene_report
from agent.settings import AgentSettings
from deltavlm.rules import CATEGORIES, ChangeSummary, cell_has_data, cell_is_changed
from tools.atomic import write_atomic
from tools.classical_mask import ClassicalMaskProvider
from tools.masks import ConfidenceBasis, MaskKind, MaskMethod, MaskProvider, MaskReading, MaskSource
from tools.orientation import orientation_of
from tools.raster import Georef, InputError, ensure_folder, open_raster
from tools.scene.disk_mask import N_CLASSES
from tools.scene.mask_making import SceneSpec, TileMaskStats, build_scene_mask
from tools.scene.merge import MaskAnalysis, analyse_mask
from tools.scene.outputs import scene_geojson, write_mask_geotiff
from tools.scene.tiling import check_tiling


class SceneTileChange(BaseModel):
    """One changed tile of the fine grid (tiles partition the scene; ``window`` is row, col, height, width)."""

    row: int
    col: int
    window: tuple[int, int, int, int]
    changed_pixels: int
    changed_fraction: float
    objects: int = Field(description="Counted objects whose centroid lies in this tile.")


class SceneResult(BaseModel):
    """Scene-level answers with their evidence, and the files written."""

    t1: Path
    t2: Path
    width: int
    height: int
    georef: Georef | None
    tile: int
    overlap: int
    tiles_total: int
    summary: ChangeSummary = Field(description="The ChangeChat rules at scene level (deltavlm.rules types).")
    mask: MaskSource
    objects_across_tiles: int = Field(description="Counted objects that span more than one tile, each counted once.")
    changed_tiles: list[SceneTileChange] = Field(description="Tiles where more than the cell threshold changed.")
    warnings: list[str] = Field(default_factory=list)
    text: str = Field(description="The answers in words: changed?, how many?, where?")
    outputs: dict[str, str] = Field(default_factory=dict)
    seconds: float = 0.0


def _mask_source(
    stats: list[TileMaskStats], reading: MaskReading | None, spec: SceneSpec, summary: ChangeSummary
) -> MaskSource:
    """One source for the scene: the user's file, or the provider's per-tile sources summarised."""
    if spec.mask is not None:
        return MaskSource(
            provider="user",
            kind="user",
            categorical=summary.categorical,
            confidence=1.0,
            settings={"path": str(spec.mask), "kind": spec.mask_kind},
            made_by=MaskMethod(method="user_scene_file", reading=reading),
            basis=ConfidenceBasis(kind="ground_truth"),
        )
    sources = [s.source for s in stats if s.source is not None]
    first = sources[0]
    confidences = [s.confidence for s in sources]
    shared = {k: v for k, v in first.settings.items() if all(s.settings.get(k) == v for s in sources)}
    return MaskSource(
        provider=first.provider,
        kind=first.kind,
        categorical=summary.categorical,
        confidence=round(statistics.median(confidences), 3),
        settings={
            **shared,
            "tile": spec.tile,
            "overlap": spec.overlap,
            "tiles": len(sources),
            "confidence_min": min(confidences),
            "confidence_max": max(confidences),
        },
        made_by=first.made_by.model_copy(update={"tile_px": spec.tile, "overlap_px": spec.overlap}),
    )


def _tiles(
    stats: list[TileMaskStats], analysis: MaskAnalysis, tile: int, threshold: float, min_valid: float
) -> list[SceneTileChange]:
    layers = list(CATEGORIES) if analysis.summary.categorical else ["change"]
    per_tile: dict[tuple[int, int], int] = {}
    for name in layers:
        for obj in analysis.objects[name]:
            key = (int(obj.centroid[1]) // tile, int(obj.centroid[0]) // tile)
            per_tile[key] = per_tile.get(key, 0) + 1
    changed = []
    for s in stats:
        total = sum(s.class_pixels)  # valid pixels
        moved = total - s.class_pixels[0]
        if cell_has_data(total, total + s.invalid_pixels, min_valid) and cell_is_changed(moved, total, threshold):
            height = min(tile, analysis.height - s.row * tile)
            width = min(tile, analysis.width - s.col * tile)
            changed.append(
                SceneTileChange(
                    row=s.row,
                    col=s.col,
                    window=(s.row * tile, s.col * tile, height, width),
                    changed_pixels=moved,
                    changed_fraction=round(moved / total, 6),
                    objects=per_tile.get((s.row, s.col), 0),
                )
            )
    return changed


def _across(analysis: MaskAnalysis, tile: int) -> int:
    layers = list(CATEGORIES) if analysis.summary.categorical else ["change"]
    count = 0
    for name in layers:
        for obj in analysis.objects[name]:
            x, y, w, h = obj.bbox
            if x // tile != (x + w - 1) // tile or y // tile != (y + h - 1) // tile:
                count += 1
    return count


class _Bar:
    """Tiles done, rate and ETA on stderr when it is a terminal (quiet in --json mode and in logs)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            try:
                from tqdm import tqdm
            except ImportError:
                self.enabled = False
                return
            self.bar = tqdm(total=total, unit="tile", desc="scene", dynamic_ncols=True, file=sys.stderr)
        self.bar.update(done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


SCENE_BUDGET_PIXELS = 400_000_000
"""Scenes above 400 MP (20,000² px) start only when asked (``--yes``): a 10 GP scene is hours of work and
gigabytes of temporary disk, which a user should hear about before it starts."""


def check_scene_budget(spec: SceneSpec, work: Path, budget_pixels: int | None) -> None:
    """Refuse a scene over the budget (with its tiles, its temporary disk and the disk free), or one whose
    temporary mask (one byte per pixel) cannot fit on the output folder's disk at all."""
    with open_raster(spec.t1, "t1") as ds:
        width, height = ds.width, ds.height
    pixels = width * height
    tiles = -(-width // spec.tile) * -(-height // spec.tile)
    free = shutil.disk_usage(work).free
    needed = pixels  # the merged class mask: one byte per pixel, plus the compressed GeoTIFF written from it
    size = f"{width}×{height} = {pixels / 1e6:,.0f} MP in {tiles:,} tiles of {spec.tile} px"
    if needed > free:
        raise InputError(
            f"t1 {spec.t1} is {size}: its scene mask needs about {needed / 1e9:.1f} GB of temporary disk in {work}, "
            f"and {free / 1e9:.1f} GB is free; free some space or pass --out on a larger disk"
        )
    if budget_pixels is not None and pixels > budget_pixels:
        raise InputError(
            f"t1 {spec.t1} is {size}, over the {budget_pixels / 1e6:,.0f} MP a scene starts without asking; it "
            f"will use about {needed / 1e9:.1f} GB of temporary disk in {work} ({free / 1e9:.1f} GB free) and run "
            f"for a long time (about {tiles:,} tile masks); pass --yes to start it, or analyse a part of it"
        )


def analyse_scene(
    t1: str | Path,
    t2: str | Path,
    out_dir: str | Path | None = None,
    *,
    tile: int = 256,
    overlap: int = 32,
    mask: str | Path | None = None,
    mask_kind: MaskKind = "auto",
    mask_category: Literal["road", "building"] | None = None,
    settings: AgentSettings | None = None,
    provider: MaskProvider | None = None,
    resample: bool = False,
    rgb_bands: tuple[int, int, int] | list[int] | None = None,
    workers: int = 1,
    progress: bool = False,
    gsd_m: float | None = None,
    budget_pixels: int | None = SCENE_BUDGET_PIXELS,
) -> SceneResult:
    """Analyse a large before/after scene with windowed reads; write outputs into ``out_dir`` when given.

    ``mask`` is a change-mask GeoTIFF on t1's grid; without it ``provider`` (default: the classical detector
    with ``settings.classical``) makes each tile's mask. ``resample`` warps t2 onto t1's grid when their grids
    differ (with a warning) instead of refusing. Outputs: ``scene.json``, ``changes.geojson`` (the scene's
    CRS), ``change_mask.tif`` (class indices on t1's grid). ``gsd_m`` (metres per pixel) is for a scene whose
    georeference gives no pixel size; the classical detector's scale and confidence follow it. A scene over
    ``budget_pixels`` is refused with an estimate of its tiles and disk (None: no budget, the CLI's ``--yes``);
    one whose temporary mask would not fit on the disk is always refused.
    """
    started = time.perf_counter()
    settings = settings or AgentSettings()
    if workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    check_tiling(tile, overlap)
    spec = SceneSpec(
        t1=Path(t1),
        t2=Path(t2),
        tile=tile,
        overlap=overlap,
        resample=resample,
        rgb_bands=tuple(rgb_bands) if rgb_bands else None,
        mask=Path(mask) if mask else None,
        mask_kind=mask_kind,
        mask_category=mask_category,
        gsd_m=gsd_m,
    )
    if mask is None and provider is None:
        provider = ClassicalMaskProvider(settings.classical)
    out = Path(out_dir) if out_dir is not None else None
    scratch = None
    if out is not None:
        work = ensure_folder(out, "output folder")
    else:
        scratch = tempfile.TemporaryDirectory(prefix="changeagent-scene-")
        work = Path(scratch.name)
    bar: _Bar | None = None
    disk = None
    try:
        check_scene_budget(spec, work, budget_pixels)
        bar = _Bar(progress)
        disk, stats, meta = build_scene_mask(
            spec, None if mask else provider, work / ".change_mask.u8", workers=workers, on_progress=bar
        )
        class_pixels = [sum(s.class_pixels[i] for s in stats) for i in range(N_CLASSES)]
        if not sum(class_pixels):
            raise InputError(
                f"t1 {spec.t1} and t2 {spec.t2} share no valid pixel (nodata, NaN, transparent or outside the warped "
                "footprint everywhere); nothing to analyse"
            )
        analysis = analyse_mask(disk, settings.rules, class_pixels=class_pixels)
        source = _mask_source(stats, meta.mask_reading, spec, analysis.summary)
        result = SceneResult(
            t1=spec.t1,
            t2=spec.t2,
            width=meta.width,
            height=meta.height,
            georef=meta.georef,
            tile=tile,
            overlap=overlap,
            tiles_total=meta.tiles,
            summary=analysis.summary,
            mask=source,
            objects_across_tiles=_across(analysis, tile),
            changed_tiles=_tiles(
                stats, analysis, tile, settings.rules.cell_threshold, settings.rules.min_valid_cell_fraction
            ),
            warnings=meta.warnings,
            text="",
        )
        result.text = scene_report(
            result.summary,
            result.mask,
            objects_across_tiles=result.objects_across_tiles,
            changed_tiles=len(result.changed_tiles),
            tiles_total=result.tiles_total,
            tile=result.tile,
            orientation=orientation_of(meta.georef),
        )
        if out is not None:
            result.outputs["change_mask"] = str(write_mask_geotiff(disk, out / "change_mask.tif", meta.georef))
            provenance = {
                "mask_provider": source.provider,
                "mask_kind": source.kind,
                "mask_confidence": source.confidence,
                "mask_categorical": source.categorical,
            }
            tiles = [
                {
                    "window": t.window,
                    "tile_row": t.row,
                    "tile_col": t.col,
                    "changed_fraction": t.changed_fraction,
                    "objects": t.objects,
                }
                for t in result.changed_tiles
            ]
            collection = scene_geojson(
                analysis=analysis, tiles=tiles, georef=meta.georef, scene_name=spec.t1.stem, provenance=provenance
            )
            geojson = out / "changes.geojson"
            write_atomic(geojson, json.dumps(collection))
            result.outputs["geojson"] = str(geojson)
            result.outputs["scene"] = str(out / "scene.json")
        result.seconds = round(time.perf_counter() - started, 3)
        if out is not None:
            write_atomic(out / "scene.json", result.model_dump_json(indent=1))
        return result
    finally:
        if bar is not None:
            bar.close()
        if disk is not None:
            disk.unlink()
        if scratch is not None:
            scratch.cleanup()
