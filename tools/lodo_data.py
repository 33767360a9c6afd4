"""The labelled datasets of the leave-one-dataset-out protocol, and the no-change pairs made from them.

Five real datasets, each of one kind of imagery, with the GSD each one has (from the georeference where the
files carry one, else the dataset's documented pixel size; none where the dataset states none):

* ``levircd``: LEVIR-CD crops, Google Earth 0.5 m, building change only (one real no-change crop);
* ``dsifn``: DSIFN-CD, Google Earth, any land-cover change (2 m, the dataset's stated resolution);
* ``sztaki``: SZTAKI AirChange Tiszadob, aerial 1.5 m, "relevant" change, 5–23 years apart;
* ``oscd``: OSCD Sentinel-2 cities, 10 m 16-bit multispectral (RGB used), urban change;
* ``egybcd``: EGY-BCD, Google-Earth-type building change in new Egyptian cities, well under 1 m but with no
  stated pixel size, so its pairs are analysed as unknown-GSD (the product's main case: plain sub-metre tiles).

No-change pairs: each real pair's first date against itself after a radiometric or geometric nuisance (a gamma
curve, sensor noise, a 1-px and a 2-px shift, JPEG compression). Their label is empty, so any change called on
them is a false alarm. They belong to the dataset they were made from, so they are held out with it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from deltavlm.rules import ChangeClass
from tools.mask_eval import find_pairs
from tools.masks import ChangeMask, MaskMethod, MaskSource, load_change_mask
from tools.pairs import ImagePair, load_pair, pair_from_arrays
from tools.raster import InputError


class DatasetSpec(BaseModel):
    """Where a dataset lives under the data root, its layout and the GSD of its pixels."""

    name: str
    title: str
    folder: str
    layout: str = Field(description="levir: A/, B/, label/; oscd: <city>/t1.tif, t2.tif, label.tif")
    gsd_m: float | None = Field(description="Metres per pixel when the files carry no georeference.")
    sensor: str


DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec(name="levircd", title="LEVIR-CD 0.5 m", folder="levircd", layout="levir", gsd_m=0.5, sensor="aerial"),
    DatasetSpec(name="dsifn", title="DSIFN 2 m", folder="dsifn", layout="levir", gsd_m=2.0, sensor="aerial"),
    DatasetSpec(
        name="sztaki", title="SZTAKI AirChange 1.5 m", folder="sztaki", layout="levir", gsd_m=1.5, sensor="aerial"
    ),
    DatasetSpec(
        name="oscd", title="OSCD Sentinel-2 10 m", folder="oscd", layout="oscd", gsd_m=None, sensor="multispectral"
    ),
    DatasetSpec(name="egybcd", title="EGY-BCD sub-metre", folder="egybcd", layout="levir", gsd_m=None, sensor="aerial"),
)


class LabelledPair(BaseModel):
    """One pair with its truth, the dataset it belongs to, and whether it is real or made no-change."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    dataset: str
    name: str
    origin: str = Field(description="real, or the nuisance that made a no-change pair (gamma, noise, …)")
    pair: ImagePair
    truth: ChangeMask


def _empty_truth(shape: tuple[int, int]) -> ChangeMask:
    return ChangeMask(
        class_mask=np.zeros(shape, np.uint8),
        source=MaskSource(
            provider="made", kind="user", categorical=False, confidence=1.0, made_by=MaskMethod(method="made")
        ),
    )


def _load_real(spec: DatasetSpec, data_root: Path) -> list[LabelledPair]:
    root = data_root / spec.folder
    found: list[LabelledPair] = []
    if spec.layout == "levir":
        for files in find_pairs(root).pairs:
            pair = load_pair(files.t1, files.t2, gsd_m=spec.gsd_m)
            truth = load_change_mask(files.label, shape=pair.shape, kind="binary")
            found.append(LabelledPair(dataset=spec.name, name=files.name, origin="real", pair=pair, truth=truth))
        return found
    for city in sorted(p for p in root.iterdir() if p.is_dir()):
        pair = load_pair(city / "t1.tif", city / "t2.tif", gsd_m=spec.gsd_m)
        truth = load_change_mask(city / "label.tif", shape=pair.shape, kind="binary")
        found.append(LabelledPair(dataset=spec.name, name=city.name, origin="real", pair=pair, truth=truth))
    if not found:
        raise InputError(f"{root} holds no <city>/t1.tif, t2.tif, label.tif")
    return found


def _gamma(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** 0.7 * 0.95 + 8, 0, 255).astype(np.uint8)
    return lut[image]


def _noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(image.astype(np.float32) + rng.normal(0, 4.0, image.shape), 0, 255).astype(np.uint8)


def _shift(dx: int, dy: int) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    def shifted(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        matrix = np.float32([[1, 0, dx], [0, 1, dy]])
        height, width = image.shape[:2]
        return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)

    return shifted


def _jpeg(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 50])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].copy()


NUISANCES: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "gamma": _gamma,
    "noise": _noise,
    "shift1": _shift(1, 0),
    "shift2": _shift(2, 1),
    "jpeg": _jpeg,
}
"""The no-change nuisances: tone curve, sensor noise σ 4, 1-px and (2, 1)-px shifts, JPEG quality 50."""


NO_CHANGE_SIZE = 512
"""No-change pairs are centre crops of at most this size: false alarms show at any size, and the grid stays fast."""


def _centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    height, width = image.shape[:2]
    y0, x0 = max((height - size) // 2, 0), max((width - size) // 2, 0)
    return np.ascontiguousarray(image[y0 : y0 + size, x0 : x0 + size])


def no_change_pairs(real: list[LabelledPair], seed: int = 0) -> list[LabelledPair]:
    """Each real pair's first date against itself after every nuisance; the truth is empty."""
    rng = np.random.default_rng(seed)
    made = []
    for item in real:
        t1 = _centre_crop(item.pair.t1, NO_CHANGE_SIZE)
        for origin, nuisance in NUISANCES.items():
            pair = pair_from_arrays(t1, nuisance(t1, rng), gsd_m=item.pair.gsd_m)
            pair = pair.model_copy(update={"scaling": item.pair.scaling})  # still that sensor's kind of pair
            made.append(
                LabelledPair(
                    dataset=item.dataset,
                    name=f"{item.name}~{origin}",
                    origin=origin,
                    pair=pair,
                    truth=_empty_truth(pair.shape),
                )
            )
    return made


def load_dataset(spec: DatasetSpec, data_root: str | Path, with_no_change: bool = True) -> list[LabelledPair]:
    """A dataset's real pairs, then (by default) the no-change pairs made from them."""
    real = _load_real(spec, Path(data_root))
    return real + (no_change_pairs(real) if with_no_change else [])


def available_datasets(data_root: str | Path) -> list[DatasetSpec]:
    """The datasets whose folder exists under ``data_root``."""
    root = Path(data_root)
    return [spec for spec in DATASETS if (root / spec.folder).is_dir()]


def ensure_change_class(mask: np.ndarray) -> np.ndarray:
    """A boolean mask as a class mask of category-free change."""
    return np.where(mask, int(ChangeClass.CHANGE), 0).astype(np.uint8)
