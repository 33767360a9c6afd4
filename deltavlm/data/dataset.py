"""A torch Dataset over ChangeChat records, with the paper's augmentation.

Each record becomes one sample per answer: a dialog's third turn is trained with the first two exchanges as
history, as the release does (its ``q … a …`` history is written by :func:`deltavlm.text.encode_turn`).
Caption-test records (five references) yield one sample per caption.

Augmentation (paper §4: random crop removing 0–5 %, rotation within ±15°, resize to 224): one geometric
transform is drawn per sample and applied to t1, t2 and the change map alike, so the pair stays
registered; the resize to the model's input size is the model's own preprocessing. Pixels rotated in from
outside the image are black in the images and ``ignore_index`` in the map. The text answers are not
rewritten, so a crop or rotation can move a count or a grid cell across the 5 % line for a few samples;
that is the paper's recipe, and ``AugmentConfig.enabled`` turns it off. Randomness is a pure function of
``(seed, epoch, index)``, so a resumed run and any number of loader workers see the same samples.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from pydantic import BaseModel, Field
from torch.utils.data import Dataset

from deltavlm.data.records import AnyRecord, CaptionTestRecord
from deltavlm.data.source import read_class_mask, read_rgb
from deltavlm.data.templates import instruction
from deltavlm.modeling.batch import TrainingExample
from deltavlm.rules import LEVIR_MCI_LABEL_VALUES, ChangeClass


class AugmentConfig(BaseModel):
    """The paper's augmentation; the defaults are its values."""

    enabled: bool = True
    max_crop_fraction: float = Field(0.05, ge=0.0, lt=0.5, description="Up to this fraction of each side is cut.")
    max_rotation_deg: float = Field(15.0, ge=0.0, le=180.0)


def resolve_pair(image_root: Path, t1: str, t2: str) -> tuple[Path, Path]:
    """The files of a record's two images: relative to the images root, with the LEVIR layout as a fallback.

    Records written by other tools sometimes name ``split/NAME.png`` for both dates; LEVIR-MCI keeps them in
    ``split/A`` and ``split/B``.
    """
    first, second = (Path(p) if Path(p).is_absolute() else image_root / p for p in (t1, t2))
    if first.is_file():
        return first, second
    fallback = []
    for rel, date in ((t1, "A"), (t2, "B")):
        parts = Path(rel).parts
        candidate = image_root / parts[0] / date / parts[-1] if len(parts) >= 2 else image_root / rel
        fallback.append(candidate)
    return (fallback[0], fallback[1]) if fallback[0].is_file() else (first, second)


def draw_transform(
    rng: np.random.Generator, height: int, width: int, config: AugmentConfig
) -> tuple[tuple[int, int, int, int], float]:
    """A crop window ``(y0, x0, h, w)`` removing 0–max of each side, and a rotation angle in degrees."""
    keep_h = 1.0 - rng.uniform(0.0, config.max_crop_fraction)
    keep_w = 1.0 - rng.uniform(0.0, config.max_crop_fraction)
    crop_h, crop_w = max(1, round(height * keep_h)), max(1, round(width * keep_w))
    y0 = int(rng.integers(0, height - crop_h + 1))
    x0 = int(rng.integers(0, width - crop_w + 1))
    angle = float(rng.uniform(-config.max_rotation_deg, config.max_rotation_deg))
    return (y0, x0, crop_h, crop_w), angle


def apply_transform(
    image: np.ndarray, window: tuple[int, int, int, int], angle: float, *, is_mask: bool, fill: int = 0
) -> np.ndarray:
    """Crop, then rotate about the crop's centre (bilinear for images, nearest for class maps)."""
    y0, x0, h, w = window
    cropped = np.ascontiguousarray(image[y0 : y0 + h, x0 : x0 + w])
    if math.isclose(angle, 0.0):
        return cropped
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
    return cv2.warpAffine(
        cropped,
        matrix,
        (w, h),
        flags=cv2.INTER_NEAREST if is_mask else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=fill if is_mask else (fill, fill, fill),
    )


def augment_pair(
    t1: np.ndarray,
    t2: np.ndarray,
    class_mask: np.ndarray | None,
    rng: np.random.Generator,
    config: AugmentConfig,
    ignore_index: int = 255,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The same random crop and rotation for both dates and the map."""
    if not config.enabled:
        return t1, t2, class_mask
    window, angle = draw_transform(rng, t1.shape[0], t1.shape[1], config)
    mask = None
    if class_mask is not None:
        # Rotated-in corners are unknown, not "no change": mark them so the mask loss ignores them.
        mask = apply_transform(class_mask, window, angle, is_mask=True, fill=ignore_index)
    return (
        apply_transform(t1, window, angle, is_mask=False),
        apply_transform(t2, window, angle, is_mask=False),
        mask,
    )


class Sample(BaseModel):
    """Where one training sample comes from: a record and which answer of it."""

    record: int
    turn: int
    reference: int = 0


class ChangeChatDataset(Dataset[TrainingExample]):
    """(pair, question, answer, history) samples from ChangeChat records; images read on demand.

    ``with_masks`` returns each sample's class map (from the record's ``label``); samples without one get a
    map of ``ignore_index`` so that batches can mix them. ``cache_images`` keeps up to that many decoded
    pairs in memory (small synthetic sets fit whole; real runs should leave it at 0 and use workers).
    """

    def __init__(
        self,
        records: Sequence[AnyRecord],
        image_root: str | Path,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        with_masks: bool = False,
        tasks: Sequence[str] | None = None,
        label_values: dict[int, ChangeClass] | None = None,
        ignore_index: int = 255,
        cache_images: int = 0,
    ) -> None:
        self.records = [r for r in records if tasks is None or r.task in set(tasks)]
        self.image_root = Path(image_root)
        self.augment = augment or AugmentConfig(enabled=False)
        self.seed = seed
        self.epoch = 0
        self.with_masks = with_masks
        self.label_values = label_values or dict(LEVIR_MCI_LABEL_VALUES)
        self.ignore_index = ignore_index
        self.cache_images = cache_images
        self._cache: OrderedDict[tuple[str, str, str | None], tuple[np.ndarray, np.ndarray, np.ndarray | None]] = (
            OrderedDict()
        )
        self.samples: list[Sample] = []
        for index, record in enumerate(self.records):
            if isinstance(record, CaptionTestRecord):
                self.samples += [Sample(record=index, turn=0, reference=k) for k in range(len(record.captions))]
            else:
                self.samples += [Sample(record=index, turn=t) for t in range(len(record.conversations) // 2)]

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Augmentation draws depend on the epoch, so each epoch sees new crops and angles."""
        self.epoch = epoch

    def _paths(self, record: AnyRecord) -> tuple[str, str, str | None]:
        if isinstance(record, CaptionTestRecord):
            return record.image_A, record.image_B, record.label
        return record.image[0], record.image[1], record.label

    def _load(self, record: AnyRecord) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        key = self._paths(record)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        a, b, label = key
        path_a, path_b = resolve_pair(self.image_root, a, b)
        t1, t2 = read_rgb(path_a), read_rgb(path_b)
        mask = None
        if self.with_masks and label is not None:
            mask = read_class_mask(self.image_root / label, self.label_values)
        loaded = (t1, t2, mask)
        if self.cache_images:
            self._cache[key] = loaded
            while len(self._cache) > self.cache_images:
                self._cache.popitem(last=False)
        return loaded

    def __getitem__(self, index: int) -> TrainingExample:
        sample = self.samples[index]
        record = self.records[sample.record]
        t1, t2, mask = self._load(record)
        if self.with_masks and mask is None:
            mask = np.full(t1.shape[:2], self.ignore_index, dtype=np.uint8)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        t1, t2, mask = augment_pair(t1, t2, mask, rng, self.augment, self.ignore_index)
        if isinstance(record, CaptionTestRecord):
            question, answer, history = instruction("caption"), record.captions[sample.reference], []
        else:
            exchanges = record.exchanges()
            question, answer = exchanges[sample.turn]
            history = exchanges[: sample.turn]
        return TrainingExample(
            t1=t1,
            t2=t2,
            question=question,
            answer=answer,
            history=history,
            class_mask=mask if self.with_masks else None,
        )
