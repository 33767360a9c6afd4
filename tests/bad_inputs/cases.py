"""Builders of bad (and good) inputs for the probe suite, and one runner per surface.

Every case is written on the fly from the synthetic generator (a 64×64 UTM pair with a LEVIR-MCI mask), so
the expected outcome is known exactly: an InputError naming the file, or the answer of the rules on the valid
part of the pair. The surfaces are the CLI (``verify``, ``ask``), the Python API (``Agent.ask``), ``batch``
and ``scene``; the page reads through the same loader (``tools.pairs.load_pair``) and inherits its errors.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import rasterio
from rasterio.transform import from_origin

from agent.api import Agent
from agent.batch.runner import BatchOptions, run_batch
from agent.cli.main import main as cli_main
from agent.scene.analysis import analyse_scene
from agent.settings import AgentSettings
from deltavlm.synthetic import write_example
from deltavlm.synthetic.pairs import EXAMPLE_ORIGIN

SIZE = 64
ORIGIN = EXAMPLE_ORIGIN


def example(folder: Path, seed: int = 7):
    return write_example(folder, seed=seed, size=SIZE)


def bands_of(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as ds:
        return ds.read(), ds.profile.copy()


def write_like(path: Path, bands: np.ndarray, profile: dict, **changes) -> Path:
    profile = {**profile, "count": bands.shape[0], "dtype": bands.dtype.name, **changes}
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(bands)
    return path


def truncate(path: Path, out: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    out.write_bytes(data[: int(len(data) * keep)])
    return out


def png_of(tif: Path, out: Path) -> Path:
    bands, _ = bands_of(tif)
    cv2.imwrite(str(out), cv2.cvtColor(np.moveaxis(bands, 0, 2), cv2.COLOR_RGB2BGR))
    return out


def jpeg_of(tif: Path, out: Path) -> Path:
    bands, _ = bands_of(tif)
    cv2.imwrite(str(out), cv2.cvtColor(np.moveaxis(bands, 0, 2), cv2.COLOR_RGB2BGR))
    return out


def plain_tif_of(tif: Path, out: Path) -> Path:
    """An uncompressed striped GeoTIFF copy (truncation then cuts image data, not just the tail)."""
    bands, profile = bands_of(tif)
    profile.pop("compress", None)
    return write_like(out, bands, profile, tiled=False)


def float_with_nan(tif: Path, out: Path, columns: slice | None) -> Path:
    """A float32 copy with NaN in ``columns`` (None: everywhere)."""
    bands, profile = bands_of(tif)
    values = bands.astype(np.float32)
    if columns is None:
        values[:] = np.nan
    else:
        values[:, :, columns] = np.nan
    profile.pop("photometric", None)
    return write_like(out, values, profile, nodata=None)


def all_nodata(tif: Path, out: Path) -> Path:
    bands, profile = bands_of(tif)
    return write_like(out, np.zeros_like(bands), profile, nodata=0)


def sixteen_bit_copy(tif: Path, out: Path) -> Path:
    bands, profile = bands_of(tif)
    return write_like(out, bands.astype(np.uint16) * 257, profile)


def green_channel_mask(mask_png: Path, out: Path) -> Path:
    """The example's change, but in the green channel of an RGB file (red and blue empty)."""
    label = cv2.imread(str(mask_png), cv2.IMREAD_GRAYSCALE)
    rgb = np.zeros((*label.shape, 3), np.uint8)
    rgb[..., 1] = np.where(label > 0, 255, 0)
    cv2.imwrite(str(out), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return out


def shifted_mask_tif(mask_png: Path, out: Path, crs: str = "EPSG:32615") -> Path:
    """The example's mask as a GeoTIFF 500 m east of the pair, in the next UTM zone by default (the pair: 32614)."""
    label = cv2.imread(str(mask_png), cv2.IMREAD_GRAYSCALE)[None]
    profile = {"driver": "GTiff", "height": SIZE, "width": SIZE, "count": 1, "dtype": "uint8", "crs": crs}
    profile["transform"] = from_origin(ORIGIN[0] + 500.0, ORIGIN[1], 0.5, 0.5)
    with rasterio.open(out, "w", **profile) as ds:
        ds.write(label)
    return out


# ------------------------------------------------------------------------------------------------ surfaces


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli_main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def verify_json(t1: Path, t2: Path, capsys, *extra) -> tuple[int, dict | None, str]:
    code, out, err = run_cli(["verify", t1, t2, "--json", *extra], capsys)
    return code, json.loads(out) if code == 0 else None, err


def ask_cli(t1: Path, t2: Path, tmp: Path, capsys, *extra) -> tuple[int, str, str]:
    return run_cli(
        ["ask", t1, t2, "has anything changed?", "--db", tmp / "threads.sqlite", "--artefacts", tmp / "art", *extra],
        capsys,
    )


def api_agent(tmp: Path) -> Agent:
    return Agent(AgentSettings(artefact_dir=tmp / "api-artefacts"))


def batch_run(tmp: Path, t1: Path, t2: Path, mask: Path | None = None, **options):
    """One-pair batch; returns the report and the pair's error record (None when it was answered)."""
    folder = t1.parent
    catalog = folder / "catalog.csv"
    with catalog.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "t1", "t2", "mask"])
        writer.writerow(["p", t1.name, t2.name, mask.name if mask else ""])
    questions = tmp / "questions.txt"
    questions.write_text("Has anything changed?\nwhere?\n")
    out = tmp / "batch-out"
    report = run_batch(
        BatchOptions(catalog=catalog, questions=questions, out=out, progress=False, force=True, **options)
    )
    errors = out / "errors.jsonl"
    record = json.loads(errors.read_text().splitlines()[0]) if errors.exists() and errors.read_text() else None
    return report, record, out


def summary_row(out: Path) -> dict[str, str]:
    with (out / "summary.csv").open() as handle:
        return next(csv.DictReader(handle))


def scene_run(tmp: Path, t1: Path, t2: Path, mask: Path | None = None, **kw):
    return analyse_scene(t1, t2, tmp / "scene-out", tile=32, overlap=8, mask=mask, **kw)
