"""Peak memory of one pair at the default pixel limit (``tools.raster.DEFAULT_MAX_PIXELS``) and above it.

Run: ``.venv/bin/python bench/bench_memory.py [--megapixels 16 36 64] [--data out/bench_memory]``.

For each size a square 8-bit RGB GeoTIFF pair is written once (deterministic synthetic 500 px blocks of
``deltavlm.synthetic.generate_pair``, tiled across the image), then ``changeagent verify`` (the classical
detector, the default and heaviest mask) runs in a fresh process with ``--max-pixels`` raised to the size, and
its peak RSS (``getrusage(RUSAGE_CHILDREN)``) and wall time are printed as JSON lines. The default limit should
sit where the peak fits comfortably in a laptop's memory; larger scenes go through ``changeagent scene``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BLOCK = 500


def make_pair(folder: Path, side: int) -> tuple[Path, Path]:
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from deltavlm.synthetic import generate_pair

    paths = folder / f"t1_{side}.tif", folder / f"t2_{side}.tif"
    if all(p.exists() for p in paths):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff", "width": side, "height": side, "count": 3, "dtype": "uint8", "tiled": True,
        "blockxsize": 256, "blockysize": 256, "compress": "deflate", "crs": "EPSG:32614",
        "transform": from_origin(620000.0, 3350000.0, 0.5, 0.5), "photometric": "RGB",
    }  # fmt: skip
    blocks = [generate_pair(seed, BLOCK, change=True) for seed in range(8)]
    with rasterio.open(paths[0], "w", **profile) as d1, rasterio.open(paths[1], "w", **profile) as d2:
        for i, r0 in enumerate(range(0, side, BLOCK)):
            for j, c0 in enumerate(range(0, side, BLOCK)):
                block = blocks[(i * 7 + j) % len(blocks)]
                h, w = min(BLOCK, side - r0), min(BLOCK, side - c0)
                window = Window(c0, r0, w, h)
                d1.write(np.moveaxis(block.t1[:h, :w], 2, 0), window=window)
                d2.write(np.moveaxis(block.t2[:h, :w], 2, 0), window=window)
    return paths


def measure(t1: Path, t2: Path, pixels: int) -> dict[str, float]:
    command = [sys.executable, "-m", "agent.cli", "verify", str(t1), str(t2), "--max-pixels", str(pixels), "--json"]
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak_kb <= before:
        raise SystemExit("peak RSS not measurable: an earlier child used more; measure one size per run")
    return {"peak_rss_gb": round(peak_kb / 2**20, 2), "seconds": round(seconds, 1)}


def main() -> None:
    from tools.raster import DEFAULT_MAX_PIXELS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, nargs="+", default=[DEFAULT_MAX_PIXELS / 1e6])
    parser.add_argument("--data", type=Path, default=ROOT / "out" / "bench_memory")
    args = parser.parse_args()
    for megapixels in sorted(args.megapixels):  # ascending: each child's peak exceeds the previous one's
        side = math.isqrt(int(megapixels * 1e6))
        t1, t2 = make_pair(args.data, side)
        result = {"megapixels": round(side * side / 1e6, 1), "side": side, "default_limit": DEFAULT_MAX_PIXELS}
        print(json.dumps(result | measure(t1, t2, side * side)), flush=True)


if __name__ == "__main__":
    main()
