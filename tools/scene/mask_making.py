"""Tile masks: each tile's mask is made on the tile plus its context, and only the tile's own pixels are kept,
so every scene pixel is decided once, with context, by one tile."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, Field

from tools.masks import MaskKind, MaskProvider, MaskReading, MaskSource
from tools.pairs import pair_from_arrays, pair_gsd
from tools.raster import MIN_SIDE, Georef
from tools.scene.disk_mask import N_CLASSES, NO_DATA, DiskMask
from tools.scene.inputs import SceneInputs, SceneMaskFile
from tools.scene.tiling import SceneTile, plan_tiles

# ------------------------------------------------------------------------------------ making the masks


class TileMaskStats(BaseModel):
    """Per tile: pixels of each class in its core, and the mask source when a provider made it."""

    row: int
    col: int
    class_pixels: list[int] = Field(description="Valid pixels of each class in the tile's core.")
    invalid_pixels: int = Field(0, description="Pixels of the core where a date holds no data.")
    source: MaskSource | None = None


def tile_row_band(
    tiles: Sequence[SceneTile],
    width: int,
    inputs: SceneInputs | None,
    provider: MaskProvider | None,
    mask_file: SceneMaskFile | None,
    gsd_m: float | None = None,
) -> tuple[np.ndarray, list[TileMaskStats]]:
    """The class mask of one row of tiles (their cores side by side), from the user's mask or the provider.

    ``gsd_m`` is the user's metres per pixel, used when the scene's georeference gives none.
    """
    height = tiles[0].core[2]
    band = np.zeros((height, width), dtype=np.uint8)
    stats = []
    for tile in tiles:
        _, c0, _, w = tile.core
        source = None
        valid = None
        if mask_file is not None:
            block = mask_file.read(tile.core)
            if inputs is not None and inputs.has_invalid_pixels:
                _, _, valid_read = inputs.read(tile.read)
                valid = None if valid_read is None else valid_read[tile.core_in_read()]
        else:
            assert inputs is not None and provider is not None
            rgb1, rgb2, valid_read = inputs.read(tile.read)
            valid = None if valid_read is None else valid_read[tile.core_in_read()]
            if (valid_read is not None and not valid_read.any()) or min(rgb1.shape[:2]) < MIN_SIDE:
                block = np.zeros((tile.core[2], w), dtype=np.uint8)  # no data, or a sliver no detector can judge
            else:
                gsd = pair_gsd(inputs.georef, gsd_m)  # tiles keep the scene's pixel size for the detector
                change = provider.provide(pair_from_arrays(rgb1, rgb2, valid=valid_read, gsd_m=gsd))
                block = change.class_mask[tile.core_in_read()]
                source = change.source
        if block.size and int(block.max()) >= N_CLASSES:
            raise ValueError(f"tile {tile.row},{tile.col}: class mask holds values above {N_CLASSES - 1}")
        if valid is not None:
            block = np.where(valid, block, NO_DATA).astype(np.uint8)
        band[:, c0 : c0 + w] = block
        pixels = np.bincount(block.ravel(), minlength=NO_DATA + 1)
        stats.append(
            TileMaskStats(
                row=tile.row,
                col=tile.col,
                class_pixels=pixels[:N_CLASSES].tolist(),
                invalid_pixels=int(pixels[NO_DATA]),
                source=source,
            )
        )
    return band, stats


class SceneSpec(BaseModel):
    """What to read and how to tile it; sent to worker processes, which open the files themselves."""

    t1: Path
    t2: Path
    tile: int = Field(256, ge=16)
    overlap: int = Field(32, ge=0)
    resample: bool = False
    rgb_bands: tuple[int, int, int] | None = None
    mask: Path | None = None
    mask_kind: MaskKind = "auto"
    mask_category: str | None = None
    gsd_m: float | None = Field(
        None, gt=0, description="Metres per pixel the user gave; the scene's georeference wins when it has one."
    )


class SceneMeta(BaseModel):
    height: int
    width: int
    georef: Georef | None
    warnings: list[str]
    mask_reading: MaskReading | None = None
    tiles: int


@dataclass
class _Opened:
    inputs: SceneInputs
    mask_file: SceneMaskFile | None
    rows: list[list[SceneTile]]
    gsd_m: float | None = None

    def close(self) -> None:
        if self.mask_file is not None:
            self.mask_file.close()
        self.inputs.close()


def _open_scene(spec: SceneSpec) -> _Opened:
    inputs = SceneInputs(spec.t1, spec.t2, resample=spec.resample, rgb_bands=spec.rgb_bands)
    try:
        mask_file = None
        if spec.mask is not None:
            mask_file = SceneMaskFile(
                spec.mask,
                inputs.height,
                inputs.width,
                inputs.georef,
                kind=spec.mask_kind,
                binary_category=spec.mask_category,
            )
        tiles = plan_tiles(inputs.height, inputs.width, spec.tile, spec.overlap)
    except BaseException:
        inputs.close()
        raise
    rows: dict[int, list[SceneTile]] = {}
    for tile in tiles:
        rows.setdefault(tile.row, []).append(tile)
    return _Opened(inputs, mask_file, [rows[r] for r in sorted(rows)], spec.gsd_m)


_WORKER: dict[str, Any] = {}


def _worker_init(spec_json: str, provider: MaskProvider | None, threads: int) -> None:
    cv2.setNumThreads(threads)  # workers share the cores instead of each claiming all of them
    _WORKER["scene"] = _open_scene(SceneSpec.model_validate_json(spec_json))
    _WORKER["provider"] = provider


def _worker_row(row: int) -> tuple[int, np.ndarray, list[TileMaskStats]]:
    scene: _Opened = _WORKER["scene"]
    tiles = scene.rows[row]
    band, stats = tile_row_band(
        tiles, scene.inputs.width, scene.inputs, _WORKER["provider"], scene.mask_file, scene.gsd_m
    )
    return tiles[0].core[0], band, stats


def build_scene_mask(
    spec: SceneSpec,
    provider: MaskProvider | None,
    disk_path: str | Path,
    *,
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[DiskMask, list[TileMaskStats], SceneMeta]:
    """Make every tile's mask (the user's mask file, or ``provider`` on the tile with context) and merge the
    tiles' own pixels into a disk-backed scene mask, one row of tiles at a time.

    With ``workers`` > 1, rows of tiles are made in that many processes (each opens the files itself; the
    provider must be picklable) and this process writes them; at most ``2 × workers`` rows are in flight, so
    memory stays bounded. On any failure the partial disk mask is removed.
    """
    if spec.mask is None and provider is None:
        raise ValueError("a scene mask needs a user mask file or a mask provider")
    scene = _open_scene(spec)
    disk: DiskMask | None = None
    try:
        meta = SceneMeta(
            height=scene.inputs.height,
            width=scene.inputs.width,
            georef=scene.inputs.georef,
            warnings=list(scene.inputs.warnings),
            mask_reading=scene.mask_file.reading if scene.mask_file else None,
            tiles=sum(len(r) for r in scene.rows),
        )
        disk = DiskMask(disk_path, meta.height, meta.width)
        stats: list[TileMaskStats] = []

        def accept(row0: int, band: np.ndarray, row_stats: list[TileMaskStats]) -> None:
            assert disk is not None
            disk.write_rows(row0, band)
            stats.extend(row_stats)
            if on_progress is not None:
                on_progress(len(row_stats), meta.tiles)

        if workers <= 1:
            for tiles in scene.rows:
                band = tile_row_band(tiles, meta.width, scene.inputs, provider, scene.mask_file, scene.gsd_m)
                accept(tiles[0].core[0], *band)
        else:
            _rows_in_processes(spec, provider, workers, len(scene.rows), accept)
            stats.sort(key=lambda s: (s.row, s.col))
        return disk, stats, meta
    except BaseException:
        if disk is not None:
            disk.unlink()
        raise
    finally:
        scene.close()


def _rows_in_processes(
    spec: SceneSpec,
    provider: MaskProvider | None,
    workers: int,
    n_rows: int,
    accept: Callable[[int, np.ndarray, list[TileMaskStats]], None],
) -> None:
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no fork of a process holding GDAL handles and threads
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_worker_init,
        initargs=(spec.model_dump_json(), provider, max(1, (os.cpu_count() or 1) // workers)),
    ) as pool:
        pending = iter(range(n_rows))
        running = {pool.submit(_worker_row, row) for row in (next(pending) for _ in range(min(n_rows, 2 * workers)))}
        while running:
            done, running = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                accept(*future.result())
                following = next(pending, None)
                if following is not None:
                    running.add(pool.submit(_worker_row, following))
