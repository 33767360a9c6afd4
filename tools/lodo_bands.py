"""Which bands to difference on multispectral pairs: RGB alone, or RGB with near-infrared.

Run ``python -m tools.lodo_bands [--data ../shared/data]``. For each OSCD city (4-band GeoTIFFs: red, green, blue,
NIR) it computes the detector's difference (scene units, neighbourhood minimum, smoothing at the pair's GSD, the
default settings) from the raw 16-bit bands, once with RGB and once with RGB + NIR, and prints the ROC-AUC of that
difference against the change label: how well the difference alone separates changed from unchanged pixels,
whatever the threshold. The detector uses RGB because this measured better; the pair it receives is RGB.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tools.change_detection.detector import smooth
from tools.change_detection.differencing import scene_units, tolerant_difference
from tools.change_detection.scale import plan_scale
from tools.change_detection.settings import ClassicalSettings
from tools.gsd import gsd_from_georef
from tools.raster import read_raster


def roc_auc(score: np.ndarray, truth: np.ndarray) -> float:
    """Probability that a changed pixel scores above an unchanged one (Mann–Whitney, ties counted half)."""
    flat, positive = score.ravel(), truth.ravel().astype(bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(flat, kind="mergesort")
    ranks = np.empty(flat.size, dtype=np.float64)
    sorted_scores = flat[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    mid = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(mid, counts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def band_auc(city: Path, bands: list[int], settings: ClassicalSettings) -> float:
    """ROC-AUC of the difference computed from ``bands`` (0-based indices into the 4-band files)."""
    first, second = read_raster(city / "t1.tif", role="t1"), read_raster(city / "t2.tif", role="t2")
    label = read_raster(city / "label.tif", role="label").bands[0] > 0
    t1 = np.moveaxis(first.bands[bands].astype(np.float32), 0, 2)
    t2 = np.moveaxis(second.bands[bands].astype(np.float32), 0, 2)
    z1, z2 = scene_units(t1, t2, settings.matching, settings.robust_spread)
    difference = tolerant_difference(z1, z2, settings.neighbourhood_px, len(bands))
    gsd = gsd_from_georef(first.georef) if first.georef else None
    return roc_auc(smooth(difference, plan_scale(gsd, settings)), label)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    settings = ClassicalSettings()
    print("| city | ROC-AUC RGB | ROC-AUC RGB + NIR |\n|---|---|---|")
    for city in sorted(p for p in (args.data / "oscd").iterdir() if p.is_dir()):
        rgb, rgbn = band_auc(city, [0, 1, 2], settings), band_auc(city, [0, 1, 2, 3], settings)
        print(f"| {city.name} | {rgb:.3f} | {rgbn:.3f} |")


if __name__ == "__main__":
    main()
