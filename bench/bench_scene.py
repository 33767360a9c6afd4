"""Whole-scene analysis of a 10,000 × 10,000 px GeoTIFF pair: wall time and peak RSS (target < 1.5 GB).

Run: ``.venv/bin/python bench/bench_scene.py [--size 10000] [--workers 1] [--data out/bench_scene] [--check]``.

The pair is made once (and reused) from deterministic synthetic blocks (``deltavlm.synthetic.generate_pair``)
written window by window into tiled, deflate-compressed GeoTIFFs in UTM 14N with 0.5 m pixels, together with
the blocks' true class mask. Two runs are measured, each in a fresh process so that its peak RSS is its own:
the classical detector per 256 px tile (the default, and the slow path) and the user's mask read windowed.
``--check`` then loads the merged mask whole (this is the only step that holds the scene in memory) and
confirms that the scene's answers equal ``deltavlm.rules.summarize`` on it.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BLOCK = 500


def make_scene(folder: Path, size: int, seed: int = 2024) -> tuple[Path, Path, Path]:
    """t1.tif, t2.tif and mask.tif (class indices) of ``size``² px, written block by block."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from deltavlm.synthetic import generate_pair, pair_seed

    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "t1.tif", folder / "t2.tif", folder / "mask.tif"
    stamp = folder / f"made_{size}_{seed}"
    if stamp.exists() and all(p.exists() for p in paths):
        return paths
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "dtype": "uint8",
        "crs": "EPSG:32614",
        "transform": from_origin(620000.0, 3350000.0, 0.5, 0.5),
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
    }
    started = time.perf_counter()
    with (
        rasterio.open(paths[0], "w", count=3, photometric="RGB", **profile) as t1,
        rasterio.open(paths[1], "w", count=3, photometric="RGB", **profile) as t2,
        rasterio.open(paths[2], "w", count=1, **profile) as mask,
    ):
        index = 0
        for r0 in range(0, size, BLOCK):
            for c0 in range(0, size, BLOCK):
                h, w = min(BLOCK, size - r0), min(BLOCK, size - c0)
                pair = generate_pair(pair_seed(seed, index), BLOCK, p_no_change=0.3)
                index += 1
                window = Window(c0, r0, w, h)
                t1.write(np.moveaxis(pair.t1[:h, :w], 2, 0), window=window)
                t2.write(np.moveaxis(pair.t2[:h, :w], 2, 0), window=window)
                mask.write(pair.class_mask[None, :h, :w], window=window)
    stamp.write_text(f"{time.perf_counter() - started:.1f} s\n")
    return paths


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). ``ru_maxrss`` is not used: Linux carries the parent's RSS at fork
    into a child's ``ru_maxrss`` across exec, which would charge this run with the scene generator's memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> None:
    """One measured run, in its own process: prints its wall time and peak RSS as JSON."""
    from agent.scene.analysis import analyse_scene

    started = time.perf_counter()
    result = analyse_scene(
        args.t1,
        args.t2,
        args.out,
        tile=args.tile,
        overlap=args.overlap,
        mask=args.mask,
        mask_kind="index",
        workers=args.workers,
    )
    seconds = time.perf_counter() - started
    payload = {
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_rss_worker_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "changed_fraction": result.summary.changed_fraction,
        "counts": result.summary.counts,
        "changed_regions": result.summary.changed_regions,
        "cells": result.summary.cells,
        "changed_tiles": len(result.changed_tiles),
        "tiles": result.tiles_total,
        "objects_across_tiles": result.objects_across_tiles,
    }
    print(json.dumps(payload))


def measure(label: str, t1: Path, t2: Path, out: Path, args: argparse.Namespace, mask: Path | None) -> dict:
    command = [sys.executable, __file__, "--child", str(t1), str(t2), str(out)]
    command += ["--tile", str(args.tile), "--overlap", str(args.overlap), "--workers", str(args.workers)]
    if mask is not None:
        command += ["--mask", str(mask)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    worker = f", workers ≤ {result['peak_rss_worker_mb']:.0f} MB each (ru_maxrss)" if args.workers > 1 else ""
    print(
        f"{label}: {result['seconds']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MB{worker}; "
        f"{result['tiles']} tiles, changed {result['changed_fraction']:.2%}, counts {result['counts']}, "
        f"regions {result['changed_regions']}, {result['objects_across_tiles']} objects across tile borders, "
        f"{result['changed_tiles']} changed tiles, cells {' '.join(result['cells']) or 'none'}"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--data", type=Path, default=ROOT / "out" / "bench_scene")
    parser.add_argument("--check", action="store_true", help="compare with the rules on the whole merged mask")
    parser.add_argument("--skip-classical", action="store_true")
    parser.add_argument("--child", nargs=3, type=Path, metavar=("T1", "T2", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--mask", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.t1, args.t2, args.out = args.child
        child(args)
        return
    started = time.perf_counter()
    t1, t2, mask = make_scene(args.data / f"scene_{args.size}", args.size)
    mb = sum(p.stat().st_size for p in (t1, t2)) / 2**20
    made = time.perf_counter() - started
    print(f"scene pair: {args.size}×{args.size} px, 3 bands uint8, {mb:.0f} MB on disk (ready in {made:.0f} s)")
    runs = {}
    runs["user mask"] = measure("user mask (read windowed)", t1, t2, args.data / "out_mask", args, mask)
    if not args.skip_classical:
        runs["classical"] = measure(
            f"classical per tile ({args.workers} worker(s))", t1, t2, args.data / "out_classical", args, None
        )
    if args.check:
        import rasterio

        from deltavlm.rules import summarize

        for label, folder in (("user mask", "out_mask"), ("classical", "out_classical")):
            if label not in runs:
                continue
            with rasterio.open(args.data / folder / "change_mask.tif") as ds:
                whole = summarize(ds.read(1))
            same = whole.counts == runs[label]["counts"] and whole.changed_regions == runs[label]["changed_regions"]
            print(
                f"check {label}: rules on the whole merged mask agree: {same} ({whole.counts}, {whole.changed_regions})"
            )


if __name__ == "__main__":
    main()
