"""Generating pairs and writing them: a deterministic pair from a seed, a LEVIR-MCI folder, a demo example."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from deltavlm.rules import LEVIR_MCI_LABEL_VALUES, ChangeClass
from deltavlm.synthetic.captions import captions_of
from deltavlm.synthetic.layout import lay_out_scene
from deltavlm.synthetic.pairs import EXAMPLE_CRS, EXAMPLE_ORIGIN, GSD_M, MIN_SIZE, SPLITS, ExamplePaths, SyntheticPair
from deltavlm.synthetic.palette import MAX_ATTEMPTS
from deltavlm.synthetic.render import draw_looks, render_date

# --------------------------------------------------------------------------------------------- public API


def generate_pair(seed: int, size: int = 256, *, change: bool | None = None, p_no_change: float = 0.5) -> SyntheticPair:
    """A deterministic synthetic pair: the same ``seed`` and ``size`` give byte-identical arrays.

    ``change=None`` draws whether the pair changes, unchanged with probability ``p_no_change``
    (LEVIR-CC is half unchanged); ``True``/``False`` forces it, for tests that need one or the other.
    """
    if size < MIN_SIZE:
        raise ValueError(f"size {size} is below the minimum {MIN_SIZE}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if not 0.0 <= p_no_change <= 1.0:
        raise ValueError(f"p_no_change must lie in [0, 1], got {p_no_change}")
    want = change if change is not None else bool(np.random.default_rng([seed, 0]).random() >= p_no_change)
    for attempt in range(MAX_ATTEMPTS):
        scene = lay_out_scene(np.random.default_rng([seed, 1, attempt]), size, want)
        if scene is not None:
            break
    else:
        raise RuntimeError(f"no {'changed' if want else 'unchanged'} {size}px scene fits seed {seed}")
    look_rng = np.random.default_rng([seed, 2])
    look1, look2 = draw_looks(look_rng)
    t1, t2 = render_date(scene, 0, look1, look_rng), render_date(scene, 1, look2, look_rng)
    captions = captions_of(scene, np.random.default_rng([seed, 3]))
    for array in (t1, t2, scene.class_mask):
        array.flags.writeable = False
    return SyntheticPair(
        seed=seed, t1=t1, t2=t2, class_mask=scene.class_mask, captions=captions, changes=tuple(scene.changes)
    )


def pair_seed(seed: int, index: int) -> int:
    """Seed of the ``index``-th pair of a dataset written with ``seed``, so any file can be regenerated."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def label_png(class_mask: np.ndarray) -> np.ndarray:
    """Class mask → LEVIR-MCI label values, by inverting the one convention in :mod:`deltavlm.rules`."""
    lut = np.zeros(max(ChangeClass) + 1, np.uint8)
    for raw, cls in LEVIR_MCI_LABEL_VALUES.items():
        lut[cls] = raw
    if (class_mask == ChangeClass.CHANGE).any():
        raise ValueError("uncategorised change has no LEVIR-MCI label value")
    return lut[class_mask]


def _write_rgb(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def write_levir_mci(
    root: Path, n_pairs: Mapping[str, int], seed: int, size: int = 256, *, p_no_change: float = 0.5
) -> None:
    """Write a LEVIR-MCI-shaped dataset, so data loaders can be exercised without the real data.

    Layout: ``images/{split}/{A,B,label}/{split}_NNNNNN.png`` and ``LevirCCcaptions.json`` in the
    LEVIR-CC (Karpathy) format. The pair with global image id ``k`` is ``generate_pair(pair_seed(seed, k))``.
    """
    unknown = set(n_pairs) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown splits {sorted(unknown)}; expected a subset of {SPLITS}")
    root = Path(root)
    images: list[dict] = []
    sentid = 0
    for split in (s for s in SPLITS if s in n_pairs):
        folders = {part: root / "images" / split / part for part in ("A", "B", "label")}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        for i in range(n_pairs[split]):
            imgid = len(images)
            pair = generate_pair(pair_seed(seed, imgid), size, p_no_change=p_no_change)
            name = f"{split}_{i:06d}.png"
            _write_rgb(folders["A"] / name, pair.t1)
            _write_rgb(folders["B"] / name, pair.t2)
            if not cv2.imwrite(str(folders["label"] / name), label_png(pair.class_mask)):
                raise OSError(f"could not write {folders['label'] / name}")
            sentences = [
                {"tokens": text.split(), "raw": f" {text} .", "imgid": imgid, "sentid": sentid + j}
                for j, text in enumerate(pair.captions)
            ]
            images.append(
                {
                    "filepath": split,
                    "filename": name,
                    "imgid": imgid,
                    "split": split,
                    "sentences": sentences,
                    "changeflag": int(pair.changed),
                    "sentids": [s["sentid"] for s in sentences],
                }
            )
            sentid += len(sentences)
    (root / "LevirCCcaptions.json").write_text(json.dumps({"images": images}))


def write_example(out_dir: Path, seed: int = 7, size: int = 256, georeferenced: bool = True) -> ExamplePaths:
    """Write one changed demo pair as a user would bring it: GeoTIFFs in UTM 14N, or plain PNGs.

    The GeoTIFFs exercise the georeferenced path end to end (alignment checks, GeoJSON in the image's
    CRS) with a real projected CRS and 0.5 m pixels, as LEVIR-CD's Texas scenes would have.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pair = generate_pair(seed, size, change=True)
    if georeferenced:
        paths = ExamplePaths(
            t1=out_dir / "t1.tif",
            t2=out_dir / "t2.tif",
            mask=out_dir / "mask.png",
            captions=out_dir / "captions.json",
        )
        profile = {
            "driver": "GTiff",
            "height": size,
            "width": size,
            "count": 3,
            "dtype": "uint8",
            "crs": CRS.from_string(EXAMPLE_CRS),
            "transform": from_origin(*EXAMPLE_ORIGIN, GSD_M, GSD_M),
            "photometric": "RGB",
            "compress": "deflate",
        }
        for path, rgb in ((paths.t1, pair.t1), (paths.t2, pair.t2)):
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(np.moveaxis(rgb, 2, 0))
    else:
        paths = ExamplePaths(
            t1=out_dir / "t1.png",
            t2=out_dir / "t2.png",
            mask=out_dir / "mask.png",
            captions=out_dir / "captions.json",
        )
        _write_rgb(paths.t1, pair.t1)
        _write_rgb(paths.t2, pair.t2)
    if not cv2.imwrite(str(paths.mask), label_png(pair.class_mask)):
        raise OSError(f"could not write {paths.mask}")
    record = {
        "seed": seed,
        "size": size,
        "captions": list(pair.captions),
        "counts": pair.counts,
        "changes": [c.model_dump() for c in pair.changes],
        "label_values": {str(raw): cls.name.lower() for raw, cls in LEVIR_MCI_LABEL_VALUES.items()},
    }
    paths.captions.write_text(json.dumps(record, indent=2))
    return paths
